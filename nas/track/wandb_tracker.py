"""Weights & Biases: a job is one run; a search's candidates are runs of its group.

The only module that imports wandb (on first use). W&B's own settings decide the rest:
``WANDB_MODE`` (``offline`` writes under ``WANDB_DIR``, default ``./wandb``, for a later
``wandb sync``), ``WANDB_PROJECT`` (default ``effnas``), ``WANDB_ENTITY``, the API key. W&B
has no nested runs; the convention (Ray Tune's ``WandbLoggerCallback`` follows it too) is a
run per trial in a group: each candidate is a run of ``job_type`` ``candidate`` in the group
named after its search. A job's run id is its stable key, so a continued job resumes its run
(``resume="allow"``). Metrics logged with a step share the custom x axis ``step`` (epoch, or
candidates finished), so steps may arrive in any order; metrics without a step go to the
run's summary. Artifacts are saved with the run's files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.track.base import FAILED, FINISHED, KILLED, RunInfo, finite_metrics, plain_params

PROJECT = "effnas"
STEP = "step"
_EXIT_CODES = {FINISHED: 0, FAILED: 1, KILLED: 130}


class WandbTracker:
    """One W&B run (see the module docstring)."""

    def __init__(self, group: str | None = None) -> None:
        self._group = group
        self._run: Any = None

    def start_run(self, info: RunInfo) -> None:
        import wandb

        child = self._group is not None
        self._run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or PROJECT,
            id=None if child else info.key, resume=None if child else "allow",
            name=info.name, group=self._group or info.key, job_type=info.kind,
            tags=[info.kind], reinit="create_new",
            settings=wandb.Settings(console="off", silent=True))
        self._run.define_metric(STEP)
        self._run.define_metric("*", step_metric=STEP)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._run.config.update(plain_params(params), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        values = finite_metrics(metrics)
        if step is None:
            self._run.summary.update(values)
        elif values:
            self._run.log({**values, STEP: step})

    def log_artifact(self, path: Path) -> None:
        self._run.save(str(path), base_path=str(path.parent), policy="now")

    def child_run(self, info: RunInfo) -> WandbTracker:
        child = WandbTracker(group=info.group or self._run.group)
        child.start_run(info)
        return child

    def close(self, status: str = FINISHED) -> None:
        if self._run is not None:
            self._run.finish(exit_code=_EXIT_CODES.get(status, 1))


__all__ = ["PROJECT", "WandbTracker"]
