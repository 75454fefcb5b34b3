"""Training a model: one plain function, one visible loop, for proxies and final training.

``train(spec, recipe, data)`` builds the model, scores it with MeCo before its first step
(``proxy_train.zero_cost``: one forward pass of the first minibatch, which changes nothing of
the training) and runs one loop over the epochs, reading like nanoGPT's: the stage the epoch
belongs to (``Course.stage_at``; a proxy run is one stage, progressive learning grows the
image size and the regularization from stage to stage without rebuilding the model), the
epoch itself (:func:`run_epoch`: the steps on the in-memory training split with batched
on-device augmentation, their losses summed for TSE, then top-1 and loss on the minival
split, with the EMA weights too when the recipe keeps an EMA), then ``report(progress)``,
which may stop the run early (the hook an ASHA/median scheduler plugs into), and
``checkpoint(state)``. The learning rate of every step comes from one :func:`lr_at` of the
global step. ``test`` is evaluated once at the end. It knows nothing of Ray.

A long run can be checkpointed and resumed: ``checkpoint(state)`` receives a
:class:`~proxy_train.checkpoint.TrainState` after every epoch (weights, EMA, optimizer, step
and every random state, the position in the data order included), and ``resume=state``
continues from one. On the CPU a resumed run ends with exactly the numbers of an uninterrupted
one.

The step itself (precision, memory format, optimizer, loss) is ``proxy_train.step.TrainStep``,
the same code ``proxy_train.timing`` measures; the process-wide settings it runs under are
``proxy_train.step.runtime_settings``, also shared with the timing. What a run returns,
:class:`~proxy_train.records.TrainResult` with one
:class:`~proxy_train.records.EpochStats` per epoch, is torch-free data in
``proxy_train.records``.

A candidate's own failure never raises out of ``train``: running out of memory, a loss that
becomes NaN/inf, or any exception while building or running the model gives a ``TrainResult``
with ``status='failed'``, a one-line ``reason`` and its ``failure_kind`` (``stage`` and
``resolution`` say where). Errors of the caller (a bad recipe or precision, an exception
raised by ``report`` or ``checkpoint``, ``KeyboardInterrupt``) do propagate.
"""

from __future__ import annotations

import copy
import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from proxy_train.augment import Augmenter, eval_transform
from proxy_train.checkpoint import TrainState
from proxy_train.data import DataSplits, Split
from proxy_train.ema import ModelEma
from proxy_train.errors import DataError
from proxy_train.feed import draw_batches
from proxy_train.recipe import Recipe, Stage
from proxy_train.records import EpochStats, FailureKind, TrainResult, evaluated_top1
from proxy_train.step import (
    StepPolicy,
    TrainStep,
    describe_failure,
    failure_kind,
    prepare_model,
    runtime_settings,
)
from proxy_train.zero_cost import meco
from search_space.model import build_model, count_model_params
from search_space.spec import ArchSpec

Report = Callable[[TrainResult], "bool | None"]
Checkpoint = Callable[[TrainState], None]
OnStep = Callable[[], None]


def lr_at(step: int, recipe: Recipe, steps_per_epoch: int) -> float:
    """The learning rate of the run's step ``step`` (0-based, counting ``steps_per_epoch``
    steps per epoch): linear warmup to the peak over ``recipe.warmup_epochs``, then cosine to
    0 at ``recipe.epochs``, the staircase exponential decay (x ``decay_rate`` every
    ``decay_epochs``), or constant.

    After the warmup the schedule runs on the position in epochs (epoch + step in the epoch /
    ``steps_per_epoch``), so a run resumed with another batch size (another number of steps
    per epoch, its finished epochs counted at the new size) continues the same curve."""
    peak = recipe.peak_lr()
    warmup_steps = round(recipe.warmup_epochs * steps_per_epoch)
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    epoch, i = divmod(step, steps_per_epoch)
    position = epoch + i / steps_per_epoch
    if recipe.schedule == "cosine":
        warmup = warmup_steps / steps_per_epoch
        progress = (position - warmup) / max(1.0 / steps_per_epoch, recipe.epochs - warmup)
        return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
    if recipe.schedule == "exponential":
        return peak * recipe.decay_rate ** math.floor(position / recipe.decay_epochs)
    return peak


