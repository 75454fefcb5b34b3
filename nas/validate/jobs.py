"""One validation job, below the worker boundary: train, evaluate, return the row.

:func:`run_job` is what every executor runs (inline, or as a Ray task): the proxy with the
proxy recipe, evaluated on minival as the search evaluates it; the long training with
``nas-train``'s recipe, evaluated once at the end on the held-out split (the test split, or
minival when the data has no larger one) with the weights the recipe evaluates (the EMA's
when it keeps one). A failed training is a row with ``status='failed'`` and its reason; it
never raises. :func:`search_row` turns the search's own proxy run into a row of the same
shape, without training anything. Both rows are ``nas.validate.rows.job_row``'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import torch

from nas.search.reward import RewardConfig
from nas.validate.plan import LONG, PROXY, ValidationJob
from nas.validate.rows import JobOutcome, job_row
from proxy_train.data import DataSplits, Split
from proxy_train.hardware import resolve_hardware
from proxy_train.loop import TrainResult, train
from proxy_train.step import describe_failure
from results.signals import epoch_record, final_signals


@dataclass(frozen=True, slots=True)
class JobContext:
    """What every job of a validation shares (sent once to every worker)."""

    data: DataSplits
    hardware: str
    threads: int | None
    reward: RewardConfig
    """The search's reward: ``reward(accuracy, step_ms, params)``."""


def held_out(data: DataSplits) -> tuple[str, Split]:
    """The split the long training is evaluated on: test, unless minival is larger."""
    if data.test is not None and len(data.test) >= len(data.minival):
        return "test", data.test
    return "minival", data.minival


def run_job(job: ValidationJob, context: JobContext) -> dict[str, Any]:
    """Train ``job`` and return its row (see the module docstring)."""
    started = _now()
    if context.threads:
        torch.set_num_threads(int(context.threads))
    data = context.data
    split_name, split = ("minival", data.minival) if job.kind == PROXY else held_out(data)
    result: TrainResult | None = None
    failure = None
    try:
        target = resolve_hardware(context.hardware)
        result = train(job.candidate.spec, job.recipe, data, device=target.device,
                       seed=job.seed, precision=target.profile.precision,
                       test=split if job.kind == LONG and split_name == "test" else None)
    except Exception as exc:  # noqa: BLE001 - a job's failure is a row, never a crash
        failure = describe_failure(exc)
    if result is not None and not result.ok:
        failure = result.reason or "failed"
    outcome = JobOutcome(source="run", eval_split=split_name, eval_images=len(split),
                         failure=failure, started_at=started, finished_at=_now())
    if result is not None:
        outcome = replace(outcome, accuracy=_accuracy(job, result, split_name),
                          eval_resolution=result.eval_resolution,
                          curve=tuple(result.accuracy_curve),
                          history=tuple(epoch_record(e) for e in result.history),
                          signals=final_signals(result),
                          epochs=result.epochs_run, resolution=result.resolution,
                          device=result.device, wall_time_s=result.wall_time_s)
    return job_row(job, outcome, context)


def _accuracy(job: ValidationJob, result: TrainResult, split_name: str) -> float | None:
    if job.kind == LONG and split_name == "test":
        return result.test_top1 if result.test_top1_ema is None else result.test_top1_ema
    return result.accuracy


def search_row(job: ValidationJob, context: JobContext) -> dict[str, Any]:
    """The row of the search's own proxy run of ``job``'s candidate (copied, not run)."""
    c = job.candidate
    history = tuple(json.loads(c.history)) if c.history else tuple(
        {"epoch": i + 1, "evaluated_top1": a} for i, a in enumerate(c.curve))
    outcome = JobOutcome(
        source="search", accuracy=c.accuracy, eval_split="minival",
        eval_images=len(context.data.minival),
        eval_resolution=job.recipe.eval_size(context.data.resolution), curve=tuple(c.curve),
        history=history, signals=dict(c.signals), epochs=len(c.curve) or None,
        resolution=job.recipe.train_resolution(context.data.resolution),
        started_at=c.started_at, finished_at=c.finished_at, wall_time_s=c.wall_time_s)
    return job_row(job, outcome, context)


def _now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = ["JobContext", "held_out", "run_job", "search_row"]
