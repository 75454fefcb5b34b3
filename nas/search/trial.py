"""Evaluation of one candidate: the code below the trial boundary, shared by every executor.

A candidate is first timed at the *target* training resolution and batch on the target
hardware (failing fast if it does not fit), then proxy-trained at the reduced resolution.
Knowing the step time before training lets every epoch report an interim reward, which is
what an early-stopping scheduler compares. Nothing here raises for a candidate's own failure:
the returned :class:`~results.rows.Outcome` says ``failed`` and why.

With a surrogate objective (``--objective surrogate``, ``nas.search.surrogate``) nothing is timed or
trained: the outcome carries the surrogate's accuracy and step time, and the reference's
"timing" is the surrogate's step time of the reference.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import torch

from nas.search.reward import RewardConfig
from nas.search.surrogate import Surrogate
from proxy_train.data import DataSplits
from proxy_train.hardware import Target, resolve_hardware
from proxy_train.heap import release_free_memory
from proxy_train.loop import TrainResult, train
from proxy_train.recipe import Recipe
from proxy_train.step import describe_failure
from proxy_train.timing import StepTiming, time_training_step
from results.rows import Outcome
from results.signals import final_signals
from search_space.codec import decode, encode
from search_space.cost import count_params
from search_space.spec import ArchSpec

Report = Callable[[int, Outcome], bool]
"""``report(epoch, interim outcome)``; returning True asks evaluation to stop."""


@dataclass(frozen=True, slots=True)
class Job:
    """One candidate to evaluate: its proposal number, its spec and its seed."""

    number: int
    spec: ArchSpec
    seed: int

    def to_config(self) -> dict[str, Any]:
        """The job as plain data (a trial config): the spec as its canonical string."""
        return {"number": self.number, "arch": encode(self.spec), "seed": self.seed}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Job:
        """Inverse of ``to_config``: the one place a trial decodes its architecture."""
        return cls(int(config["number"]), decode(str(config["arch"])), int(config["seed"]))


@dataclass(frozen=True, slots=True)
class TrialContext:
    """Run-wide settings every trial needs (sent once to every worker)."""

    recipe: Recipe
    hardware: str
    timing_batch: int
    timing_resolution: int
    reward: RewardConfig
    """Scores a trained candidate: ``reward.proxy(top1, minival_loss, step_ms, params)``."""
    threads: int | None = None
    timing_min_steps: int = 20
    timing_budget_s: float = 10.0
    timing_threads: int | None = None
    """CPU threads while timing (None: ``threads``). On CPUs the step is timed on one thread:
    on small shared machines multi-threaded step times vary by tens of percent between runs."""
    surrogate: Surrogate | None = None
    """The objective that replaces timing and training (``--objective surrogate``), if any."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def evaluate(job: Job, context: TrialContext, data: DataSplits,
             report: Report | None = None, node: Mapping[str, Any] | None = None) -> Outcome:
    """Time, then proxy-train one candidate (or ask the surrogate); return its outcome.
    ``node``: where it runs (default: this machine's host name)."""
    start, started_at = time.perf_counter(), now()
    timing: StepTiming | None = None
    training: TrainResult | None = None
    failure = None
    params = count_params(job.spec)
    where = dict(node) if node is not None else {"host": socket.gethostname()}

    def outcome(**fields: Any) -> Outcome:
        return Outcome(number=job.number, spec=job.spec, seed=job.seed, started_at=started_at,
                       finished_at=now(), wall_time_s=time.perf_counter() - start,
                       timing=timing, node=where, **fields)

    if context.surrogate is not None:
        timing, training = _surrogate_result(job, context, context.surrogate)
        assert timing.median_ms is not None and training.accuracy is not None
        return outcome(training=training,
                       reward=context.reward(training.accuracy, timing.median_ms, params))

    def on_epoch(progress: TrainResult) -> bool:
        assert timing is not None and timing.median_ms is not None and report is not None
        # If a scheduler stops the trial now, this is what gets recorded: 'stopped' unless
        # this was the last epoch anyway.
        done = progress.epochs_run >= context.recipe.epochs
        interim = replace(progress, status="ok" if done else "stopped",
                          reason="" if done else f"stopped early after epoch "
                                                 f"{progress.epochs_run}")
        return bool(report(progress.epochs_run, outcome(
            training=interim, reward=context.reward.proxy(
                progress.accuracy, final_signals(progress)["minival_loss"], timing.median_ms,
                params))))

    try:
        target = resolve_hardware(context.hardware)
        timing = time_step(job.spec, context, target, seed=job.seed)
        if timing.ok and timing.median_ms is not None:
            _set_threads(context.threads)
            training = train(job.spec, context.recipe, data, device=target.device,
                             seed=job.seed, precision=target.profile.precision,
                             report=on_epoch if report is not None else None)
    except Exception as err:  # noqa: BLE001 - a candidate must never take the search down
        failure = describe_failure(err)
    release_free_memory()  # the next candidate of this process starts from the live set
    reward = None
    if training is not None and training.ok and timing is not None \
            and timing.median_ms is not None:
        reward = context.reward.proxy(training.accuracy,
                                      final_signals(training)["minival_loss"],
                                      timing.median_ms, params)
    return outcome(training=training, failure=failure, reward=reward)



def time_reference(spec: ArchSpec, context: TrialContext) -> StepTiming:
    """Time the run's reference model with the same settings candidates are timed with."""
    if context.surrogate is not None:
        return _surrogate_timing(context, context.surrogate.step_time_ms(spec))
    return time_step(spec, context, resolve_hardware(context.hardware), seed=0)


def _surrogate_timing(context: TrialContext, step_ms: float) -> StepTiming:
    return StepTiming(
        status="ok", reason="", median_ms=step_ms, spread=None, mean_ms=step_ms, steps=0,
        warmup_steps=0, peak_memory_bytes=None, images_per_s=None, device_name="surrogate",
        driver=None, torch_version=torch.__version__, batch_size=context.timing_batch,
        resolution=context.timing_resolution, precision="none", memory_format="none",
        time_s=0.0, hardware=context.hardware, optimizer="none",
        policy={"objective": "surrogate"})


def _surrogate_result(job: Job, context: TrialContext,
                      surrogate: Surrogate) -> tuple[StepTiming, TrainResult]:
    """What the surrogate says of ``job``'s spec, as a timing and a (zero-epoch) training."""
    started = time.perf_counter()
    accuracy, step_ms, params = surrogate(job.spec)
    training = TrainResult(
        status="ok", reason="", accuracy=accuracy, epochs_run=0, steps_run=0,
        wall_time_s=time.perf_counter() - started, seed=job.seed, resolution=0,
        device="surrogate", precision="none", params=params,
        policy={"objective": "surrogate", **surrogate.describe()})
    return _surrogate_timing(context, step_ms), training


def time_step(spec: ArchSpec, context: TrialContext, target: Target, *,
              seed: int) -> StepTiming:
    """The one timing call of a run: candidates and the reference alike."""
    _set_threads(context.timing_threads or context.threads)
    return time_training_step(
        spec,
        target=target,
        batch_size=context.timing_batch,
        resolution=context.timing_resolution,
        num_classes=spec.num_classes,
        recipe=context.recipe,
        min_steps=context.timing_min_steps,
        time_budget_s=context.timing_budget_s,
        seed=seed,
    )


def _set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(int(threads))
