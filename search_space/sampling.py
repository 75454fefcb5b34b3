"""What a search space allows: factorized decisions, sampling, membership, mutation and size.

The space is data (``SearchSpace``, see ``search_space.space``); this module turns it into
specs. It is neither a model nor a strategy: every way of choosing (a seed, a
``random.Random``, an ``optuna.Trial``, a strategy's own adapter) goes through one tiny
protocol, ``suggest_int(name, low, high)`` and ``suggest_categorical(name, choices)``.

Decisions, in a fixed order, for stage ``i`` (1-based):

* ``s{i}.keep`` (``True``/``False``) for an optional stage. It comes first, so a dropped stage
  asks nothing else; dropping a stage drops every later (optional) stage too.
* ``s{i}.block``, ``s{i}.layers`` (an int range, asked with ``suggest_int``), ``s{i}.kernel``,
  ``s{i}.expansion``.
* ``s{i}.se_fused`` / ``s{i}.se_mbconv``: the SE ratio, asked only for the chosen block type.
  Per-block names (rather than one ``s{i}.se`` over the union) make every decision vector map
  to exactly one in-space spec, and keep each name's choices fixed, which Optuna requires of
  a categorical parameter.

A decision with a single choice is omitted everywhere (``decisions``, ``sample``,
``to_choices``); its value is taken from the space. The shipped spaces therefore have no SE
decisions. A decision is *active* for a spec when it was asked while building it;
``to_choices`` returns exactly the active decisions, which is also what an ``optuna.Trial``
records. ``from_choices`` ignores inactive names (so a strategy may pass a full vector) and
rejects unknown ones.

Sampling is factorized, not uniform over specs: each asked decision is uniform over its choices.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search_space.checks import is_int
from search_space.cost import count_macs, count_params
from search_space.errors import ConstraintError, SpaceError
from search_space.messages import counted
from search_space.space import SearchSpace
from search_space.spec import FUSED, MBCONV, ArchSpec, StageSpec
from search_space.suggesters import (
    MappingSuggester,
    RandomSuggester,
    Recorder,
    Suggester,
    as_suggester,
)

__all__ = [
    "Decision",
    "Suggester",
    "active_decisions",
    "check_constraints",
    "check_in_space",
    "decisions",
    "from_choices",
    "mutate",
    "sample",
    "sample_within",
    "space_size",
    "to_choices",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """One factorized decision: its name (``s3.kernel``) and its allowed values, in order."""

    name: str
    choices: tuple[Any, ...]


def _walk(space: SearchSpace, ask: Suggester, num_classes: int) -> ArchSpec:
    """The one place that turns answers into a spec; every entry point goes through it."""
    stages: list[StageSpec] = []
    for i, sc in enumerate(space.stages, start=1):
        if sc.optional and not ask.suggest_categorical(f"s{i}.keep", (True, False)):
            break

        def pick(field: str, options: tuple[Any, ...], stage: int = i) -> Any:
            if len(options) == 1:
                return options[0]
            return ask.suggest_categorical(f"s{stage}.{field}", options)

        block = pick("block", sc.blocks)
        low, high = sc.layers
        layers = low if low == high else ask.suggest_int(f"s{i}.layers", low, high)
        kernel = pick("kernel", sc.kernels)
        expansion = pick("expansion", sc.expansions)
        se_ratio = pick(f"se_{block}", sc.se_choices(block))
        stages.append(StageSpec(block=block, layers=layers, kernel=kernel, expansion=expansion,
                                out_channels=sc.out_channels, stride=sc.stride,
                                se_ratio=se_ratio))
    return ArchSpec(stem_channels=space.stem_channels, stages=tuple(stages),
                    head_channels=space.head_channels, num_classes=num_classes)


def decisions(space: SearchSpace) -> tuple[Decision, ...]:
    """Every decision of the space in the fixed order (single-choice decisions omitted)."""
    out: list[Decision] = []
    for i, sc in enumerate(space.stages, start=1):
        candidates: list[tuple[str, tuple[Any, ...]]] = [
            ("keep", (True, False) if sc.optional else ()),
            ("block", sc.blocks),
            ("layers", tuple(sc.layer_range)),
            ("kernel", sc.kernels),
            ("expansion", sc.expansions),
        ]
        candidates += [(f"se_{b}", sc.se_choices(b)) for b in (FUSED, MBCONV) if b in sc.blocks]
        out += [Decision(f"s{i}.{field}", tuple(ch)) for field, ch in candidates if len(ch) > 1]
    return tuple(out)


def active_decisions(space: SearchSpace, spec: ArchSpec) -> tuple[Decision, ...]:
    """The decisions that determine ``spec`` (the keys of ``to_choices``), in order."""
    names = to_choices(space, spec)
    return tuple(d for d in decisions(space) if d.name in names)


def sample(space: SearchSpace, source: object, num_classes: int = 1000) -> ArchSpec:
    """Draw one spec. ``source``: an int seed, a ``random.Random`` or a ``Suggester``
    (e.g. ``optuna.Trial``); the same seed always gives the same spec."""
    return _walk(space, as_suggester(source), num_classes)


def from_choices(
    space: SearchSpace, choices: Mapping[str, object], num_classes: int = 1000
) -> ArchSpec:
    """The spec a decision vector denotes. Inactive names are ignored, unknown names and
    missing or disallowed active values raise ``SpaceError``."""
    known = {d.name for d in decisions(space)}
    unknown = sorted(str(k) for k in choices if k not in known)
    if unknown:
        raise SpaceError(
            f"unknown decision {unknown[0]!r} for space {space.name!r}; known: {sorted(known)}"
        )
    return _walk(space, MappingSuggester(choices), num_classes)


def to_choices(space: SearchSpace, spec: ArchSpec) -> dict[str, object]:
    """The active decisions of ``spec`` (inverse of ``from_choices``); SpaceError if the spec
    is not in the space."""
    check_in_space(space, spec)
    choices: dict[str, object] = {}
    for i, sc in enumerate(space.stages, start=1):
        if sc.optional:
            choices[f"s{i}.keep"] = i <= len(spec.stages)
            if i > len(spec.stages):
                break
        st = spec.stages[i - 1]
        values = [("block", st.block, sc.blocks), ("layers", st.layers, tuple(sc.layer_range)),
                  ("kernel", st.kernel, sc.kernels), ("expansion", st.expansion, sc.expansions),
                  (f"se_{st.block}", st.se_ratio, sc.se_choices(st.block))]
        choices.update((f"s{i}.{f}", v) for f, v, options in values if len(options) > 1)
    # The walk must agree with this construction; it also restores the fixed order.
    recorder = Recorder(MappingSuggester(choices))
    assert _walk(space, recorder, spec.num_classes) == spec
    return recorder.values


def check_in_space(space: SearchSpace, spec: ArchSpec) -> None:
    """Raise ``SpaceError`` naming the first rule ``spec`` breaks (``stage 3: kernel 4 not in
    (3, 5)``); return ``None`` if the spec is a point of the space."""
    n, lo, hi = len(spec.stages), space.min_stages, len(space.stages)
    if not lo <= n <= hi:
        allowed = f"{hi}" if lo == hi else f"{lo} to {hi}"
        raise SpaceError(f"spec has {counted(n, 'stage')}; space {space.name!r} allows {allowed}")
    for name in ("stem_channels", "head_channels"):
        if getattr(spec, name) != getattr(space, name):
            raise SpaceError(f"{name} {getattr(spec, name)} != {getattr(space, name)} "
                             f"fixed by space {space.name!r}")
    for i, (st, sc) in enumerate(zip(spec.stages, space.stages), start=1):
        for field in ("out_channels", "stride"):
            if getattr(st, field) != getattr(sc, field):
                raise SpaceError(f"stage {i}: {field} {getattr(st, field)} != "
                                 f"{getattr(sc, field)} fixed by the backbone")
        if st.block not in sc.blocks:
            raise SpaceError(f"stage {i}: block {st.block!r} not in {sc.blocks}")
        if st.layers not in sc.layer_range:
            raise SpaceError(f"stage {i}: layers {st.layers} not in {list(sc.layers)}")
        if st.kernel not in sc.kernels:
            raise SpaceError(f"stage {i}: kernel {st.kernel} not in {sc.kernels}")
        if st.expansion not in sc.expansions:
            raise SpaceError(f"stage {i}: expansion {st.expansion} not in {sc.expansions}")
        if st.se_ratio not in sc.se_choices(st.block):
            raise SpaceError(f"stage {i}: se_ratio {st.se_ratio} not in "
                             f"{sc.se_choices(st.block)} for {st.block} blocks")


def mutate(space: SearchSpace, spec: ArchSpec, rng: random.Random) -> ArchSpec:
    """Change exactly one active decision of ``spec`` to a different allowed value (the
    aging-evolution mutation). Decisions that become active (a kept stage, a new block type's
    SE) are drawn from ``rng``. Returns ``spec`` itself only if the space has a single point."""
    choices = to_choices(space, spec)
    active = [d for d in decisions(space) if d.name in choices]
    if not active:
        return spec
    decision = rng.choice(active)
    current = choices[decision.name]
    choices[decision.name] = rng.choice([c for c in decision.choices if c != current])
    fill = MappingSuggester(choices, fallback=RandomSuggester(rng))
    return _walk(space, fill, spec.num_classes)


def space_size(space: SearchSpace) -> int:
    """Exact number of distinct specs in the space (for a fixed ``num_classes``)."""
    total = 1  # the specs that stop after the last stage
    for sc in reversed(space.stages):
        total = sc.size() * total + (1 if sc.optional else 0)
    return total


def check_constraints(
    spec: ArchSpec, *, max_params: int | None = None, max_macs: int | None = None,
    resolution: int = 224,
) -> None:
    """Raise ``ConstraintError`` if ``spec`` exceeds a limit (``None`` means no limit)."""
    for name, limit in (("max_params", max_params), ("max_macs", max_macs)):
        if limit is not None and (not is_int(limit) or limit < 1):
            raise ConstraintError(f"{name} {limit!r} must be an integer >= 1")
    if max_params is not None:
        params = count_params(spec)
        if params > max_params:
            raise ConstraintError(f"params {params:,} > max {max_params:,}")
    if max_macs is not None:
        macs = count_macs(spec, resolution)
        if macs > max_macs:
            raise ConstraintError(f"macs {macs:,} > max {max_macs:,} at resolution {resolution}")


def sample_within(
    space: SearchSpace, source: object, *, max_params: int | None = None,
    max_macs: int | None = None, resolution: int = 224, num_classes: int = 1000,
    max_tries: int = 1000,
) -> ArchSpec:
    """Rejection sampling: draw until a spec meets the limits.

    With an int seed or ``random.Random`` up to ``max_tries`` draws are made. Any other source
    (an ``optuna.Trial`` fixes a parameter once suggested) gets exactly one draw. Raises
    ``SpaceError`` if no draw fits.
    """
    if not is_int(max_tries) or max_tries < 1:
        raise SpaceError(f"max_tries {max_tries!r} must be an integer >= 1")
    ask = as_suggester(source)
    tries = max_tries if isinstance(ask, RandomSuggester) else 1
    last = ""
    for _ in range(tries):
        spec = _walk(space, ask, num_classes)
        try:
            check_constraints(spec, max_params=max_params, max_macs=max_macs,
                              resolution=resolution)
        except ConstraintError as err:
            last = str(err)
            continue
        return spec
    raise SpaceError(f"no spec of space {space.name!r} fits after {tries} tries (last: {last})")
