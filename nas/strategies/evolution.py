"""Regularized (aging) evolution, Real et al. 2019, "Regularized Evolution for Image
Classifier Architecture Search".

The population is the ``population_size`` most recent ok results (a failed candidate never
joins it). The first ``population_size`` proposals are uniform; after that each proposal is
a mutation (``sampling.mutate``: one decision changed) of the best of ``sample_size`` members
drawn at random from the population. When a new result joins, the *oldest* member dies,
whatever its reward: that ageing is what regularizes the search against lucky evaluations.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from nas.strategies.base import BaseStrategy, Observation, Proposal, StrategyError
from search_space.checks import is_int
from search_space.sampling import mutate, to_choices
from search_space.space import SearchSpace
from search_space.spec import ArchSpec


class RegularizedEvolution(BaseStrategy):
    """Aging evolution with tournament selection; options ``population_size`` (default 20)
    and ``sample_size`` (default 5)."""

    name = "evolution"
    OPTIONS = ("population_size", "sample_size")

    def __init__(self, space: SearchSpace, *, seed: int, num_classes: int = 1000,
                 allow_repeats: bool = False, population_size: int = 20,
                 sample_size: int = 5, **kwargs: Any) -> None:
        super().__init__(space, seed=seed, num_classes=num_classes,
                         allow_repeats=allow_repeats, **kwargs)
        for key, value in (("population_size", population_size), ("sample_size", sample_size)):
            if not is_int(value) or value < 1:
                raise StrategyError(f"{key} {value!r} must be an integer >= 1")
        if sample_size > population_size:
            raise StrategyError(f"sample_size {sample_size} must be <= population_size "
                                f"{population_size}")
        self.population_size = population_size
        self.sample_size = sample_size
        # (reward, spec), oldest first; appending to a full deque drops the oldest.
        self.population: deque[tuple[float, ArchSpec]] = deque(maxlen=population_size)

    def _propose(self, number: int) -> tuple[ArchSpec, Mapping[str, Any]]:
        if number < self.population_size or not self.population:
            return self._uniform()
        k = min(self.sample_size, len(self.population))
        contenders = self.rng.sample(range(len(self.population)), k)
        # Highest reward wins; among equals, the younger member (larger index).
        winner = max(contenders, key=lambda i: (self.population[i][0], i))
        child = mutate(self.space, self.population[winner][1], self.rng)
        return child, to_choices(self.space, child)

    def _observe(self, proposal: Proposal, observation: Observation) -> None:
        if observation.status == "ok":
            assert observation.reward is not None
            self.population.append((float(observation.reward), proposal.spec))
