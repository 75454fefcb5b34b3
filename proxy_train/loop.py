"""Training a model: one plain function, one visible loop, for proxies and final training.

``train(spec, recipe, data)`` builds the model, trains it stage by stage (a proxy run is one
stage; progressive learning grows the image size and the regularization from stage to stage
without rebuilding the model) on the in-memory training split with batched on-device
augmentation, evaluates top-1 on the minival split after every epoch (with the EMA weights too
when the recipe keeps an EMA) and calls ``report(progress)``, which may stop the run early (the
hook an ASHA/median scheduler plugs into). ``test`` is evaluated once at the end. It knows
nothing of Ray.

A long run can be checkpointed and resumed: ``checkpoint(state)`` receives a
:class:`~proxy_train.checkpoint.TrainState` after every epoch (weights, EMA, optimizer, step
and every random state, the position in the data order included), and ``resume=state``
continues from one. On the CPU a resumed run ends with exactly the numbers of an uninterrupted
one.

The step itself (precision, memory format, optimizer, loss) is ``proxy_train.step.TrainStep``,
the same code ``proxy_train.timing`` measures; the process-wide settings it runs under are
``proxy_train.step.runtime_settings``, also shared with the timing.

A candidate's own failure never raises out of ``train``: running out of memory, a loss that
becomes NaN/inf, or any exception while building or running the model gives a ``TrainResult``
with ``status='failed'`` and a one-line ``reason`` (``stage`` and ``resolution`` say where).
Errors of the caller (a bad recipe or precision, an exception raised by ``report`` or
``checkpoint``, ``KeyboardInterrupt``) do propagate.
"""

from __future__ import annotations

import copy
import gc
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from proxy_train.augment import Augmenter, eval_transform
from proxy_train.checkpoint import TrainState
from proxy_train.data import DataSplits, Split
from proxy_train.ema import ModelEma
from proxy_train.errors import DataError
from proxy_train.feed import draw_batches
from proxy_train.recipe import Recipe, Stage
from proxy_train.step import (
    StepPolicy,
    TrainStep,
    describe_failure,
    prepare_model,
    runtime_settings,
)
from search_space.model import build_model, count_model_params
from search_space.spec import ArchSpec


