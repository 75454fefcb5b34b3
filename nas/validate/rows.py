"""From a validation job's run to its row of ``validation.parquet``.

:class:`JobOutcome` is what running one job produced (or copying it: the search's own proxy
run), as typed, frozen data; :func:`job_row` is the one place that turns a job and its outcome
into a row, and so the one place that names validation columns (``results.validation_schema``
defines them), as ``results.rows.outcome_row`` is the leaderboard's.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from nas.search.config import asha_grace_epoch
from nas.validate.plan import PROXY, ValidationJob
from results.signals import SIGNAL_NAMES

if TYPE_CHECKING:
    from nas.validate.jobs import JobContext


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What one job produced: its accuracy on ``eval_split``, or the failure that stopped it."""

    source: str
    """``search`` (the search's own run, copied), ``run`` or ``reused``."""
    eval_split: str
    eval_images: int
    accuracy: float | None = None
    failure: str | None = None
    """Why the job failed; a failed job has no accuracy."""
    eval_resolution: int | None = None
    curve: tuple[float, ...] = ()
    """Accuracy after each epoch."""
    history: tuple[Mapping[str, Any], ...] = ()
    """Every epoch as the row's ``history_json`` keeps it."""
    signals: Mapping[str, float | None] = field(default_factory=dict)
    """The run's ranking signals (``results.signals``); none of a failed job."""
    epochs: int | None = None
    resolution: int | None = None
    device: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    wall_time_s: float | None = None

    @classmethod
    def lost(cls, reason: str) -> JobOutcome:
        """A job whose worker died: no result came back."""
        return cls(source="run", eval_split="", eval_images=0, failure=reason)

    @property
    def status(self) -> str:
        return "failed" if self.failure else "ok"


def job_row(job: ValidationJob, outcome: JobOutcome, context: JobContext) -> dict[str, Any]:
    """The ``validation.parquet`` row of ``job`` and its ``outcome``."""
    c, ok = job.candidate, outcome.status == "ok"
    accuracy = outcome.accuracy if ok else None
    # A proxy run is scored as the search scores it; a long training by its held-out top-1.
    reward = None
    if ok:
        reward = (context.reward.proxy(accuracy, outcome.signals.get("minival_loss"),
                                       c.step_time_ms, c.params) if job.kind == PROXY
                  else context.reward(accuracy, c.step_time_ms, c.params))
    interim_epoch = interim_accuracy = interim_reward = None
    if job.kind == PROXY:
        interim_epoch = asha_grace_epoch(job.recipe.epochs)
        if len(outcome.curve) >= interim_epoch and ok:
            interim_accuracy = outcome.curve[interim_epoch - 1]
            loss = (outcome.history[interim_epoch - 1].get("minival_loss")
                    if len(outcome.history) >= interim_epoch else None)
            interim_reward = context.reward.proxy(interim_accuracy, loss, c.step_time_ms,
                                                  c.params)
    return {
        "job_key": job.key, "kind": job.kind, "source": outcome.source,
        "replica": job.replica, "seed": job.seed, "arch": c.arch, "arch_hash": c.arch_hash,
        "search_rank": c.search_rank, "status": outcome.status,
        "failure_reason": outcome.failure, "accuracy": accuracy,
        "eval_split": outcome.eval_split, "eval_images": outcome.eval_images,
        "eval_resolution": outcome.eval_resolution,
        "reward": reward,
        "interim_epoch": interim_epoch, "interim_accuracy": interim_accuracy,
        "interim_reward": interim_reward,
        **{name: outcome.signals.get(name) if ok else None for name in SIGNAL_NAMES},
        "step_time_ms": c.step_time_ms, "params": c.params,
        "macs": c.macs, "epochs": outcome.epochs, "resolution": outcome.resolution,
        "history_json": json.dumps([dict(e) for e in outcome.history]),
        "recipe_json": json.dumps(job.recipe.to_dict()), "device": outcome.device,
        "host": platform.node(), "torch_version": torch.__version__,
        "started_at": outcome.started_at, "finished_at": outcome.finished_at,
        "wall_time_s": outcome.wall_time_s,
    }


__all__ = ["JobOutcome", "job_row"]