@dataclass(frozen=True, slots=True)
class StageAt:
    """The stage an epoch belongs to: its 0-based ``index``, its first epoch (0-based)."""

    index: int
    first_epoch: int
    stage: Stage

    @property
    def resolution(self) -> int:
        assert self.stage.resolution is not None, "Recipe.plan resolves every stage's size"
        return self.stage.resolution


@dataclass(frozen=True, slots=True)
class Course:
    """What every epoch of one run shares: the stages, the batch, the steps per epoch (whole
    batches only, one shape per step, capped by the recipe) and the evaluation size."""

    recipe: Recipe
    stages: tuple[Stage, ...]
    batch: int
    steps_per_epoch: int
    eval_size: int
    num_classes: int

    @classmethod
    def of(cls, recipe: Recipe, data: DataSplits) -> Course:
        if len(data.train) == 0 or len(data.minival) == 0:
            raise DataError(f"{data.name}: empty train or minival split")
        return cls(recipe, recipe.plan(data.resolution), min(recipe.batch_size, len(data.train)),
                   epoch_steps(recipe, len(data.train)), recipe.eval_size(data.resolution),
                   data.num_classes)

    @property
    def epochs(self) -> int:
        return sum(stage.epochs for stage in self.stages)

    def lr_at(self, step: int) -> float:
        return lr_at(step, self.recipe, self.steps_per_epoch)

    def stage_at(self, epoch: int) -> StageAt:
        """The stage of 0-based ``epoch``."""
        first = 0
        for index, stage in enumerate(self.stages):
            if epoch < first + stage.epochs:
                return StageAt(index, first, stage)
            first += stage.epochs
        raise ValueError(f"epoch {epoch} is past the last stage ({self.epochs} epochs)")


def train(spec: ArchSpec, recipe: Recipe, data: DataSplits, *, device: str | torch.device = "cpu",
          seed: int | None = None, report: Report | None = None,
          precision: str | None = None, test: Split | None = None,
          resume: TrainState | None = None, checkpoint: Checkpoint | None = None,
          on_step: OnStep | None = None, compile: bool = False) -> TrainResult:
    """Train ``spec`` on ``data`` with ``recipe`` (see the module docstring).

    ``seed`` (default ``recipe.seed``) seeds the weights, the shuffling and the augmentation.
    ``precision``: ``'fp32'``, ``'bf16'`` or ``'fp16'`` autocast; default bf16 on CUDA, fp32
    on the CPU. ``report(progress)`` is called after every epoch with the result so far;
    returning True stops the run with ``status='stopped'``. ``checkpoint(state)`` follows it;
    ``resume`` continues from such a state. ``on_step()`` is called after every training
    step (a progress bar). ``compile``: ``torch.compile`` the training step (one compilation
    per stage size).
    """
    start = time.perf_counter()
    dev = torch.device(device)
    seed = recipe.seed if seed is None else seed
    policy = StepPolicy.of(recipe, dev, precision)
    course = Course.of(recipe, data)
    splits = data.train.to(dev), data.minival.to(dev)
    progress = _first(course, seed, dev, policy) if resume is None else _resumed(resume)
    clock = _Clock(start, before=progress.wall_time_s)
    session: Session | None = None
    try:
        with runtime_settings(dev, recipe.cpu_threads):
            session = Session(spec, course, splits, seed, policy, dev, compile, resume)
            progress = _started(progress, session)
            for epoch in range(progress.epochs_run, course.epochs):
                at = course.stage_at(epoch)
                if epoch == at.first_epoch or session.augment is None:
                    session.begin_stage(at, resume)
                    progress = replace(progress, stage=at.index + 1, resolution=at.resolution)
                stats = run_epoch(session, at, epoch, on_step)
                progress = _with_epoch(progress, stats, course.steps_per_epoch, clock())
                stop = _call(report, progress)
                _call(checkpoint, session.state(progress, at.index))
                if stop:
                    progress = _stopped(progress)
                    break
            if test is not None and progress.status == "ok":
                progress = _tested(progress, session.evaluate(test.to(dev)))
    except _CallerError as wrapped:
        raise wrapped.__cause__ from None  # type: ignore[misc]
    except Exception as exc:  # noqa: BLE001 - a candidate's failure becomes a result
        progress = _failed(progress, exc)
    finally:
        del session  # free the model before the next one is built
        _release_memory(dev)
    return replace(progress, wall_time_s=clock())


