"""Random search: every decision uniform, independently (``sampling.sample``).

The paper notes that its reduced space makes random search competitive; it is also the
baseline every other strategy is measured against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.strategies.base import BaseStrategy, Observation, Proposal
from search_space.spec import ArchSpec


class RandomSearch(BaseStrategy):
    """Uniform factorized sampling from the strategy's own ``random.Random(seed)``."""

    name = "random"

    def _propose(self, number: int) -> tuple[ArchSpec, Mapping[str, Any]]:
        return self._uniform()

    def _observe(self, proposal: Proposal, observation: Observation) -> None:
        pass  # results do not change what random search proposes
