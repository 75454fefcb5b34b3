"""One call that runs (or continues) a training: the library behind ``nas-train``.

The order of work makes bad input cost nothing and leave nothing behind: the settings,
the model (resolved by the caller), ``--out``, the recipe file and the hardware are checked
first; then ``--out`` is
claimed (created if needed and locked), the data loaded and the recipe fitted to it, and only
then is ``train.json`` written and the first epoch started. After every epoch the checkpoint
and ``metrics.parquet`` are written atomically (a signal waits until both are), so a run
killed at any moment loses at most the epoch in progress; the same command continues it. At
the end come ``model.pt``, ``curves.png`` and the result in ``train.json``.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from nas.run.interrupt import StopSignals
from nas.run.progress import Bar
from nas.track.guard import Trackers
from nas.track.jobs import log_epoch, open_training, tracked, training_result
from nas.train.config import TrainConfig, is_recipe_file
from nas.train.folder import TrainFolder
from nas.train.plan import ModelSource, TrainPlan, load_recipe_file, make_plan
from nas.train.record import (
    Provenance,
    TrainData,
    TrainedModel,
    TrainOutcome,
    TrainRecord,
    identity_of,
)
from proxy_train.checkpoint import TrainState, save_checkpoint
from proxy_train.data import DataSplits, load_data
from proxy_train.hardware import Target, describe_device, resolve_hardware
from proxy_train.loop import TrainResult, epoch_steps, train
from proxy_train.model_file import save_model
from proxy_train.recipe import Stage
from proxy_train.records import FailureKind
from results.curves import CURVES_PLOT, plot_curves
from results.metrics import METRICS_FILE, read_metrics, write_metrics
from results.records import document
from search_space.codec import encode, spec_hash
from search_space.cost import count_macs, count_params
from search_space.errors import NasError
from search_space.messages import counted

Say = Callable[[str], None]


class TrainingFailed(NasError, RuntimeError):
    """The model could not be trained (out of memory, a diverging loss); the last checkpoint
    is kept. Not bad input: ``nas-train`` exits 1."""


@dataclass(frozen=True, slots=True)
class TrainSummary:
    out: Path
    record: TrainRecord
    """``train.json``."""
    resumed_at: int
    """Epochs already finished when this command started (0 for a new training)."""
    already_finished: bool = False
    """The folder held this training, finished: nothing was run."""


def run_training(config: TrainConfig, model: ModelSource, *, say: Say,
                 signals: StopSignals | None = None) -> TrainSummary:
    """Train (or continue training) ``model`` as ``config`` says; see the module docstring.

    Raises ``NasError`` for bad input, :class:`TrainingFailed` when training fails, and
    ``KeyboardInterrupt`` (``nas.run.interrupt.Interrupted``) on SIGINT / SIGTERM."""
    signals = signals or StopSignals()
    folder = TrainFolder(config.out)
    folder.check()
    recipe_file = load_recipe_file(config.recipe) if is_recipe_file(config.recipe) else None
    target = resolve_hardware(config.hardware)
    with folder.claim():
        say(f"loading data {config.data} ...")
        data = load_data(config.data, seed=config.seed, say=say, progress=config.progress)
        plan = make_plan(config, model, data.resolution, cuda=target.is_cuda,
                         recipe_file=recipe_file, num_classes=data.num_classes)
        stored = folder.resume(identity_of(plan.settings(config)))
        if stored is not None and stored.status == "finished" and stored.result is not None:
            return TrainSummary(folder.path, stored, stored.result.epochs_run,
                                already_finished=True)
        for line in plan.notes:
            say(line)
        resume = folder.checkpoint() if stored is not None else None
        done = 0 if resume is None else resume.epochs_run
        if done:
            say(f"continuing from {folder.checkpoint_file}: {done} of "
                f"{counted(plan.recipe.epochs, 'epoch')} already finished")
        record = _record(config, plan, data, target, stored)
        folder.record(record)
        record = _tracked_training(config, plan, data, target, folder, resume, signals, record)
    return TrainSummary(folder.path, record, done)


def _tracked_training(config: TrainConfig, plan: TrainPlan, data: DataSplits, target: Target,
                      folder: TrainFolder, resume: TrainState | None, signals: StopSignals,
                      record: TrainRecord) -> TrainRecord:
    """Train, record the result in ``train.json`` and write the outputs; the trackers' run
    ends however this ends (finished, failed or killed)."""
    with tracked(open_training(config.trackers, folder.path, record.to_document())) as end:
        result, final = _train(config, plan, data, target, folder, resume, signals,
                               end.trackers)
        record = replace(record, result=_result(result, data))
        end.result = training_result(document(record.result))
        if result.status == "failed":
            folder.record(replace(record, status="failed"))
            raise TrainingFailed(_failure_line(result, plan, folder, final))
        assert final is not None, "a finished training has a last state"
        _write_outputs(plan, folder, final, result, data)
        end.files = [folder.path / CURVES_PLOT, folder.model_file]
        record = replace(record, status="finished")
        folder.record(record)
    return record


def _train(config: TrainConfig, plan: TrainPlan, data: DataSplits, target: Target,
           folder: TrainFolder, resume: TrainState | None, signals: StopSignals,
           trackers: Trackers) -> tuple[TrainResult, TrainState | None]:
    """Run the loop with the folder's checkpoint and metrics after every epoch; returns the
    result and the last state (the weights ``model.pt`` gets)."""
    recipe = plan.recipe
    steps = epoch_steps(recipe, len(data.train))
    bar = _EpochBar(recipe.plan(data.resolution), steps,
                    0 if resume is None else resume.epochs_run, config.progress)
    last: list[TrainState] = [resume] if resume is not None else []
    meta = {"arch": encode(plan.model.spec)}

    def checkpoint(state: TrainState) -> None:
        with signals.graceful():  # both files, or neither, for this epoch
            save_checkpoint(folder.checkpoint_file, state, meta=meta)
            write_metrics(folder.path / METRICS_FILE, state.progress["history"])
        last[:] = [state]
        log_epoch(trackers, state.progress["history"][-1])

    try:
        result = train(plan.model.spec, recipe, data, device=target.device, seed=config.seed,
                       precision=target.profile.precision, test=data.test, resume=resume,
                       checkpoint=checkpoint, report=bar.epoch_done, on_step=bar.step,
                       compile=config.compile)
    finally:
        bar.close()
    return result, (last[0] if last else None)


def _write_outputs(plan: TrainPlan, folder: TrainFolder, final: TrainState,
                   result: TrainResult, data: DataSplits) -> None:
    eval_size = plan.recipe.eval_size(data.resolution)
    save_model(folder.model_file, plan.model.spec, num_classes=data.num_classes,
               eval_size=eval_size, model=final.model,
               ema=None if final.ema is None else final.ema["weights"],
               meta={"recipe": plan.recipe.to_dict(), "data": data.name,
                     "result": document(_result(result, data))})
    test = result.test_top1_ema if result.test_top1_ema is not None else result.test_top1
    plot_curves(read_metrics(folder.path / METRICS_FILE), folder.path / CURVES_PLOT,
                title=f"{plan.model.name}: {counted(len(plan.recipe.stages) or 1, 'stage')}, eval at "
                      f"{eval_size} px", test_top1=test)


def _record(config: TrainConfig, plan: TrainPlan, data: DataSplits, target: Target,
            stored: TrainRecord | None) -> TrainRecord:
    spec, recipe = plan.model.spec, plan.recipe
    eval_size = recipe.eval_size(data.resolution)
    started = stored.provenance.started_at if stored is not None \
        else datetime.now(timezone.utc).isoformat()
    return TrainRecord(
        status="running",
        settings=plan.settings(config),
        config=config.to_dict(),
        model=TrainedModel(name=plan.model.name, source=plan.model.source, arch=encode(spec),
                           hash=spec_hash(spec), params=count_params(spec),
                           macs_eval=count_macs(spec, eval_size)),
        recipe=recipe.to_dict(),
        progressive=None if config.recipe == "fixed" else plan.progressive.to_dict(),
        notes=tuple(plan.notes),
        data=TrainData(source=config.data, name=data.name, resolution=data.resolution,
                       classes=data.num_classes, train=len(data.train),
                       minival=len(data.minival),
                       test=None if data.test is None else len(data.test)),
        hardware={"name": target.name, **describe_device(target)},
        provenance=Provenance(effnas=_version(), host=socket.gethostname(),
                              argv=tuple(sys.argv), started_at=started),
    )


def _result(result: TrainResult, data: DataSplits) -> TrainOutcome:
    last = result.history[-1] if result.history else None
    return TrainOutcome(
        status=result.status, reason=result.reason, epochs_run=result.epochs_run,
        stage=result.stage, image_size=result.resolution, eval_size=result.eval_resolution,
        minival_top1=None if last is None else last.minival_top1,
        minival_top1_ema=None if last is None else last.minival_top1_ema,
        test_top1=result.test_top1, test_top1_ema=result.test_top1_ema,
        test_images=None if data.test is None else len(data.test),
        wall_time_s=result.wall_time_s,
        failure_kind=None if result.failure_kind is None else result.failure_kind.value,
    )


def _failure_line(result: TrainResult, plan: TrainPlan, folder: TrainFolder,
                  final: TrainState | None) -> str:
    stages = len(plan.recipe.stages) or 1
    where = (f"stage {result.stage} of {stages} (image size {result.resolution} px, batch "
             f"{plan.recipe.batch_size})")
    kept = (f"the last checkpoint (epoch {final.epochs_run} of {plan.recipe.epochs}) is kept in "
            f"{folder.checkpoint_file}" if final is not None else "no epoch had finished")
    if result.failure_kind is FailureKind.OOM:
        smaller = max(1, plan.recipe.batch_size // 2)
        return (f"out of memory in {where}: {kept}; run the same command with a smaller "
                f"--batch-size (e.g. {smaller}) to continue")
    return f"training failed in {where}: {result.reason}; {kept}"


def _version() -> str:
    try:
        return metadata.version("effnas")
    except metadata.PackageNotFoundError:
        return "unknown"


class _EpochBar:
    """One progress bar over all steps: epoch, stage and size in front, ETA behind (a line per
    epoch where stderr is no terminal)."""

    def __init__(self, stages: tuple[Stage, ...], steps: int, done_epochs: int,
                 enabled: bool) -> None:
        self._stages = stages
        self._epochs = sum(stage.epochs for stage in stages)
        self._bar = Bar(steps * self._epochs, desc="", unit="step", noun="steps",
                        initial=steps * done_epochs, enabled=enabled, line_per_unit=False,
                        smoothing=0.05)
        self._describe(done_epochs)

    def _describe(self, epoch: int) -> None:
        first = 0
        for index, stage in enumerate(self._stages):
            if epoch < first + stage.epochs or index == len(self._stages) - 1:
                self._bar.set_description_str(
                    f"epoch {min(epoch + 1, self._epochs)}/{self._epochs} stage "
                    f"{index + 1}/{len(self._stages)} {stage.resolution}px", refresh=False)
                return
            first += stage.epochs

    def step(self) -> None:
        self._bar.update(1)

    def epoch_done(self, progress: TrainResult) -> None:
        last = progress.history[-1]
        ema = "" if last.minival_top1_ema is None else f" ema={last.minival_top1_ema:.3f}"
        self._bar.set_postfix_str(f"loss={last.train_loss:.3f} top1={last.minival_top1:.3f}"
                                  f"{ema}", refresh=False)
        self._bar.report()  # where stderr is no terminal, one line per epoch
        self._describe(progress.epochs_run)

    def close(self) -> None:
        self._bar.close()


__all__ = ["TrainSummary", "TrainingFailed", "run_training"]