@dataclass(frozen=True, slots=True)
class EpochStats:
    """What one epoch did (``epoch`` and ``stage`` 1-based)."""

    epoch: int
    stage: int
    resolution: int
    randaug_magnitude: float
    mixup_alpha: float
    dropout: float
    lr: float
    """Learning rate of the epoch's last step."""
    train_loss: float
    """Mean training loss of the epoch."""
    minival_top1: float
    """Minival top-1 of the trained weights, at the eval size."""
    minival_top1_ema: float | None
    """Minival top-1 of the EMA weights (None without an EMA)."""
    images_per_s: float
    """Training images per second (augmentation and steps, not evaluation)."""
    epoch_time_s: float
    """Training and evaluation."""


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Outcome of one training run (``accuracy``: last minival top-1, 0..1, of the weights the
    recipe evaluates: the EMA when it keeps one).

    ``report`` receives one of these after every epoch (``status='ok'``, the history so far).
    """

    status: str
    """``'ok'``, ``'stopped'`` (``report`` returned True) or ``'failed'``."""
    reason: str
    accuracy: float | None
    epochs_run: int
    steps_run: int
    wall_time_s: float
    seed: int
    resolution: int
    """Image size of the stage that ran last (the only one for a proxy run)."""
    device: str
    precision: str
    params: int
    stage: int = 1
    """The stage (1-based) that ran last: where a failure happened."""
    eval_resolution: int | None = None
    history: tuple[EpochStats, ...] = ()
    policy: dict[str, object] = field(default_factory=dict)
    """The step as it ran (``TrainStep.describe``): the policy and the optimizer class."""
    test_top1: float | None = None
    """Test top-1 of the trained weights at the end (None without a test split)."""
    test_top1_ema: float | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def loss_curve(self) -> tuple[float, ...]:
        """Mean training loss of each completed epoch."""
        return tuple(e.train_loss for e in self.history)

    @property
    def accuracy_curve(self) -> tuple[float, ...]:
        """The evaluated minival top-1 (EMA weights when kept) after each completed epoch."""
        return tuple(_evaluated(e) for e in self.history)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["history"] = [asdict(e) for e in self.history]
        out["loss_curve"] = list(self.loss_curve)
        out["accuracy_curve"] = list(self.accuracy_curve)
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> TrainResult:
        """Inverse of ``to_dict`` (the derived curves are ignored)."""
        values = {k: v for k, v in obj.items() if k not in ("loss_curve", "accuracy_curve")}
        values["history"] = tuple(EpochStats(**e) for e in obj.get("history", ()))
        return cls(**values)


Report = Callable[[TrainResult], "bool | None"]
Checkpoint = Callable[[TrainState], None]


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


def lr_at(epoch: int, step: int, recipe: Recipe, steps_per_epoch: int) -> float:
    """The learning rate of step ``step`` (0-based) of epoch ``epoch`` (0-based): linear warmup
    to the peak over ``recipe.warmup_epochs``, then cosine to 0 at ``recipe.epochs``, the
    staircase exponential decay (x ``decay_rate`` every ``decay_epochs``), or constant.

    The schedule runs on the position in epochs (``epoch + step / steps_per_epoch``), so a
    run resumed with another batch size (another number of steps per epoch) continues the
    same curve."""
    peak = recipe.peak_lr()
    warmup_steps = round(recipe.warmup_epochs * steps_per_epoch)
    done = epoch * steps_per_epoch + step
    if done < warmup_steps:
        return peak * (done + 1) / warmup_steps
    position = epoch + step / steps_per_epoch
    if recipe.schedule == "cosine":
        warmup = warmup_steps / steps_per_epoch
        progress = (position - warmup) / max(1.0 / steps_per_epoch, recipe.epochs - warmup)
        return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
    if recipe.schedule == "exponential":
        return peak * recipe.decay_rate ** math.floor(position / recipe.decay_epochs)
    return peak


def train(spec: ArchSpec, recipe: Recipe, data: DataSplits, *, device: str | torch.device = "cpu",
          seed: int | None = None, report: Report | None = None,
          precision: str | None = None, test: Split | None = None,
          resume: TrainState | None = None, checkpoint: Checkpoint | None = None,
          on_step: Callable[[], None] | None = None, compile: bool = False) -> TrainResult:
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
    if len(data.train) == 0 or len(data.minival) == 0:
        raise DataError(f"{data.name}: empty train or minival split")
    stages = recipe.plan(data.resolution)
    eval_size = recipe.eval_size(data.resolution)
    train_split, minival = data.train.to(dev), data.minival.to(dev)
    batch = min(recipe.batch_size, len(train_split))
    steps_per_epoch = epoch_steps(recipe, len(train_split))
    progress = TrainResult(status="ok", reason="", accuracy=None, epochs_run=0, steps_run=0,
                           wall_time_s=0.0, seed=seed, resolution=_size(stages[0]),
                           device=str(dev), precision=policy.precision, params=0,
                           eval_resolution=eval_size, policy=policy.to_dict())
    if resume is not None:
        progress = replace(TrainResult.from_dict(resume.progress), status="ok", reason="")
    before = progress.wall_time_s  # time spent before a resume

    def wall() -> float:
        return before + time.perf_counter() - start

    run: _Session | None = None
    try:
        with runtime_settings(dev, recipe.cpu_threads):
            run = _Session(spec, recipe, data.num_classes, stages[0].dropout, seed, policy, dev,
                           compile)
            if resume is not None:
                run.restore(resume)
            progress = replace(progress, params=count_model_params(run.model),
                               policy=run.step.describe())
            for index, first, stage in _stage_starts(stages):
                if first + stage.epochs <= progress.epochs_run:
                    continue  # finished before the run was resumed
                augment = _augmenter(recipe, stage, seed + first)
                if resume is not None and resume.stage == index and resume.augment:
                    augment.load_state_dict(resume.augment)
                set_dropout(run.model, stage.dropout)
                progress = replace(progress, stage=index + 1, resolution=_size(stage))
                for _ in range(max(first, progress.epochs_run), first + stage.epochs):
                    tick = time.perf_counter()
                    order = torch.randperm(len(train_split), generator=run.shuffle).to(dev)
                    epoch = progress.epochs_run

                    def lr(i: int, epoch: int = epoch) -> float:
                        return lr_at(epoch, i, recipe, steps_per_epoch)

                    losses = run_epoch(run.step, train_split, augment, order, batch,
                                       steps_per_epoch, data.num_classes, lr,
                                       after_step=run.after_step(on_step))
                    train_time = time.perf_counter() - tick
                    top1, top1_ema = run.evaluate(minival, eval_size, recipe.eval_batch_size)
                    stats = EpochStats(
                        epoch=progress.epochs_run + 1, stage=index + 1,
                        resolution=augment.resolution,
                        randaug_magnitude=stage.randaug_magnitude,
                        mixup_alpha=stage.mixup_alpha, dropout=stage.dropout,
                        lr=lr(steps_per_epoch - 1),
                        train_loss=float(losses.mean()), minival_top1=top1,
                        minival_top1_ema=top1_ema,
                        images_per_s=steps_per_epoch * batch / max(train_time, 1e-9),
                        epoch_time_s=time.perf_counter() - tick)
                    progress = replace(
                        progress, accuracy=_evaluated(stats), epochs_run=stats.epoch,
                        steps_run=progress.steps_run + steps_per_epoch,
                        history=(*progress.history, stats), wall_time_s=wall())
                    stop = _call(report, progress)
                    _call(checkpoint, run.state(progress, index, augment))
                    if stop:
                        progress = replace(progress, status="stopped", reason=(
                            f"stopped by report after epoch {progress.epochs_run}"))
                        break
                if progress.status == "stopped":
                    break
            if test is not None and progress.status == "ok":
                top1, top1_ema = run.evaluate(test.to(dev), eval_size, recipe.eval_batch_size)
                progress = replace(progress, test_top1=top1, test_top1_ema=top1_ema)
    except _CallerError as wrapped:
        raise wrapped.__cause__ from None  # type: ignore[misc]
    except _NonFiniteLoss as exc:
        progress = replace(progress, status="failed", reason=exc.reason(progress.steps_run))
    except Exception as exc:  # noqa: BLE001 - a candidate's failure becomes a result
        progress = replace(progress, status="failed", reason=describe_failure(exc))
    finally:
        # Free the model before the next one is built (an OOM leaves cached blocks).
        del run
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    if progress.status == "failed":
        progress = replace(progress, accuracy=None)
    return replace(progress, wall_time_s=wall())


class _Session:
    """The objects one training run holds: the model (and its compiled step), the optimizer
    inside the step, the EMA, and the shuffling generator."""

    def __init__(self, spec: ArchSpec, recipe: Recipe, num_classes: int, dropout: float,
                 seed: int, policy: StepPolicy, device: torch.device, compile: bool) -> None:
        self.model = prepare_model(_build(spec, recipe, num_classes, dropout, seed), policy,
                                   device)
        stepped: nn.Module = self.model
        if compile:
            stepped = torch.compile(self.model, dynamic=False)  # type: ignore[assignment]
        self.step = TrainStep(stepped, policy, device)
        self.ema = ModelEma(self.model, recipe.ema_decay) if recipe.ema_decay else None
        self.shuffle = torch.Generator().manual_seed(seed)
        self.policy = policy
        self.device = device

    def after_step(self, on_step: Callable[[], None] | None) -> Callable[[], None]:
        def after() -> None:
            if self.ema is not None:
                self.ema.update(self.model)
            if on_step is not None:
                on_step()
        return after

    def evaluate(self, split: Split, size: int, batch: int) -> tuple[float, float | None]:
        """Top-1 of the trained weights and of the EMA weights (None without an EMA)."""
        top1 = evaluate(self.model, split, size, batch, self.policy)
        ema = None if self.ema is None else evaluate(self.ema.module, split, size, batch,
                                                     self.policy)
        return top1, ema

    def state(self, progress: TrainResult, stage: int, augment: Augmenter) -> TrainState:
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
            shuffle=self.shuffle.get_state(), augment=augment.state_dict())

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


def run_epoch(step: TrainStep, split: Split, augment: Augmenter, order: torch.Tensor, batch: int,
              steps: int, num_classes: int, lr: Callable[[int], float],
              after_step: Callable[[], None] | None = None) -> torch.Tensor:
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


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, size: int, batch_size: int,
             policy: StepPolicy) -> float:
    """Top-1 accuracy on ``split`` at image size ``size`` (``augment.eval_transform``)."""
    model.eval()
    device = split.labels.device
    correct = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, len(split), batch_size):
        x = eval_transform(split.images[start:start + batch_size], size)
        with policy.autocast(device):
            logits = model(x.contiguous(memory_format=policy.torch_memory_format))
        correct += (logits.argmax(dim=1) == split.labels[start:start + batch_size]).sum()
    return int(correct) / len(split)


def set_dropout(model: nn.Module, p: float) -> None:
    """Change the classifier dropout in place (progressive learning grows it per stage)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


