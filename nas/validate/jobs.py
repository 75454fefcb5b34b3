"""One validation job, below the worker boundary: train, evaluate, return the row.

:func:`run_job` is what every executor runs (inline, or as a Ray task): the proxy with the
proxy recipe, evaluated on minival as the search evaluates it; the long training with
``nas-train``'s recipe, evaluated once at the end on the held-out split (the test split, or
minival when the data has no larger one) with the weights the recipe evaluates (the EMA's
when it keeps one). A failed training is a row with ``status='failed'`` and its reason; it
never raises. :func:`search_row` turns the search's own proxy run into a row of the same
shape, without training anything.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import torch

from nas.search.reward import reward as compute_reward
from nas.validate.plan import LONG, PROXY, Job, grace_epoch
from proxy_train.data import DataSplits, Split
from proxy_train.hardware import resolve_hardware
from proxy_train.loop import TrainResult, train
from proxy_train.step import describe_failure
from results.signals import SIGNAL_NAMES, epoch_record, final_signals


@dataclass(frozen=True, slots=True)
class JobContext:
    """What every job of a validation shares (sent once to every worker)."""

    data: DataSplits
    hardware: str
    threads: int | None
    ref_step_time_ms: float
    ref_params: int
    reward_w: float
    reward_v: float

    def reward(self, accuracy: float | None, step_time_ms: float, params: int) -> float | None:
        if accuracy is None:
            return None
        return compute_reward(accuracy, step_time_ms, params, ref_step_time=self.ref_step_time_ms,
                              ref_params=self.ref_params, w=self.reward_w, v=self.reward_v)


def held_out(data: DataSplits) -> tuple[str, Split]:
    """The split the long training is evaluated on: test, unless minival is larger."""
    if data.test is not None and len(data.test) >= len(data.minival):
        return "test", data.test
    return "minival", data.minival


def run_job(job: Job, context: JobContext) -> dict[str, Any]:
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
    accuracy = None
    if result is not None and failure is None:
        accuracy = result.accuracy
        if job.kind == LONG and split_name == "test":
            accuracy = result.test_top1 if result.test_top1_ema is None else result.test_top1_ema
    history = [] if result is None else [epoch_record(e) for e in result.history]
    curve = [] if result is None else list(result.accuracy_curve)
    return job_row(job, context, source="run", accuracy=accuracy, failure=failure,
                   eval_split=split_name, eval_images=len(split),
                   eval_resolution=None if result is None else result.eval_resolution,
                   curve=curve, history=history, signals=final_signals(result),
                   epochs=None if result is None else result.epochs_run,
                   resolution=None if result is None else result.resolution,
                   device=None if result is None else result.device, started=started,
                   finished=_now(), wall_time_s=None if result is None else result.wall_time_s)


def search_row(job: Job, context: JobContext) -> dict[str, Any]:
    """The row of the search's own proxy run of ``job``'s candidate (copied, not run)."""
    c = job.candidate
    history = json.loads(c.history) if c.history else [
        {"epoch": i + 1, "evaluated_top1": a} for i, a in enumerate(c.curve)]
    return job_row(job, context, source="search", accuracy=c.accuracy, failure=None,
                   eval_split="minival", eval_images=len(context.data.minival),
                   eval_resolution=job.recipe.eval_size(context.data.resolution),
                   curve=list(c.curve), history=history, signals=dict(c.signals),
                   epochs=len(c.curve) or None,
                   resolution=job.recipe.train_resolution(context.data.resolution),
                   device=None, started=c.started_at, finished=c.finished_at,
                   wall_time_s=c.wall_time_s)


def job_row(job: Job, context: JobContext, *, source: str, accuracy: float | None,
            failure: str | None, eval_split: str, eval_images: int,
            eval_resolution: int | None, curve: list[float], history: list[dict[str, Any]],
            signals: Mapping[str, float | None], epochs: int | None, resolution: int | None,
            device: str | None, started: Any, finished: Any,
            wall_time_s: float | None) -> dict[str, Any]:
    """The ``results.validation`` row of one job (``signals``: its ranking signals, none of a
    failed job)."""
    c = job.candidate
    interim_epoch = interim_accuracy = interim_reward = None
    if job.kind == PROXY:
        interim_epoch = grace_epoch(job.recipe)
        if len(curve) >= interim_epoch and failure is None:
            interim_accuracy = curve[interim_epoch - 1]
            interim_reward = context.reward(interim_accuracy, c.step_time_ms, c.params)
    return {
        "job_key": job.key, "kind": job.kind, "source": source, "replica": job.replica,
        "seed": job.seed, "arch": c.arch, "arch_hash": c.arch_hash,
        "search_rank": c.search_rank, "status": "failed" if failure else "ok",
        "failure_reason": failure, "accuracy": accuracy if failure is None else None,
        "eval_split": eval_split, "eval_images": eval_images,
        "eval_resolution": eval_resolution,
        "reward": context.reward(accuracy, c.step_time_ms, c.params) if failure is None
        else None,
        "interim_epoch": interim_epoch, "interim_accuracy": interim_accuracy,
        "interim_reward": interim_reward,
        **{name: None if failure else signals.get(name) for name in SIGNAL_NAMES},
        "step_time_ms": c.step_time_ms, "params": c.params,
        "macs": c.macs, "epochs": epochs, "resolution": resolution,
        "history_json": json.dumps(history), "recipe_json": json.dumps(job.recipe.to_dict()),
        "device": device, "host": platform.node(), "torch_version": torch.__version__,
        "started_at": started, "finished_at": finished, "wall_time_s": wall_time_s,
    }


def _now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = ["JobContext", "held_out", "job_row", "run_job", "search_row"]
