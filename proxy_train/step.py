"""The training step: one definition shared by the loop that trains and the timing that measures.

A search rewards candidates for a fast *training* step, so the step it times must be the step
it trains. :class:`StepPolicy` holds everything that decides what a step costs (precision,
memory format, optimizer and its hyperparameters, the loss), is derived from a ``Recipe`` in
one place (:meth:`StepPolicy.of`), and :class:`TrainStep` executes it: forward under autocast,
cross-entropy with label smoothing against (soft) targets, backward through the grad scaler
(active for fp16 only), the optimizer step. ``proxy_train.loop`` and ``proxy_train.timing``
both call ``TrainStep``; neither builds its own optimizer or loss.

:func:`runtime_settings` is the other shared piece: the process-wide settings training runs
under (cuDNN autotuning on CUDA; denormal flushing and a thread count on the CPU), restored on
exit. :func:`describe_failure` is the one wording of a candidate's failure, and
:func:`failure_kind` its kind (``proxy_train.records.FailureKind``), which code tests instead
of the wording.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from proxy_train.errors import RecipeError
from proxy_train.optim import RMSpropTF
from proxy_train.recipe import Recipe
from proxy_train.records import FailureKind

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
MEMORY_FORMATS: tuple[str, ...] = ("channels_last", "contiguous")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_OOM_TYPES = (torch.OutOfMemoryError, torch.cuda.OutOfMemoryError)


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """What one training step does, and so what it costs (see the module docstring)."""

    precision: str
    """``'fp32'``, or ``'bf16'`` / ``'fp16'`` autocast (fp16 with a grad scaler)."""
    memory_format: str
    """``'channels_last'`` (what GPU training uses; on the CPU, oneDNN ran EfficientNet-style
    blocks ~2.4x faster in it than NCHW at proxy resolutions) or ``'contiguous'``."""
    optimizer: str
    lr: float
    """The optimizer's peak learning rate (already scaled by batch / 256)."""
    weight_decay: float
    label_smoothing: float

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise RecipeError(f"precision {self.precision!r} not in {PRECISIONS}")
        if self.memory_format not in MEMORY_FORMATS:
            raise RecipeError(f"memory_format {self.memory_format!r} not in {MEMORY_FORMATS}")

    @classmethod
    def of(cls, recipe: Recipe, device: str | torch.device,
           precision: str | None = None) -> StepPolicy:
        """The step ``recipe`` trains with on ``device``. ``precision`` defaults to bf16 on
        CUDA and fp32 elsewhere; pass the hardware profile's (fp16 on V100/T4)."""
        cuda = torch.device(device).type == "cuda"
        return cls(precision=precision or ("bf16" if cuda else "fp32"),
                   memory_format="channels_last", optimizer=recipe.optimizer,
                   lr=recipe.peak_lr(), weight_decay=recipe.weight_decay,
                   label_smoothing=recipe.label_smoothing)

    @property
    def torch_memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.memory_format == "channels_last" \
            else torch.contiguous_format

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        dtype = _AMP_DTYPES.get(self.precision)
        return torch.autocast(device.type, dtype=dtype) if dtype is not None \
            else contextlib.nullcontext()

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """Weight decay on conv/linear weights only (the official code skips BN and biases)."""
        decay = [p for p in model.parameters() if p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": self.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if self.optimizer == "rmsprop":
            # The paper's RMSProp (decay 0.9, momentum 0.9, epsilon 1e-3) with TF semantics.
            return RMSpropTF(groups, lr=self.lr, decay=0.9, momentum=0.9, eps=1e-3)
        # foreach: one kernel per op over all tensors (the CPU default is a per-tensor loop).
        if self.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=self.lr, momentum=0.9, nesterov=True,
                                   foreach=True)
        return torch.optim.AdamW(groups, lr=self.lr, foreach=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainStep:
    """One model's training step under a policy: ``step(x, y) -> loss`` (detached, on the
    device). ``x`` is a float image batch, ``y`` soft targets ``[B, classes]`` or labels."""

    def __init__(self, model: nn.Module, policy: StepPolicy, device: torch.device) -> None:
        self.model = model
        self.policy = policy
        self.device = device
        self.optimizer = policy.make_optimizer(model)
        self.scaler = torch.amp.GradScaler(device.type, enabled=policy.precision == "fp16")

    def describe(self) -> dict[str, object]:
        """The step as it runs: the policy, the optimizer's class and the memory format the
        model's first 4-D weight really has."""
        weight = next((p for p in self.model.parameters() if p.ndim == 4), None)
        layout = "contiguous"
        if weight is not None and weight.is_contiguous(memory_format=torch.channels_last) \
                and not weight.is_contiguous():
            layout = "channels_last"
        return {**self.policy.to_dict(), "optimizer_class": type(self.optimizer).__name__,
                "weight_memory_format": layout if weight is not None else None}

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=self.policy.torch_memory_format)
        with self.policy.autocast(self.device):
            logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.policy.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()


def prepare_model(model: nn.Module, policy: StepPolicy, device: torch.device) -> nn.Module:
    """Move ``model`` to ``device`` in the policy's memory format."""
    # torch's stubs lack Module.to's documented memory_format keyword.
    return model.to(device, memory_format=policy.torch_memory_format)  # type: ignore[call-overload]


@contextlib.contextmanager
def runtime_settings(device: torch.device, threads: int | None = None) -> Iterator[None]:
    """The process-wide settings a training step runs under, restored on exit.

    CUDA: cuDNN autotuning (shapes are fixed within a run, so it picks the fastest kernels).
    CPU: denormal floats flushed to zero (tiny gradients and decayed weights are 10-100x
    slower on x86 otherwise) and ``threads`` intra-op threads when given.
    """
    benchmark = torch.backends.cudnn.benchmark
    previous_threads = torch.get_num_threads()
    cuda = device.type == "cuda"
    flushing = False if cuda else _flushes_denormals()
    try:
        if cuda:
            torch.backends.cudnn.benchmark = True
        else:
            torch.set_flush_denormal(True)
            if threads is not None:
                torch.set_num_threads(threads)
        yield
    finally:
        torch.backends.cudnn.benchmark = benchmark
        torch.set_num_threads(previous_threads)
        if not cuda:
            torch.set_flush_denormal(flushing)


def _flushes_denormals() -> bool:
    """Whether the CPU currently flushes denormal floats to zero (torch has no getter)."""
    tiny = torch.tensor(1e-38, dtype=torch.float32)
    return bool((tiny * 1e-3).item() == 0.0)


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, _OOM_TYPES) or "out of memory" in str(exc).lower()


def failure_kind(exc: BaseException) -> FailureKind:
    """``OOM`` for running out of memory, ``ERROR`` for any other exception."""
    return FailureKind.OOM if is_out_of_memory(exc) else FailureKind.ERROR


def describe_failure(exc: BaseException) -> str:
    """One line (at most 500 characters) naming why a candidate failed:
    ``out of memory: ...`` or ``ExceptionType: first line of the message``."""
    text = str(exc).strip()
    message = text.splitlines()[0] if text else ""
    kind = "out of memory" if failure_kind(exc) is FailureKind.OOM else type(exc).__name__
    return f"{kind}: {message}"[:500]


__all__ = ["MEMORY_FORMATS", "PRECISIONS", "StepPolicy", "TrainStep", "describe_failure",
           "failure_kind", "is_out_of_memory", "prepare_model", "runtime_settings"]
