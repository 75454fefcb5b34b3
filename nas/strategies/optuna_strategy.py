"""Optuna's samplers as ask/tell strategies: ``tpe`` (single objective, the reward) and
``nsga2`` (accuracy max, step time min, params min). The only module that imports optuna.

Like Ray Tune's ``OptunaSearch``, this is a thin adapter: ``ask`` is ``study.ask()`` plus
``sampling.sample(space, trial)`` (a ``Trial`` already speaks the space's suggest protocol),
``tell`` is ``study.tell``. A result for a proposal the study never made (a leaderboard row on
resume, a uniform fallback draw) is added with ``study.add_trial``; its distributions are
derived from ``sampling.decisions`` exactly as ``sample`` asks them (``IntDistribution`` for
``.layers``, ``CategoricalDistribution`` for the rest), so the samplers treat it as their own.
A trial that proposes an already-seen spec is closed at once with that spec's known result
(failed while it is still in flight) and the study is asked again.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from nas.strategies.base import BaseStrategy, Observation, Proposal, StrategyError
from search_space.checks import is_int
from search_space.codec import encode
from search_space.errors import SpaceError
from search_space.sampling import decisions, sample, to_choices
from search_space.space import SearchSpace
from search_space.spec import ArchSpec

NSGA2_DIRECTIONS: tuple[str, str, str] = ("maximize", "minimize", "minimize")


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """The Optuna distribution of every decision, matching what ``sampling.sample`` suggests."""
    out: dict[str, BaseDistribution] = {}
    for d in decisions(space):
        if d.name.endswith(".layers"):
            out[d.name] = IntDistribution(low=min(d.choices), high=max(d.choices))
        else:
            out[d.name] = CategoricalDistribution(d.choices)
    return out


class _OptunaStrategy(BaseStrategy):
    """An Optuna study driven through ask/tell."""

    def __init__(self, space: SearchSpace, *, seed: int, num_classes: int,
                 allow_repeats: bool, sampler_factory: Any, directions: Sequence[Any],
                 **kwargs: Any) -> None:
        super().__init__(space, seed=seed, num_classes=num_classes,
                         allow_repeats=allow_repeats, **kwargs)
        # One line per trial at INFO would drown the run's own progress output.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.create_study(sampler=sampler_factory(),
                                             directions=list(directions))
        self.distributions = distributions(space)
        self._trials: dict[int, tuple[optuna.Trial, str]] = {}  # in flight: number -> trial, key
        self._results: dict[str, list[float] | None] = {}  # key -> told values (None: failed)

    def _propose(self, number: int) -> tuple[ArchSpec, Mapping[str, Any]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask()
            spec = sample(self.space, trial, self.num_classes)
        self._trials[number] = (trial, encode(spec))
        return spec, dict(trial.params)

    def _discard(self, number: int, spec: ArchSpec, choices: Mapping[str, Any]) -> None:
        trial, key = self._trials.pop(number)
        self._close(trial, self._results.get(key))

    def _values(self, observation: Observation) -> list[float] | None:
        raise NotImplementedError

    def _observe(self, proposal: Proposal, observation: Observation) -> None:
        key = encode(proposal.spec)
        values = self._values(observation)
        self._results[key] = values
        pending = self._trials.get(proposal.number)
        if pending is not None and pending[1] == key:
            del self._trials[proposal.number]
            self._close(pending[0], values)
            return
        try:
            params = to_choices(self.space, proposal.spec)
        except SpaceError:
            return  # not a point of this space: nothing the sampler could learn from
        trial = optuna.trial.create_trial(
            params=params,
            distributions={name: self.distributions[name] for name in params},
            values=values,
            state=TrialState.COMPLETE if values is not None else TrialState.FAIL,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.add_trial(trial)

    def _close(self, trial: optuna.Trial, values: list[float] | None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if values is None:
                self.study.tell(trial, state=TrialState.FAIL)
            else:
                self.study.tell(trial, values)


class TPEStrategy(_OptunaStrategy):
    """Optuna's multivariate, grouped TPE maximizing the reward; options
    ``n_startup_trials`` (10), ``n_ei_candidates`` (24), ``multivariate`` (True)."""

    name = "tpe"
    OPTIONS = ("n_startup_trials", "n_ei_candidates", "multivariate")

    def __init__(self, space: SearchSpace, *, seed: int, num_classes: int = 1000,
                 allow_repeats: bool = False, n_startup_trials: int = 10,
                 n_ei_candidates: int = 24, multivariate: bool = True, **kwargs: Any) -> None:
        def factory() -> optuna.samplers.BaseSampler:
            # group=True handles the conditional decisions of optional stages properly.
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=n_startup_trials, n_ei_candidates=n_ei_candidates,
                multivariate=multivariate, group=multivariate)

        super().__init__(space, seed=seed, num_classes=num_classes, allow_repeats=allow_repeats,
                         sampler_factory=factory, directions=["maximize"], **kwargs)

    def _values(self, observation: Observation) -> list[float] | None:
        if observation.status != "ok" or observation.reward is None:
            return None
        return [float(observation.reward)]


class NSGA2Strategy(_OptunaStrategy):
    """Optuna's NSGA-II on (accuracy max, step time min, params min); the reward is not used.
    Options ``population_size`` (20), ``mutation_prob`` (None: 1/number of decisions),
    ``crossover_prob`` (0.9)."""

    name = "nsga2"
    OPTIONS = ("population_size", "mutation_prob", "crossover_prob")

    def __init__(self, space: SearchSpace, *, seed: int, num_classes: int = 1000,
                 allow_repeats: bool = False, population_size: int = 20,
                 mutation_prob: float | None = None, crossover_prob: float = 0.9,
                 **kwargs: Any) -> None:
        if not is_int(population_size) or population_size < 2:
            raise StrategyError(f"population_size {population_size!r} must be an integer >= 2")

        def factory() -> optuna.samplers.BaseSampler:
            return optuna.samplers.NSGAIISampler(
                seed=seed, population_size=population_size, mutation_prob=mutation_prob,
                crossover_prob=crossover_prob)

        super().__init__(space, seed=seed, num_classes=num_classes, allow_repeats=allow_repeats,
                         sampler_factory=factory, directions=NSGA2_DIRECTIONS, **kwargs)

    def _values(self, observation: Observation) -> list[float] | None:
        if observation.status != "ok":
            return None
        if observation.objectives is None:
            raise StrategyError("nsga2 needs objectives (accuracy, step_time, params) in every "
                                "ok observation")
        return [float(x) for x in observation.objectives]
