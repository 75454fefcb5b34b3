"""Evaluation of one candidate: the code below the trial boundary, shared by every executor.

A candidate is first timed at the *target* training resolution and batch on the target
hardware (failing fast if it does not fit), then proxy-trained at the reduced resolution.
Knowing the step time before training lets every epoch report an interim reward, which is
what an early-stopping scheduler compares. Nothing here raises for a candidate's own failure:
the returned row says ``failed`` and why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import torch

from nas.reward import reward as compute_reward
from proxy_train.hardware import Target, resolve_hardware
from proxy_train.loop import train
from proxy_train.recipe import Recipe
from proxy_train.timing import StepTiming, time_training_step
from search_space.codec import decode, spec_hash, to_json
from search_space.cost import count_macs, count_params
from search_space.spec import ArchSpec

Report = Callable[[int, dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Job:
    """One candidate to evaluate: its canonical architecture string and its seed."""

    number: int
    arch: str
    seed: int


@dataclass(frozen=True, slots=True)
class TrialContext:
    """Run-wide settings every trial needs (sent once to every worker)."""

    recipe: Recipe
    hardware: str
    timing_batch: int
    timing_resolution: int
    ref_step_time_ms: float
    ref_params: int
    reward_w: float
    reward_v: float
    threads: int | None = None
    timing_min_steps: int = 20
    timing_budget_s: float = 10.0
    timing_threads: int | None = None
    """CPU threads while timing (None: ``threads``). On CPUs the step is timed on one thread:
    on small shared machines multi-threaded step times vary by tens of percent between runs."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _reward(context: TrialContext, accuracy: float | None, step_ms: float, params: int) -> float | None:
    if accuracy is None:
        return None
    return compute_reward(
        accuracy,
        step_ms,
        params,
        ref_step_time=context.ref_step_time_ms,
        ref_params=context.ref_params,
        w=context.reward_w,
        v=context.reward_v,
    )


def base_row(job: Job, context: TrialContext) -> dict[str, Any]:
    """The columns known before anything runs (also used for rows of dead workers)."""
    spec = decode(job.arch)
    params = count_params(spec)
    return {
        "number": job.number,
        "arch": job.arch,
        "arch_hash": spec_hash(spec),
        "spec_json": to_json(spec),
        "params": params,
        "params_norm": params / context.ref_params,
        "macs": count_macs(spec, context.timing_resolution),
        "seed": job.seed,
        "hardware": context.hardware,
        "timing_resolution": context.timing_resolution,
        "timing_batch": context.timing_batch,
        "status": "failed",
        "failure_reason": None,
        "started_at": _now(),
    }


def evaluate(job: Job, context: TrialContext, data: Any, report: Report | None = None) -> dict[str, Any]:
    """Time, then proxy-train one candidate; return its leaderboard row (without run columns)."""
    start = time.perf_counter()
    row = base_row(job, context)
    try:
        _evaluate_into(row, job, context, data, report)
    except Exception as err:  # a candidate must never take the search down
        row.update(status="failed", failure_reason=f"{type(err).__name__}: {err}")
    row["finished_at"] = _now()
    row["wall_time_s"] = time.perf_counter() - start
    return row


def _evaluate_into(row: dict[str, Any], job: Job, context: TrialContext, data: Any, report: Report | None) -> None:
    spec = decode(job.arch)
    target = resolve_hardware(context.hardware)
    timing = _time_step(spec, context, target, seed=job.seed)
    row.update(
        device_name=timing.device_name,
        precision=timing.precision,
        torch_version=timing.torch_version,
        provenance_json=json.dumps(timing.to_dict(), sort_keys=True, default=str),
    )
    if timing.status != "ok":
        row.update(status="failed", failure_reason=f"step timing: {timing.reason}")
        return
    _set_threads(context.threads)
    step_ms = timing.median_ms
    row.update(
        step_time_ms=step_ms,
        step_time_spread=timing.spread,
        step_time_steps=timing.steps,
        step_time_norm=step_ms / context.ref_step_time_ms,
    )

    row["proxy_resolution"] = context.recipe.train_resolution(data.resolution)

    def on_epoch(epoch: int, metrics: dict[str, Any]) -> bool:
        if report is None:
            return False
        # If a scheduler stops the trial now, this row is what gets recorded: 'stopped'
        # unless this was the last epoch anyway.
        done = epoch >= context.recipe.epochs
        interim = dict(
            row,
            status="ok" if done else "stopped",
            failure_reason=None if done else f"stopped early after epoch {epoch}",
            accuracy=metrics.get("accuracy"),
            epochs=epoch,
        )
        interim["reward"] = _reward(context, interim["accuracy"], step_ms, row["params"])
        return bool(report(epoch, interim))

    result = train(spec, context.recipe, data, device=target.device, seed=job.seed, report=on_epoch)
    row.update(
        status=result.status,
        failure_reason=result.reason or None,
        accuracy=result.accuracy,
        epochs=result.epochs_run,
        proxy_resolution=result.resolution,
        reward=_reward(context, result.accuracy, step_ms, row["params"]) if result.status != "failed" else None,
    )


def time_reference(spec: ArchSpec, context: TrialContext) -> dict[str, Any]:
    """Time the run's reference model with the same settings candidates are timed with."""
    return _time_step(spec, context, resolve_hardware(context.hardware), seed=0).to_dict()


def _time_step(spec: ArchSpec, context: TrialContext, target: Target, *, seed: int) -> StepTiming:
    """The one timing call of a run: candidates and the reference alike."""
    _set_threads(context.timing_threads or context.threads)
    return time_training_step(
        spec,
        target=target,
        batch_size=context.timing_batch,
        resolution=context.timing_resolution,
        num_classes=spec.num_classes,
        min_steps=context.timing_min_steps,
        time_budget_s=context.timing_budget_s,
        seed=seed,
    )


def _set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(int(threads))
