"""Proxy training: one plain function, one visible loop.

``train(spec, recipe, data)`` builds the candidate, trains it for ``recipe.epochs`` on the
in-memory training split with batched on-device augmentation, evaluates top-1 on the minival
split after every epoch and calls ``report(epoch, metrics)``, which may stop the run early
(the hook an ASHA/median scheduler plugs into). It knows nothing of Ray.

A candidate's own failure never raises out of ``train``: running out of memory, a loss that
becomes NaN/inf, or any exception while building or running the model gives a ``TrainResult``
with ``status='failed'`` and a one-line ``reason``. Errors of the caller (a bad recipe or
precision, an exception raised by ``report``, ``KeyboardInterrupt``) do propagate.

On CUDA the loop uses bf16 autocast (fp16 with a grad scaler on request), channels-last
tensors and cuDNN autotuning, as real training does; on the CPU it runs fp32, channels-last.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from proxy_train.augment import Augmenter
from proxy_train.data import DataSplits, Split
from proxy_train.errors import DataError, RecipeError
from proxy_train.optim import RMSpropTF
from proxy_train.recipe import Recipe
from search_space.model import build_model, count_model_params
from search_space.spec import ArchSpec

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
Report = Callable[[int, dict[str, float]], "bool | None"]


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Outcome of one proxy-training run (``accuracy``: last minival top-1, 0..1)."""

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
    device: str
    precision: str
    params: int
    accuracy_curve: tuple[float, ...] = ()
    """Minival top-1 after each completed epoch."""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["loss_curve"] = list(self.loss_curve)
        out["accuracy_curve"] = list(self.accuracy_curve)
        return out


class _NonFiniteLoss(Exception):
    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"loss became {'nan' if math.isnan(value) else 'inf'} at step {step}")


class _ReportError(Exception):
    """Wraps an exception raised by the caller's ``report`` so it is re-raised, not swallowed."""


