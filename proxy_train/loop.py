"""Training a candidate: one plain function, one visible loop.

``train(spec, recipe, data)`` builds the candidate, trains it stage by stage (a proxy run is
one stage; progressive learning grows the image size and the regularization from stage to
stage without rebuilding the model) on the in-memory training split with batched on-device
augmentation, evaluates top-1 on the minival split after every epoch and calls
``report(progress)``, which may stop the run early (the hook an ASHA/median scheduler plugs
into). It knows nothing of Ray.

The step itself (precision, memory format, optimizer, loss) is ``proxy_train.step.TrainStep``,
the same code ``proxy_train.timing`` measures; the process-wide settings it runs under are
``proxy_train.step.runtime_settings``, also shared with the timing.

A candidate's own failure never raises out of ``train``: running out of memory, a loss that
becomes NaN/inf, or any exception while building or running the model gives a ``TrainResult``
with ``status='failed'`` and a one-line ``reason``. Errors of the caller (a bad recipe or
precision, an exception raised by ``report``, ``KeyboardInterrupt``) do propagate.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from proxy_train.augment import Augmenter
from proxy_train.data import DataSplits, Split
from proxy_train.errors import DataError
from proxy_train.recipe import Recipe, Stage
from proxy_train.step import StepPolicy, TrainStep, describe_failure, prepare_model, \
    runtime_settings
from search_space.model import build_model, count_model_params
from search_space.spec import ArchSpec


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Outcome of one training run (``accuracy``: last minival top-1, 0..1).

    ``report`` receives one of these after every epoch (``status='ok'``, the curves so far).
    """

    status: str
    """``'ok'``, ``'stopped'`` (``report`` returned True) or ``'failed'``."""
    reason: str
    accuracy: float | None
    loss_curve: tuple[float, ...]
    """Mean training loss of each completed epoch."""
    epochs_run: int
    steps_run: int
    wall_time_s: float
    seed: int
    resolution: int
    """Image size of the last stage that ran (the only one for a proxy run)."""
    device: str
    precision: str
    params: int
    accuracy_curve: tuple[float, ...] = ()
    """Minival top-1 after each completed epoch."""
    policy: dict[str, object] = field(default_factory=dict)
    """The step as it ran (``TrainStep.describe``): the policy and the optimizer class."""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["loss_curve"] = list(self.loss_curve)
        out["accuracy_curve"] = list(self.accuracy_curve)
        return out


Report = Callable[[TrainResult], "bool | None"]


class _NonFiniteLoss(Exception):
    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"loss became {'nan' if math.isnan(value) else 'inf'} at step {step}")


class _ReportError(Exception):
    """Wraps an exception raised by the caller's ``report`` so it is re-raised, not swallowed."""


def lr_at(step: int, recipe: Recipe, steps_per_epoch: int, total_steps: int) -> float:
    """The learning rate of ``step`` (0-based): linear warmup to the peak over
    ``recipe.warmup_epochs``, then cosine to 0, the staircase exponential decay (x
    ``decay_rate`` every ``decay_epochs``), or constant."""
    peak = recipe.peak_lr()
    warmup_steps = round(recipe.warmup_epochs * steps_per_epoch)
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if recipe.schedule == "cosine":
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
    if recipe.schedule == "exponential":
        return peak * recipe.decay_rate ** math.floor(step / steps_per_epoch / recipe.decay_epochs)
    return peak


