"""Settings of one search run, validated once and stored with the run.

A run directory holds ``run.json`` (these settings, the reference timing and the space) next
to its leaderboard. Re-running with the same ``--out`` continues the run only if the settings
that define it are the same; the budget may grow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_space.checks import is_int
from search_space.errors import NasError

STRATEGIES: tuple[str, ...] = ("random", "rl", "evolution", "tpe", "nsga2")
EXECUTORS: tuple[str, ...] = ("ray", "inline")
EARLY_STOP: tuple[str, ...] = ("none", "asha")
RUN_FILE = "run.json"

# Settings that define a run: a resumed run must agree on all of them.
IDENTITY_FIELDS: tuple[str, ...] = (
    "hardware",
    "space",
    "data",
    "strategy",
    "epochs",
    "proxy_resolution",
    "seed",
    "reward_w",
    "reward_v",
    "reference",
    "timing_batch",
    "timing_resolution",
    "max_params",
    "max_macs",
)


class ConfigError(NasError, ValueError):
    """A search setting is out of range or contradicts the run stored in ``--out``."""


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """Everything ``nas-search`` was asked to do. Recorded in ``run.json``."""

    budget: int
    hardware: str
    out: str
    space: str = "v2b0"
    data: str = "synthetic"
    strategy: str = "random"
    epochs: int | None = None
    proxy_resolution: int | None = None
    workers: int = 1
    address: str | None = None
    executor: str = "ray"
    seed: int = 0
    reward_w: float = -0.07
    reward_v: float = -0.05
    reference: str | None = None
    timing_batch: int | None = None
    timing_resolution: int | None = None
    timing_steps: int | None = None
    timing_budget: float | None = None
    max_params: int | None = None
    max_macs: int | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    retries: int = 1
    early_stop: str = "none"
    progress: bool = True

    def __post_init__(self) -> None:
        if not is_int(self.budget) or self.budget < 1:
            raise ConfigError(f"--budget {self.budget!r} must be a whole number >= 1")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; expected one of {list(STRATEGIES)}")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.executor!r}; expected one of {list(EXECUTORS)}")
        if self.early_stop not in EARLY_STOP:
            raise ConfigError(f"unknown early stop {self.early_stop!r}; expected one of {list(EARLY_STOP)}")
        if self.early_stop == "asha" and self.executor != "ray":
            raise ConfigError("--early-stop asha needs --executor ray")
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers} must be >= 1")
        if self.executor == "inline" and self.workers != 1:
            raise ConfigError("--executor inline runs one candidate at a time; use --workers 1")
        if self.retries < 0:
            raise ConfigError(f"--retries {self.retries} must be >= 0")
        for name in ("epochs", "proxy_resolution", "timing_batch", "timing_resolution", "max_params", "max_macs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {value} must be >= 1")
        if self.gpus_per_trial is not None and self.gpus_per_trial % 1:
            raise ConfigError(
                f"--gpus-per-trial {self.gpus_per_trial} must be a whole number: "
                "step timing never shares a device with another trial"
            )
        if self.timing_steps is not None and self.timing_steps < 3:
            raise ConfigError(f"--timing-steps {self.timing_steps} must be >= 3")
        if self.timing_budget is not None and self.timing_budget <= 0:
            raise ConfigError(f"--timing-budget {self.timing_budget} must be > 0 seconds")
        if self.cpus_per_trial is not None and self.cpus_per_trial <= 0:
            raise ConfigError(f"--cpus-per-trial {self.cpus_per_trial} must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in IDENTITY_FIELDS}


def check_same_run(config: SearchConfig, stored: dict[str, Any], run_dir: Path) -> None:
    """Refuse to continue a run in ``run_dir`` whose defining settings differ."""
    old = stored.get("config", {})
    for name in IDENTITY_FIELDS:
        if name in old and old[name] != getattr(config, name):
            raise ConfigError(
                f"--out {run_dir} holds a different run: {name} was {old[name]!r}, now "
                f"{getattr(config, name)!r}; use another --out or the same settings"
            )


def read_run_file(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RUN_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is not a readable run file ({err}); move it away or use another --out") from err


def write_run_file(run_dir: Path, payload: dict[str, Any]) -> None:
    """Write ``run.json`` atomically (temporary file, then rename)."""
    path = run_dir / RUN_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