def train(spec: ArchSpec, recipe: Recipe, data: DataSplits, *, device: str | torch.device = "cpu",
          seed: int | None = None, report: Report | None = None,
          precision: str | None = None) -> TrainResult:
    """Proxy-train ``spec`` on ``data`` with ``recipe`` (see the module docstring).

    ``seed`` (default ``recipe.seed``) seeds the weights, the shuffling and the augmentation.
    ``precision``: ``'fp32'``, ``'bf16'`` or ``'fp16'`` autocast; default bf16 on CUDA, fp32
    on the CPU. ``report(epoch, {"accuracy", "loss", "epoch", "steps"})`` is called after every
    epoch (1-based); returning True stops the run with ``status='stopped'``.
    """
    start = time.perf_counter()
    dev = torch.device(device)
    seed = recipe.seed if seed is None else seed
    cuda = dev.type == "cuda"
    precision = precision or ("bf16" if cuda else "fp32")
    if precision not in PRECISIONS:
        raise RecipeError(f"precision {precision!r} not in {PRECISIONS}")
    if len(data.train) == 0 or len(data.minival) == 0:
        raise DataError(f"{data.name}: empty train or minival split")
    resolution = recipe.train_resolution(data.resolution)
    train_split, minival = data.train.to(dev), data.minival.to(dev)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    # channels-last is what GPU training uses, and on the CPU (oneDNN) it measured ~2.4x
    # faster than NCHW for EfficientNet-style blocks at proxy resolutions.
    memory_format = torch.channels_last
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
    else:
        # Denormal floats (tiny gradients, decayed weights) are 10-100x slower on x86 CPUs.
        # The setting is process-wide, so it is restored when training ends.
        flushing = _flushes_denormals()
        torch.set_flush_denormal(True)
    threads = torch.get_num_threads()
    if not cuda and recipe.cpu_threads is not None:
        torch.set_num_threads(recipe.cpu_threads)

    n = len(train_split)
    batch = min(recipe.batch_size, n)
    steps_per_epoch = n // batch  # drop the ragged last batch: one shape per step
    if recipe.max_train_batches_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, recipe.max_train_batches_per_epoch)
    total_steps = steps_per_epoch * recipe.epochs
    warmup_steps = round(recipe.warmup_epochs * steps_per_epoch)
    peak_lr = recipe.peak_lr()

    def get_lr(step: int) -> float:
        """Linear warmup to the peak, then cosine to 0 / staircase exponential / constant."""
        if step < warmup_steps:
            return peak_lr * (step + 1) / warmup_steps
        if recipe.schedule == "cosine":
            progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        if recipe.schedule == "exponential":
            return peak_lr * recipe.decay_rate ** math.floor(step / steps_per_epoch
                                                             / recipe.decay_epochs)
        return peak_lr

    loss_curve: list[float] = []
    accuracy_curve: list[float] = []
    accuracy: float | None = None
    status, reason, step, params = "ok", "", 0, 0
    model: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    try:
        torch.manual_seed(seed)
        model = build_model(spec, num_classes=data.num_classes, dropout=recipe.dropout,
                            drop_path=recipe.drop_path)
        params = count_model_params(model)
        if recipe.zero_init:
            _zero_init(model)
        model = model.to(dev, memory_format=memory_format)
        optimizer = _make_optimizer(model, recipe)
        scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")
        augment = Augmenter(resolution, randaug_magnitude=recipe.randaug_magnitude,
                            randaug_layers=recipe.randaug_layers,
                            mixup_alpha=recipe.mixup_alpha, seed=seed,
                            crop_area=(recipe.crop_area, 1.0))
        shuffle = torch.Generator().manual_seed(seed)
        autocast = (torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype is not None
                    else nullcontext())

        for epoch in range(1, recipe.epochs + 1):
            model.train()
            order = torch.randperm(n, generator=shuffle).to(dev)
            # Per-step losses stay on the device; one sync per epoch checks them (a sync per
            # step would stall a GPU), and the buffer still names the first bad step.
            losses = torch.zeros(steps_per_epoch, device=dev)
            for i in range(steps_per_epoch):
                index = order[i * batch:(i + 1) * batch]
                x, y = augment(train_split.images[index], train_split.labels[index],
                               data.num_classes)
                x = x.contiguous(memory_format=memory_format)
                for group in optimizer.param_groups:
                    group["lr"] = get_lr(step)
                with autocast:
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=recipe.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                losses[i] = loss.detach()
                step += 1
                if not cuda and not math.isfinite(losses[i].item()):
                    raise _NonFiniteLoss(step, losses[i].item())
            bad = (~torch.isfinite(losses)).nonzero()
            if len(bad):
                first = int(bad[0])
                raise _NonFiniteLoss(step - steps_per_epoch + first + 1, losses[first].item())
            loss_curve.append(float(losses.mean()))
            accuracy = _evaluate(model, minival, augment, recipe.eval_batch_size, autocast,
                                 memory_format)
            accuracy_curve.append(accuracy)
            if report is not None:
                metrics = {"accuracy": accuracy, "loss": loss_curve[-1], "epoch": float(epoch),
                           "steps": float(step)}
                try:
                    stop = report(epoch, metrics)
                except Exception as exc:  # noqa: BLE001 - the caller's error, re-raised below
                    raise _ReportError() from exc
                if stop:
                    status, reason = "stopped", f"stopped by report after epoch {epoch}"
                    break
    except _ReportError as wrapped:
        raise wrapped.__cause__ from None  # type: ignore[misc]
    except _NonFiniteLoss as exc:
        status, reason = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - a candidate's failure becomes a result
        status, reason = "failed", _describe(exc)
    finally:
        torch.set_num_threads(threads)
        if not cuda:
            torch.set_flush_denormal(flushing)
        # Free the candidate before the next one is built (an OOM leaves cached blocks).
        del model, optimizer
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return TrainResult(
        status=status, reason=reason, accuracy=accuracy, loss_curve=tuple(loss_curve),
        epochs_run=len(loss_curve), steps_run=step,
        wall_time_s=time.perf_counter() - start, seed=seed, resolution=resolution,
        device=str(dev), precision=precision, params=params,
        accuracy_curve=tuple(accuracy_curve),
    )


def _flushes_denormals() -> bool:
    """Whether the CPU currently flushes denormal floats to zero (torch has no getter)."""
    tiny = torch.tensor(1e-38, dtype=torch.float32)
    return bool((tiny * 1e-3).item() == 0.0)


def _describe(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in message.lower():
        return f"out of memory: {message}"[:500]
    return f"{type(exc).__name__}: {message}"[:500]


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


def _make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only (the official code skips BN and biases)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    lr = recipe.peak_lr()
    if recipe.optimizer == "rmsprop":
        # The paper's RMSProp (decay 0.9, momentum 0.9, epsilon 1e-3) with TF semantics.
        return RMSpropTF(groups, lr=lr, decay=0.9, momentum=0.9, eps=1e-3)
    # foreach: one kernel per op over all tensors (the CPU default is a per-tensor loop).
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, foreach=True)
    return torch.optim.AdamW(groups, lr=lr, foreach=True)


@torch.no_grad()
def _evaluate(model: nn.Module, split: Split, augment: Augmenter, batch_size: int,
              autocast: object, memory_format: torch.memory_format) -> float:
    """Top-1 accuracy on ``split`` (eval transform: plain resize to the proxy resolution)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=split.labels.device)
    for start in range(0, len(split), batch_size):
        x = augment.eval(split.images[start:start + batch_size])
        with autocast:  # type: ignore[attr-defined]
            logits = model(x.contiguous(memory_format=memory_format))
        correct += (logits.argmax(dim=1) == split.labels[start:start + batch_size]).sum()
    return int(correct) / len(split)
