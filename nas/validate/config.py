"""Settings of one ``nas-validate`` run, checked once, before any work.

A validation folder (``--out``, by default the search's own folder) holds these settings with
its rows (``results.validation``); running the same command again continues the validation,
and a folder holding a validation with other settings is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.run.settings import EXECUTORS, MAX_SEED, ConfigError
from nas.track import check_trackers
from nas.train.config import RECIPES
from search_space.checks import is_int, is_number

MIN_K = 3
LONG_RECIPES: tuple[str, ...] = ("proxy", *RECIPES)
LONG_EPOCHS_FACTOR = 4
"""The long training runs this many times the proxy's epochs unless ``--epochs`` is given."""
IDENTITY: tuple[str, ...] = ("k", "seed", "seeds", "long_seeds", "epochs", "recipe", "proxy")
"""The settings a continued validation must share with the stored one."""


@dataclass(frozen=True, slots=True)
class ValidateConfig:
    """Everything ``nas-validate`` was asked to do."""

    run: str
    """The finished search's folder."""
    k: int = 10
    seeds: int = 2
    """Proxy runs per candidate besides the search's own (each with another seed)."""
    long_seeds: int = 2
    epochs: int | None = None
    """Epochs of the long training (None: ``LONG_EPOCHS_FACTOR`` x the proxy's)."""
    recipe: str = "proxy"
    """The long training's recipe: ``proxy`` (the proxy's own recipe at full resolution on
    whole epochs, through ``nas-train``'s plan), or as ``nas-train --recipe``: progressive,
    fixed or a recipe file."""
    proxy: str | None = None
    """A proxy file (``nas.run.proxy_file``) whose recipe fields replace the search's proxy's:
    the proxy validated instead of the search's own."""
    hardware: str | None = None
    """Where the jobs run (None: the search's hardware)."""
    workers: int = 1
    address: str | None = None
    executor: str = "ray"
    cpus_per_job: float | None = None
    out: str | None = None
    """Where the validation's files go (None: the search's folder)."""
    reuse: str | None = None
    """Another validation (its folder or ``validation.parquet``) whose finished jobs with the
    same key are copied instead of run again."""
    seed: int = 0
    progress: bool = True
    trackers: tuple[str, ...] = ()
    """Experiment trackers to log the validation to (``nas.track``)."""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError(problems[0])

    @property
    def out_dir(self) -> Path:
        return Path(self.out if self.out is not None else self.run)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _problems(c: ValidateConfig) -> list[str]:
    """Every rule ``c`` breaks, in the order of the command line (the first is reported)."""
    out: list[str] = []
    if not is_int(c.k) or c.k < MIN_K:
        out.append(f"--k {c.k!r} must be a whole number >= {MIN_K}: a rank correlation of "
                   "fewer candidates says nothing")
    for flag, value in (("--seeds", c.seeds), ("--long-seeds", c.long_seeds),
                        ("--workers", c.workers)):
        if not is_int(value) or value < 1:
            out.append(f"{flag} {value!r} must be a whole number >= 1")
    if c.epochs is not None and (not is_int(c.epochs) or c.epochs < 1):
        out.append(f"--epochs {c.epochs!r} must be a whole number >= 1")
    if c.recipe not in LONG_RECIPES and not Path(c.recipe).is_file():
        out.append(f"--recipe {c.recipe!r} is neither {', '.join(LONG_RECIPES)} nor a recipe "
                   "file (JSON or TOML)")
    for flag, path in (("--proxy", c.proxy), ("--reuse", c.reuse)):
        if path is not None and not Path(path).exists():
            out.append(f"{flag} {path!r}: no such file")
    if c.executor not in EXECUTORS:
        out.append(f"unknown executor {c.executor!r}; expected one of {list(EXECUTORS)}")
    if c.executor == "inline" and c.workers != 1:
        out.append("--executor inline runs one job at a time; use --workers 1")
    if c.cpus_per_job is not None and (not is_number(c.cpus_per_job) or c.cpus_per_job <= 0):
        out.append(f"--cpus-per-job {c.cpus_per_job!r} must be a number > 0")
    if not is_int(c.seed) or not 0 <= c.seed <= MAX_SEED:
        out.append(f"--seed {c.seed!r} must be a whole number from 0 to {MAX_SEED}")
    return out + check_trackers(c.trackers)


__all__ = ["IDENTITY", "LONG_EPOCHS_FACTOR", "LONG_RECIPES", "MIN_K", "ValidateConfig"]