def run_epoch(session: Session, at: StageAt, epoch: int, on_step: OnStep | None) -> EpochStats:
    """Train the 0-based ``epoch`` of stage ``at`` (a fresh order of the training split, the
    learning rate of each global step), then evaluate on minival; what the epoch did."""
    course = session.course
    tick = time.perf_counter()
    order = torch.randperm(len(session.train), generator=session.shuffle).to(session.device)
    first_step = epoch * course.steps_per_epoch

    def lr(i: int) -> float:
        return course.lr_at(first_step + i)

    assert session.augment is not None, "begin_stage runs before the stage's first epoch"
    losses = train_steps(session.step, session.train, session.augment, order, course.batch,
                         course.steps_per_epoch, course.num_classes, lr,
                         after_step=session.after_step(on_step))
    train_time = time.perf_counter() - tick
    trained, ema = session.evaluate(session.minival)
    return EpochStats(
        epoch=epoch + 1, stage=at.index + 1, resolution=session.augment.resolution,
        randaug_magnitude=at.stage.randaug_magnitude, mixup_alpha=at.stage.mixup_alpha,
        dropout=at.stage.dropout, lr=lr(course.steps_per_epoch - 1),
        train_loss=float(losses.mean()), minival_top1=trained.top1,
        minival_top1_ema=None if ema is None else ema.top1,
        images_per_s=course.steps_per_epoch * course.batch / max(train_time, 1e-9),
        epoch_time_s=time.perf_counter() - tick, minival_loss=trained.loss,
        train_loss_sum=float(losses.double().sum()))


class Session:
    """The objects one training run holds: the data on the device, the model (and its
    compiled step), the optimizer inside the step, the EMA, the shuffling generator, the
    augmenter of the current stage, and the model's MeCo at initialization (None when the
    run continues from a checkpoint: it was scored when it started)."""

    def __init__(self, spec: ArchSpec, course: Course, splits: tuple[Split, Split], seed: int,
                 policy: StepPolicy, device: torch.device, compile: bool,
                 resume: TrainState | None) -> None:
        recipe = course.recipe
        self.course, self.seed, self.policy, self.device = course, seed, policy, device
        self.train, self.minival = splits
        self.model = prepare_model(_build(spec, recipe, course.num_classes,
                                          course.stages[0].dropout, seed), policy, device)
        stepped: nn.Module = self.model
        if compile:
            stepped = torch.compile(self.model, dynamic=False)  # type: ignore[assignment]
        self.step = TrainStep(stepped, policy, device)
        self.ema = ModelEma(self.model, recipe.ema_decay) if recipe.ema_decay else None
        self.shuffle = torch.Generator().manual_seed(seed)
        self.augment: Augmenter | None = None
        self.meco: float | None = None
        if resume is None:
            self.meco = meco(self.model, self.first_batch())
        else:
            self.restore(resume)

    def first_batch(self) -> torch.Tensor:
        """The images of the run's first step, augmented as that step gets them, drawn with
        a copy of the shuffling generator and an augmenter like the first stage's: the run's
        own are left where they are."""
        generator = torch.Generator()
        generator.set_state(self.shuffle.get_state())
        order = torch.randperm(len(self.train), generator=generator).to(self.device)
        index = order[:self.course.batch]
        augment = self._augmenter(self.course.stage_at(0))
        images, _ = augment(self.train.images[index], self.train.labels[index],
                            self.course.num_classes)
        return images.contiguous(memory_format=self.policy.torch_memory_format)

    def _augmenter(self, at: StageAt) -> Augmenter:
        recipe, stage = self.course.recipe, at.stage
        return Augmenter(at.resolution, randaug_magnitude=stage.randaug_magnitude,
                         randaug_layers=recipe.randaug_layers, mixup_alpha=stage.mixup_alpha,
                         seed=self.seed + at.first_epoch, crop_area=(recipe.crop_area, 1.0))

    def begin_stage(self, at: StageAt, resume: TrainState | None) -> None:
        """Set the stage's dropout and augmenter (continuing a resumed stage's augmenter)."""
        self.augment = self._augmenter(at)
        if resume is not None and resume.stage == at.index and resume.augment:
            self.augment.load_state_dict(resume.augment)
        set_dropout(self.model, at.stage.dropout)

    def after_step(self, on_step: OnStep | None) -> OnStep:
        def after() -> None:
            if self.ema is not None:
                self.ema.update(self.model)
            if on_step is not None:
                on_step()
        return after

    def evaluate(self, split: Split) -> tuple[Evaluation, Evaluation | None]:
        """The trained weights and the EMA weights (None without an EMA) on ``split``."""
        size, batch = self.course.eval_size, self.course.recipe.eval_batch_size
        trained = evaluate(self.model, split, size, batch, self.policy)
        ema = None if self.ema is None else evaluate(self.ema.module, split, size, batch,
                                                     self.policy)
        return trained, ema

    def state(self, progress: TrainResult, stage: int) -> TrainState:
        assert self.augment is not None, "a state is taken after an epoch"
        cuda = self.device.type == "cuda"
        return TrainState(
            progress=progress.to_dict(), stage=stage,
            model={k: v.detach().clone() for k, v in self.model.state_dict().items()},
            ema=None if self.ema is None else self.ema.state_dict(),
            # The optimizer's state dict holds its live tensors: copied, or the next step
            # would change a state already handed out.
            optimizer=copy.deepcopy(self.step.optimizer.state_dict()),
            scaler=self.step.scaler.state_dict(),
            torch_rng=torch.get_rng_state(),
            cuda_rng=torch.cuda.get_rng_state(self.device) if cuda else None,
            shuffle=self.shuffle.get_state(), augment=self.augment.state_dict())

    def restore(self, state: TrainState) -> None:
        self.model.load_state_dict(state.model, strict=True)
        if self.ema is not None and state.ema is not None:
            self.ema.load_state_dict(state.ema)
        self.step.optimizer.load_state_dict(state.optimizer)
        self.step.scaler.load_state_dict(state.scaler)
        torch.set_rng_state(state.torch_rng)
        if state.cuda_rng is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state.cuda_rng, self.device)
        self.shuffle.set_state(state.shuffle)


