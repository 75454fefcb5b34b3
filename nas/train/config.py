"""Settings of one ``nas-train`` run, validated once, before any work.

A training folder (``--out``) holds these settings in ``train.json``; running the same
command again continues the training from its last checkpoint, and a folder holding another
training is refused (see ``nas.train.folder``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.run.settings import MAX_SEED, MIN_RESOLUTION, ConfigError
from nas.track import check_trackers
from proxy_train.datasets.sources import BUILT_IN_DATA
from search_space.checks import is_int, is_number

RECIPES: tuple[str, ...] = ("progressive", "fixed")
DEFAULT_EMA = 0.9999


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything ``nas-train`` was asked to do."""

    arch: str
    out: str
    data: str = BUILT_IN_DATA
    recipe: str = "progressive"
    """``progressive`` (Algorithm 1 with the model's Table 6 values), ``fixed`` (one stage at
    the final size and regularization) or the path of a recipe file."""
    epochs: int | None = None
    stages: int | None = None
    sizes: tuple[int, int] | None = None
    eval_size: int | None = None
    batch_size: int | None = None
    hardware: str = "auto"
    seed: int = 0
    ema: float = DEFAULT_EMA
    """EMA decay of the weights (0: no EMA)."""
    compile: bool = False
    target: str | None = None
    """The model of a ``nas-scale`` output to train (``M``, ``L``, ... or ``base``)."""
    rank: int = 1
    """The rank of the leaderboard row to train when ``arch`` is a search."""
    progress: bool = True
    trackers: tuple[str, ...] = ()
    """Experiment trackers to log the training to (``nas.track``)."""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError(problems[0])

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["sizes"] = None if self.sizes is None else list(self.sizes)
        return out


def parse_sizes(text: str) -> tuple[int, int]:
    """``'128:300'`` -> ``(128, 300)``; anything else raises ``ConfigError``."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"--sizes {text!r} must be MIN:MAX, two whole numbers of pixels "
                          "(e.g. 128:300)")
    return int(parts[0]), int(parts[1])


def is_recipe_file(recipe: str) -> bool:
    return recipe not in RECIPES


def _problems(c: TrainConfig) -> list[str]:
    """Every rule ``c`` breaks, in the order of the command line (the first is reported)."""
    out: list[str] = []
    if is_recipe_file(c.recipe) and not Path(c.recipe).is_file():
        out.append(f"--recipe {c.recipe!r} is neither {' nor '.join(RECIPES)} nor a recipe "
                   "file (JSON or TOML)")
    for name, value, low in (("--epochs", c.epochs, 1), ("--stages", c.stages, 1),
                             ("--eval-size", c.eval_size, MIN_RESOLUTION),
                             ("--batch-size", c.batch_size, 1), ("--rank", c.rank, 1)):
        if value is not None and (not is_int(value) or value < low):
            out.append(f"{name} {value!r} must be a whole number >= {low}")
    if c.epochs is not None and c.stages is not None and is_int(c.epochs) \
            and is_int(c.stages) and c.stages > c.epochs:
        out.append(f"--stages {c.stages} must not exceed --epochs {c.epochs}: every stage "
                   "trains at least one epoch")
    if c.sizes is not None:
        low, high = c.sizes
        if low < MIN_RESOLUTION or high < MIN_RESOLUTION:
            out.append(f"--sizes {low}:{high}: sizes must be >= {MIN_RESOLUTION} px")
        elif low > high:
            out.append(f"--sizes {low}:{high}: MIN must not exceed MAX")
    if c.recipe == "fixed" and c.stages not in (None, 1):
        out.append(f"--recipe fixed trains one stage; --stages {c.stages} needs --recipe "
                   "progressive")
    if not is_int(c.seed) or not 0 <= c.seed <= MAX_SEED:
        out.append(f"--seed {c.seed!r} must be a whole number from 0 to {MAX_SEED}")
    if not is_number(c.ema) or not 0 <= c.ema < 1:
        out.append(f"--ema {c.ema!r} must be a number in [0, 1) (0: no EMA)")
    return out + check_trackers(c.trackers)


__all__ = ["DEFAULT_EMA", "RECIPES", "TrainConfig", "is_recipe_file", "parse_sizes"]