def train(spec: ArchSpec, recipe: Recipe, data: DataSplits, *, device: str | torch.device = "cpu",
          seed: int | None = None, report: Report | None = None,
          precision: str | None = None) -> TrainResult:
    """Train ``spec`` on ``data`` with ``recipe`` (see the module docstring).

    ``seed`` (default ``recipe.seed``) seeds the weights, the shuffling and the augmentation.
    ``precision``: ``'fp32'``, ``'bf16'`` or ``'fp16'`` autocast; default bf16 on CUDA, fp32
    on the CPU. ``report(progress)`` is called after every epoch with the result so far;
    returning True stops the run with ``status='stopped'``.
    """
    start = time.perf_counter()
    dev = torch.device(device)
    seed = recipe.seed if seed is None else seed
    policy = StepPolicy.of(recipe, dev, precision)
    if len(data.train) == 0 or len(data.minival) == 0:
        raise DataError(f"{data.name}: empty train or minival split")
    stages = recipe.plan(data.resolution)
    train_split, minival = data.train.to(dev), data.minival.to(dev)
    batch = min(recipe.batch_size, len(train_split))
    steps_per_epoch = epoch_steps(recipe, len(train_split))
    total_steps = steps_per_epoch * recipe.epochs

    progress = TrainResult(status="ok", reason="", accuracy=None, loss_curve=(), epochs_run=0,
                           steps_run=0, wall_time_s=0.0, seed=seed,
                           resolution=_size(stages[0]), device=str(dev),
                           precision=policy.precision, params=0, policy=policy.to_dict())
    model: nn.Module | None = None
    step: TrainStep | None = None
    try:
        with runtime_settings(dev, recipe.cpu_threads):
            model = _build(spec, recipe, data.num_classes, stages[0].dropout, seed)
            progress = replace(progress, params=count_model_params(model))
            step = TrainStep(prepare_model(model, policy, dev), policy, dev)
            progress = replace(progress, policy=step.describe())
            shuffle = torch.Generator().manual_seed(seed)
            for stage in stages:
                augment = _augmenter(recipe, stage, seed + progress.epochs_run)
                set_dropout(model, stage.dropout)
                for _ in range(stage.epochs):
                    order = torch.randperm(len(train_split), generator=shuffle).to(dev)
                    losses = run_epoch(step, train_split, augment, order, batch,
                                       steps_per_epoch, data.num_classes,
                                       lambda i: lr_at(i, recipe, steps_per_epoch, total_steps),
                                       progress.steps_run)
                    accuracy = evaluate(model, minival, augment, recipe.eval_batch_size, policy)
                    progress = replace(
                        progress, accuracy=accuracy, epochs_run=progress.epochs_run + 1,
                        steps_run=progress.steps_run + steps_per_epoch,
                        loss_curve=(*progress.loss_curve, float(losses.mean())),
                        accuracy_curve=(*progress.accuracy_curve, accuracy),
                        resolution=augment.resolution,
                        wall_time_s=time.perf_counter() - start)
                    if _reported_stop(report, progress):
                        progress = replace(progress, status="stopped", reason=(
                            f"stopped by report after epoch {progress.epochs_run}"))
                        break
                if progress.status == "stopped":
                    break
    except _ReportError as wrapped:
        raise wrapped.__cause__ from None  # type: ignore[misc]
    except _NonFiniteLoss as exc:
        progress = replace(progress, status="failed", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a candidate's failure becomes a result
        progress = replace(progress, status="failed", reason=describe_failure(exc))
    finally:
        # Free the candidate before the next one is built (an OOM leaves cached blocks).
        del model, step
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    if progress.status == "failed":
        progress = replace(progress, accuracy=None)
    return replace(progress, wall_time_s=time.perf_counter() - start)


def epoch_steps(recipe: Recipe, num_train: int) -> int:
    """Steps of one epoch: whole batches only (one shape per step), capped by the recipe."""
    steps = num_train // min(recipe.batch_size, num_train)
    if recipe.max_train_batches_per_epoch is not None:
        steps = min(steps, recipe.max_train_batches_per_epoch)
    return steps


def run_epoch(step: TrainStep, split: Split, augment: Augmenter, order: torch.Tensor, batch: int,
              steps: int, num_classes: int, lr: Callable[[int], float],
              first_step: int) -> torch.Tensor:
    """Train ``steps`` batches of ``split`` in ``order``; returns the per-step losses.

    Per-step losses stay on the device and one sync per epoch checks them (a sync per step
    would stall a GPU); the first bad step is still named. On the CPU, where a sync is free,
    a non-finite loss stops the epoch at once.
    """
    step.model.train()
    losses = torch.zeros(steps, device=step.device)
    for i in range(steps):
        index = order[i * batch:(i + 1) * batch]
        x, y = augment(split.images[index], split.labels[index], num_classes)
        step.set_lr(lr(first_step + i))
        losses[i] = step(x, y)
        if step.device.type == "cpu" and not math.isfinite(losses[i].item()):
            raise _NonFiniteLoss(first_step + i + 1, losses[i].item())
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        first = int(bad[0])
        raise _NonFiniteLoss(first_step + first + 1, losses[first].item())
    return losses


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, augment: Augmenter, batch_size: int,
             policy: StepPolicy) -> float:
    """Top-1 accuracy on ``split`` (eval transform: plain resize to ``augment``'s size)."""
    model.eval()
    device = split.labels.device
    correct = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, len(split), batch_size):
        x = augment.eval(split.images[start:start + batch_size])
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


def _reported_stop(report: Report | None, progress: TrainResult) -> bool:
    if report is None:
        return False
    try:
        return bool(report(progress))
    except Exception as exc:  # noqa: BLE001 - the caller's error, re-raised by train
        raise _ReportError() from exc


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


__all__ = ["Report", "TrainResult", "epoch_steps", "evaluate", "lr_at", "run_epoch",
           "set_dropout", "train"]