def epoch_steps(recipe: Recipe, num_train: int) -> int:
    """Steps of one epoch: whole batches only (one shape per step), capped by the recipe."""
    steps = num_train // min(recipe.batch_size, num_train)
    if recipe.max_train_batches_per_epoch is not None:
        steps = min(steps, recipe.max_train_batches_per_epoch)
    return steps


def train_steps(step: TrainStep, split: Split, augment: Augmenter, order: torch.Tensor,
                batch: int, steps: int, num_classes: int, lr: Callable[[int], float],
                after_step: OnStep | None = None) -> torch.Tensor:
    """Train ``steps`` batches of ``split`` in ``order``; returns the per-step losses.
    ``lr(i)`` is the learning rate of the epoch's step ``i``; ``after_step()`` runs after
    every step (the EMA update, a progress bar).

    Per-step losses stay on the device and one sync per epoch checks them (a sync per step
    would stall a GPU); the first bad step is still named. On the CPU, where a sync is free,
    a non-finite loss stops the epoch at once.
    """
    step.model.train()
    losses = torch.zeros(steps, device=step.device)
    batches = draw_batches(split.images, split.labels, order, batch, steps)
    for i, (images, labels) in enumerate(batches):
        x, y = augment(images, labels, num_classes)
        step.set_lr(lr(i))
        losses[i] = step(x, y)
        if step.device.type == "cpu" and not math.isfinite(losses[i].item()):
            raise _NonFiniteLoss(i + 1, losses[i].item())
        if after_step is not None:
            after_step()
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        first = int(bad[0])
        raise _NonFiniteLoss(first + 1, losses[first].item())
    return losses


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A model on a split: top-1 accuracy and mean cross-entropy (no label smoothing)."""

    top1: float
    loss: float


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, size: int, batch_size: int,
             policy: StepPolicy) -> Evaluation:
    """Top-1 and loss on ``split`` at image size ``size`` (``augment.eval_transform``)."""
    model.eval()
    device = split.labels.device
    correct = torch.zeros((), dtype=torch.long, device=device)
    loss = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, len(split), batch_size):
        x = eval_transform(split.images[start:start + batch_size], size)
        labels = split.labels[start:start + batch_size]
        with policy.autocast(device):
            logits = model(x.contiguous(memory_format=policy.torch_memory_format))
        correct += (logits.argmax(dim=1) == labels).sum()
        loss += F.cross_entropy(logits.float(), labels, reduction="sum")
    return Evaluation(int(correct) / len(split), float(loss) / len(split))


def set_dropout(model: nn.Module, p: float) -> None:
    """Change the classifier dropout in place (progressive learning grows it per stage)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