def _build(spec: ArchSpec, recipe: Recipe, num_classes: int, dropout: float,
           seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(spec, num_classes=num_classes, dropout=dropout,
                        drop_path=recipe.drop_path)
    if recipe.zero_init:
        _zero_init(model)
    return model


def _size(stage: Stage) -> int:
    assert stage.resolution is not None, "Recipe.plan resolves every stage's resolution"
    return stage.resolution


def _augmenter(recipe: Recipe, stage: Stage, seed: int) -> Augmenter:
    return Augmenter(_size(stage), randaug_magnitude=stage.randaug_magnitude,
                     randaug_layers=recipe.randaug_layers, mixup_alpha=stage.mixup_alpha,
                     seed=seed, crop_area=(recipe.crop_area, 1.0))


def _stage_starts(stages: tuple[Stage, ...]) -> Iterator[tuple[int, int, Stage]]:
    """``(index, first epoch, stage)`` of every stage (0-based)."""
    first = 0
    for index, stage in enumerate(stages):
        yield index, first, stage
        first += stage.epochs


def _evaluated(stats: EpochStats) -> float:
    """The top-1 a run reports: the EMA's when there is one."""
    return stats.minival_top1 if stats.minival_top1_ema is None else stats.minival_top1_ema


def _call(hook: Callable[[Any], object] | None, value: object) -> bool:
    """Call the caller's ``report`` or ``checkpoint``; its exceptions are re-raised by train."""
    if hook is None:
        return False
    try:
        return bool(hook(value))
    except Exception as exc:  # noqa: BLE001 - the caller's error, re-raised by train
        raise _CallerError() from exc


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


__all__ = ["Checkpoint", "EpochStats", "Report", "TrainResult", "epoch_steps", "evaluate",
           "lr_at", "run_epoch", "set_dropout", "train"]
