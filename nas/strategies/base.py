"""The ask/tell interface every search strategy implements, and what they share.

A strategy proposes candidates (``ask``) and learns from results (``tell``); it never trains,
times or loops — the driver owns the loop, so several asks may be in flight before their
tells arrive, in any order. ``tell`` also accepts proposals the strategy never made: that is
how a resumed run rebuilds a strategy's state from its leaderboard (:func:`replay`).

Shared here, once for all strategies (:class:`BaseStrategy`):

* proposal numbering (continuing after the highest number told);
* de-duplication by canonical string: unless ``allow_repeats``, no spec is proposed that was
  proposed or told before. A strategy's own draw is retried up to ``max_retries`` times
  (fewer once half the space is seen), then uniform draws from the space are tried, and when
  every point of the space has been seen :class:`SpaceExhaustedError` says so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from search_space.checks import is_int
from search_space.codec import encode
from search_space.errors import NasError, SpaceError
from search_space.sampling import check_in_space, sample, space_size, to_choices
from search_space.space import SearchSpace
from search_space.spec import ArchSpec

OBSERVATION_STATUSES: tuple[str, ...] = ("ok", "failed")
DEFAULT_MAX_RETRIES = 100
_UNIFORM_RETRIES = 2000


class StrategyError(NasError, ValueError):
    """A strategy was misused or misconfigured (unknown name or option, bad observation)."""


class SpaceExhaustedError(StrategyError):
    """Every architecture of the space has already been proposed or told."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """A candidate: its spec, the active decision values that produced it, and its number
    (0-based, in ask order; proposals rebuilt from a leaderboard keep their number)."""

    spec: ArchSpec
    choices: Mapping[str, Any]
    number: int


@dataclass(frozen=True, slots=True)
class Observation:
    """The result of one proposal.

    ``status``: ``ok`` (``reward`` required; ``objectives`` = (accuracy, step_time, params),
    required by multi-objective strategies) or ``failed`` (nothing else needed).
    """

    status: str
    reward: float | None = None
    objectives: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.status not in OBSERVATION_STATUSES:
            raise StrategyError(f"observation status {self.status!r} not in {OBSERVATION_STATUSES}")
        if self.status == "ok":
            if self.reward is None or not math.isfinite(float(self.reward)):
                raise StrategyError(f"an ok observation needs a finite reward, got {self.reward!r}")
        if self.objectives is not None:
            values = self.objectives
            if len(values) != 3 or not all(math.isfinite(float(x)) for x in values):
                raise StrategyError(f"objectives {self.objectives!r} must be three finite numbers "
                                    "(accuracy, step_time, params)")

    @classmethod
    def ok(cls, reward: float, objectives: tuple[float, float, float] | None = None) -> Observation:
        return cls("ok", float(reward), None if objectives is None else
                   tuple(float(x) for x in objectives))  # type: ignore[arg-type]

    @classmethod
    def failed(cls) -> Observation:
        return cls("failed")


@runtime_checkable
class Strategy(Protocol):
    """What the driver needs of a strategy."""

    @property
    def name(self) -> str: ...

    @property
    def space(self) -> SearchSpace: ...

    def ask(self) -> Proposal:
        """The next candidate (never one proposed or told before, unless repeats are allowed)."""
        ...

    def tell(self, proposal: Proposal, observation: Observation) -> None:
        """The result of ``proposal`` (one of ours, or rebuilt from a leaderboard)."""
        ...


def proposal_for(space: SearchSpace, spec: ArchSpec, number: int) -> Proposal:
    """A :class:`Proposal` for an existing spec (e.g. a leaderboard row)."""
    return Proposal(spec=spec, choices=to_choices(space, spec), number=number)


def replay(strategy: Strategy, history: Iterable[tuple[ArchSpec | Proposal, Observation]]) -> int:
    """Feed past results to ``strategy`` in order, as ``tell`` calls, so that it continues
    where a previous run stopped; returns how many were told. A history item may hold a spec
    (numbered after the strategy's current proposals, in order) or a ready ``Proposal``."""
    count = 0
    for item, observation in history:
        if isinstance(item, Proposal):
            proposal = item
        else:
            number = getattr(strategy, "next_number", count)
            proposal = proposal_for(strategy.space, item, number)
        strategy.tell(proposal, observation)
        count += 1
    return count


class BaseStrategy:
    """Numbering, de-duplication and the seeded random state shared by the strategies.

    Subclasses implement :meth:`_propose` (return ``(spec, choices)``) and :meth:`_observe`
    (learn from a result), and may override :meth:`_discard` (a proposal was dropped as a
    duplicate) and ``OPTIONS`` (accepted keyword options).
    """

    name: ClassVar[str] = "base"
    OPTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, space: SearchSpace, *, seed: int, num_classes: int = 1000,
                 allow_repeats: bool = False, max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        if not is_int(seed):
            raise StrategyError(f"seed {seed!r} must be an integer")
        if not is_int(max_retries) or max_retries < 1:
            raise StrategyError(f"max_retries {max_retries!r} must be an integer >= 1")
        self.space = space
        self.seed = seed
        self.num_classes = num_classes
        self.allow_repeats = bool(allow_repeats)
        self.max_retries = max_retries
        self.next_number = 0
        self.rng = random.Random(seed)
        self._seen: set[str] = set()
        self._seen_in_space = 0
        self._size: int | None = None

    # -- the public interface ---------------------------------------------------------

    def ask(self) -> Proposal:
        number = self.next_number
        spec, choices = self._unseen(number)
        self.next_number += 1
        self._mark_seen(spec, in_space=True)
        return Proposal(spec=spec, choices=dict(choices), number=number)

    def tell(self, proposal: Proposal, observation: Observation) -> None:
        if not isinstance(observation, Observation):
            raise StrategyError(f"tell needs an Observation, got {type(observation).__name__}")
        self.next_number = max(self.next_number, proposal.number + 1)
        self._mark_seen(proposal.spec, in_space=None)
        self._observe(proposal, observation)

    def seen(self, spec: ArchSpec) -> bool:
        """Whether ``spec`` was proposed or told before."""
        return encode(spec) in self._seen

    # -- for subclasses ---------------------------------------------------------------

    def _propose(self, number: int) -> tuple[ArchSpec, Mapping[str, Any]]:
        raise NotImplementedError

    def _observe(self, proposal: Proposal, observation: Observation) -> None:
        raise NotImplementedError

    def _discard(self, number: int, spec: ArchSpec, choices: Mapping[str, Any]) -> None:
        """A draw for ``number`` was a duplicate and is dropped (default: nothing to undo)."""

    def _uniform(self) -> tuple[ArchSpec, dict[str, Any]]:
        spec = sample(self.space, self.rng, self.num_classes)
        return spec, to_choices(self.space, spec)

    # -- de-duplication ---------------------------------------------------------------

    def _mark_seen(self, spec: ArchSpec, in_space: bool | None) -> None:
        key = encode(spec)
        if key in self._seen:
            return
        self._seen.add(key)
        if in_space is None:
            try:
                check_in_space(self.space, spec)
                in_space = spec.num_classes == self.num_classes
            except SpaceError:
                in_space = False
        self._seen_in_space += int(in_space)

    def _exhausted(self) -> bool:
        if self._size is None:
            self._size = space_size(self.space)
        return self._seen_in_space >= self._size

    def _unseen(self, number: int) -> tuple[ArchSpec, Mapping[str, Any]]:
        if self.allow_repeats:
            return self._propose(number)
        if self._exhausted():
            raise self._exhausted_error()
        # Once most of a (small) space is seen, the strategy's own draws mostly repeat, and
        # each retry may cost a sampler call: go to uniform draws sooner.
        retries = self.max_retries if 2 * self._seen_in_space < (self._size or 0) else 10
        for _ in range(min(retries, self.max_retries)):
            spec, choices = self._propose(number)
            if encode(spec) not in self._seen:
                return spec, choices
            self._discard(number, spec, choices)
        # The strategy keeps circling seen points (a converged policy, a tiny space): fall
        # back to uniform draws, which find any unseen point of a small space quickly.
        for _ in range(_UNIFORM_RETRIES):
            spec, choices = self._uniform()
            if encode(spec) not in self._seen:
                return spec, choices
        raise StrategyError(
            f"{self.name}: no unseen architecture found in {self.max_retries + _UNIFORM_RETRIES} "
            f"draws ({self._seen_in_space} of {self._size} points of space "
            f"{self.space.name!r} seen); pass allow_repeats=True or use a larger space"
        )

    def _exhausted_error(self) -> SpaceExhaustedError:
        return SpaceExhaustedError(
            f"space {self.space.name!r} exhausted: all {self._size} architectures have been "
            "proposed or told; use a larger space, a smaller budget, or allow repeats"
        )
