"""Search strategies behind one ask/tell interface: ``random``, ``rl`` (REINFORCE),
``evolution`` (regularized evolution), ``tpe`` and ``nsga2`` (Optuna).

>>> strategy = make_strategy("evolution", load_space("v2b0"), seed=0, num_classes=10)
>>> proposal = strategy.ask()                       # Proposal(spec, choices, number)
>>> strategy.tell(proposal, Observation.ok(0.71, objectives=(0.74, 12.5, 5_100_000)))
"""

from __future__ import annotations

import importlib
from typing import Any

from nas.strategies.base import (
    BaseStrategy,
    Observation,
    Proposal,
    SpaceExhaustedError,
    Strategy,
    StrategyError,
    proposal_for,
    replay,
)
from search_space.space import SearchSpace

# name -> (module, class); modules load lazily so that optuna is imported only when used.
_REGISTRY: dict[str, tuple[str, str]] = {
    "random": ("nas.strategies.random_search", "RandomSearch"),
    "rl": ("nas.strategies.rl", "Reinforce"),
    "evolution": ("nas.strategies.evolution", "RegularizedEvolution"),
    "tpe": ("nas.strategies.optuna_strategy", "TPEStrategy"),
    "nsga2": ("nas.strategies.optuna_strategy", "NSGA2Strategy"),
}
STRATEGY_NAMES: tuple[str, ...] = tuple(_REGISTRY)
# Options every strategy accepts (see BaseStrategy).
COMMON_OPTIONS: tuple[str, ...] = ("max_retries",)


def strategy_class(name: str) -> type[BaseStrategy]:
    """The class implementing strategy ``name``."""
    if name not in _REGISTRY:
        raise StrategyError(f"unknown strategy {name!r}; expected one of {list(STRATEGY_NAMES)}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def make_strategy(name: str, space: SearchSpace, *, seed: int, num_classes: int = 1000,
                  allow_repeats: bool = False, **options: Any) -> Strategy:
    """Create strategy ``name`` over ``space``, seeded with ``seed``, proposing specs with
    ``num_classes`` classes. ``options`` are the strategy's own settings (e.g. ``lr`` for
    ``rl``, ``population_size`` for ``evolution``); an unknown one raises
    :class:`StrategyError` listing those accepted."""
    cls = strategy_class(name)
    accepted = cls.OPTIONS + COMMON_OPTIONS
    for key in options:
        if key not in accepted:
            raise StrategyError(f"strategy {name!r} has no option {key!r}; "
                                f"accepted: {', '.join(accepted)}")
    return cls(space, seed=seed, num_classes=num_classes, allow_repeats=allow_repeats, **options)


__all__ = [
    "BaseStrategy",
    "COMMON_OPTIONS",
    "Observation",
    "Proposal",
    "STRATEGY_NAMES",
    "SpaceExhaustedError",
    "Strategy",
    "StrategyError",
    "make_strategy",
    "proposal_for",
    "replay",
    "strategy_class",
]
