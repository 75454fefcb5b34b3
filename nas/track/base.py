"""What every experiment tracker does, and which trackers there are.

A :class:`Tracker` is one run of one tracking framework (MLflow, Weights & Biases,
TensorBoard): ``start_run`` opens it, ``log_params`` / ``log_metrics`` / ``log_artifact``
write into it, ``child_run`` opens a run nested in it (a search's candidate), ``close`` ends
it. The calls are plain and synchronous; ``nas.track.guard`` runs them off the caller's
thread and turns a failure into one warning. Each framework is imported by its own module
only (``nas.track.mlflow_tracker``, ``wandb_tracker``, ``tensorboard_tracker``), on first
use; :func:`check_trackers` finds out whether it is installed without importing it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

TRACKERS: tuple[str, ...] = ("mlflow", "wandb", "tensorboard")
"""What ``--tracker`` takes; each is also the name of the optional extra that installs it."""
MODULES: dict[str, str] = {"mlflow": "mlflow", "wandb": "wandb", "tensorboard": "tensorboard"}
"""The module a tracker needs, by tracker."""
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
"""How a run ended (MLflow's words; the other trackers map them onto theirs)."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What names and places one tracked run.

    ``kind`` is the job (``search``, ``candidate``, ``train``, ``validate``); ``key`` is
    stable across a continued job (the same search, training or validation), so a tracker
    that can reopen a run (MLflow, W&B) continues it instead of starting another; ``folder``
    is the job's own folder (TensorBoard writes its event files under it); ``group`` is the
    key of the run it belongs to (a candidate's search)."""

    kind: str
    name: str
    key: str
    folder: Path
    tags: Mapping[str, str] = field(default_factory=dict)
    group: str | None = None


class Tracker(Protocol):
    """One run of one tracking framework (see the module docstring)."""

    def start_run(self, info: RunInfo) -> None: ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log the finite numbers of ``metrics`` (others are left out) at ``step``, or, with
        no step, as the run's final values."""

    def log_artifact(self, path: Path) -> None: ...

    def child_run(self, info: RunInfo) -> Tracker: ...

    def close(self, status: str = FINISHED) -> None: ...


def check_trackers(names: tuple[str, ...]) -> list[str]:
    """Every problem with ``names`` (``--tracker``): an unknown name, a tracker whose package
    is not installed (naming the extra that installs it). Imports nothing."""
    problems = []
    for name in names:
        if name not in TRACKERS:
            problems.append(f"unknown tracker {name!r}; expected one of {list(TRACKERS)}")
        elif importlib.util.find_spec(MODULES[name]) is None:
            problems.append(f"--tracker {name} needs the optional extra '{name}' (module "
                            f"{MODULES[name]!r} is not installed): pip install -e "
                            f"'.[{name}]' in the effnas clone")
    return problems


def run_key(*parts: object) -> str:
    """A stable 16-hex-digit key of ``parts`` (a W&B run id, an MLflow tag value)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def plain_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Parameters as the strings every tracker stores (None as an empty string)."""
    return {str(k): "" if v is None else str(v) for k, v in params.items()}


def finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The entries of ``metrics`` that are finite numbers, as floats (a tracker rejects or
    mangles None and NaN)."""
    out = {}
    for key, value in metrics.items():
        if value is None or isinstance(value, (bool, str)):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if number == number and number not in (float("inf"), float("-inf")):
            out[str(key)] = number
    return out


def make_tracker(name: str) -> Tracker:
    """A not yet started tracker of framework ``name`` (its package is imported only when the
    run starts)."""
    if name == "mlflow":
        from nas.track.mlflow_tracker import MlflowTracker

        return MlflowTracker()
    if name == "wandb":
        from nas.track.wandb_tracker import WandbTracker

        return WandbTracker()
    if name == "tensorboard":
        from nas.track.tensorboard_tracker import TensorBoardTracker

        return TensorBoardTracker()
    raise ValueError(f"unknown tracker {name!r}; expected one of {list(TRACKERS)}")


__all__ = ["FAILED", "FINISHED", "KILLED", "MODULES", "TRACKERS", "RunInfo", "Tracker",
           "check_trackers", "finite_metrics", "make_tracker", "plain_params", "run_key"]