# --- the result as the run goes --------------------------------------------------------------

def _first(course: Course, seed: int, device: torch.device, policy: StepPolicy) -> TrainResult:
    """The result before the first epoch."""
    return TrainResult(status="ok", reason="", accuracy=None, epochs_run=0, steps_run=0,
                       wall_time_s=0.0, seed=seed, resolution=course.stage_at(0).resolution,
                       device=str(device), precision=policy.precision, params=0,
                       eval_resolution=course.eval_size, policy=policy.to_dict())


def _resumed(state: TrainState) -> TrainResult:
    return replace(TrainResult.from_dict(state.progress), status="ok", reason="")


def _started(progress: TrainResult, session: Session) -> TrainResult:
    """The result once the model is built: its size, the step as it runs and its MeCo
    (scored when the run started, kept through a resume)."""
    return replace(progress, params=count_model_params(session.model),
                   policy=session.step.describe(),
                   meco=progress.meco if session.meco is None else session.meco)


def _with_epoch(progress: TrainResult, stats: EpochStats, steps: int,
                wall_time_s: float) -> TrainResult:
    return replace(progress, accuracy=evaluated_top1(stats), epochs_run=stats.epoch,
                   steps_run=progress.steps_run + steps, history=(*progress.history, stats),
                   wall_time_s=wall_time_s)


def _stopped(progress: TrainResult) -> TrainResult:
    return replace(progress, status="stopped",
                   reason=f"stopped by report after epoch {progress.epochs_run}")


def _tested(progress: TrainResult,
            test: tuple[Evaluation, Evaluation | None]) -> TrainResult:
    trained, ema = test
    return replace(progress, test_top1=trained.top1,
                   test_top1_ema=None if ema is None else ema.top1)


def _failed(progress: TrainResult, exc: Exception) -> TrainResult:
    """The result of a run that ``exc`` ended: failed, with its reason and kind."""
    if isinstance(exc, _NonFiniteLoss):
        reason, kind = exc.reason(progress.steps_run), FailureKind.DIVERGED
    else:
        reason, kind = describe_failure(exc), failure_kind(exc)
    return replace(progress, status="failed", reason=reason, failure_kind=kind, accuracy=None)


@dataclass(frozen=True, slots=True)
class _Clock:
    """Wall time of the run: since ``start`` (when ``train`` was called), plus ``before``
    (the time spent before a resume)."""

    start: float
    before: float

    def __call__(self) -> float:
        return self.before + time.perf_counter() - self.start


class _NonFiniteLoss(Exception):
    """The loss of the epoch's step ``step`` (1-based) became ``value`` (NaN or inf)."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(step, value)
        self.step = step
        self.value = value

    def reason(self, steps_before: int) -> str:
        kind = "nan" if math.isnan(self.value) else "inf"
        return f"loss became {kind} at step {steps_before + self.step}"


class _CallerError(Exception):
    """Wraps an exception raised by the caller's ``report`` or ``checkpoint`` so it is
    re-raised, not swallowed as the candidate's failure."""


def _call(hook: Callable[[Any], object] | None, value: object) -> bool:
    """Call the caller's ``report`` or ``checkpoint``; its exceptions are re-raised by train."""
    if hook is None:
        return False
    try:
        return bool(hook(value))
    except Exception as exc:  # noqa: BLE001 - the caller's error, re-raised by train
        raise _CallerError() from exc


def _release_memory(device: torch.device) -> None:
    """Collect the freed model now (an OOM leaves cached blocks on the device)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _build(spec: ArchSpec, recipe: Recipe, num_classes: int, dropout: float,
           seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(spec, num_classes=num_classes, dropout=dropout,
                        drop_path=recipe.drop_path)
    if recipe.zero_init:
        _zero_init(model)
    return model


@torch.no_grad()
def _zero_init(model: nn.Module) -> None:
    """Zero the classifier and the last BN scale of each residual branch (``Recipe.zero_init``)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears:
        nn.init.zeros_(linears[-1].weight)
    for block in model.modules():
        if getattr(block, "has_residual", False):
            norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
            if norms:
                nn.init.zeros_(norms[-1].weight)


__all__ = ["Checkpoint", "Course", "EpochStats", "Evaluation", "Report", "Session", "StageAt",
           "TrainResult", "epoch_steps", "evaluate", "lr_at", "run_epoch", "set_dropout", "train",
           "train_steps"]
