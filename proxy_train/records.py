"""What a training run and a step timing produce: plain frozen data, without torch.

``proxy_train.loop.train`` returns a :class:`TrainResult` (one :class:`EpochStats` per epoch
in its history) and ``proxy_train.timing`` a :class:`StepTiming`. They live here, apart from
the code that makes them, so that whatever only reads them (the leaderboard rows, reports)
imports neither torch nor the model code.

A candidate's failure is a result, never an exception: ``status='failed'``, a one-line
``reason`` for people and a :class:`FailureKind` for code. Code tests the kind; the reason's
wording is free to change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class FailureKind(str, Enum):
    """Why a candidate could not be trained or timed."""

    OOM = "oom"
    """The device (or the host) ran out of memory."""
    DIVERGED = "diverged"
    """The training loss became NaN or inf."""
    ERROR = "error"
    """Any other exception while building or running the model."""


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
    minival_loss: float | None = None
    """Mean minival cross-entropy (no label smoothing) of the trained weights, at the eval
    size (None in records from before it was kept)."""
    train_loss_sum: float | None = None
    """Sum of the epoch's per-step training losses: the epoch's term of TSE (Ru et al. 2021,
    "Speedy performance estimation for neural architecture search"); TSE-E over the last E
    epochs is the sum of the last E of these (None in records from before it was kept)."""


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
    failure_kind: FailureKind | None = None
    """Why the run failed (None unless ``status='failed'``); ``reason`` says it in words."""
    meco: float | None = None
    """MeCo of the network at initialization, on the run's first minibatch
    (``proxy_train.zero_cost``; None if the run failed before it)."""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def tse(self) -> float | None:
        """TSE: the sum of the training losses over the last epoch (None before one)."""
        return self.history[-1].train_loss_sum if self.history else None

    @property
    def loss_curve(self) -> tuple[float, ...]:
        """Mean training loss of each completed epoch."""
        return tuple(e.train_loss for e in self.history)

    @property
    def accuracy_curve(self) -> tuple[float, ...]:
        """The evaluated minival top-1 (EMA weights when kept) after each completed epoch."""
        return tuple(evaluated_top1(e) for e in self.history)

    def to_dict(self) -> dict[str, object]:
        """Plain data (the failure kind as its value), with the derived curves."""
        out = asdict(self)
        out["history"] = [asdict(e) for e in self.history]
        out["failure_kind"] = None if self.failure_kind is None else self.failure_kind.value
        out["loss_curve"] = list(self.loss_curve)
        out["accuracy_curve"] = list(self.accuracy_curve)
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> TrainResult:
        """Inverse of ``to_dict`` (the derived curves are ignored)."""
        values = {k: v for k, v in obj.items() if k not in ("loss_curve", "accuracy_curve")}
        values["history"] = tuple(EpochStats(**e) for e in obj.get("history", ()))
        kind = obj.get("failure_kind")
        values["failure_kind"] = None if kind is None else FailureKind(kind)
        return cls(**values)


def evaluated_top1(stats: EpochStats) -> float:
    """The top-1 a run reports for an epoch: the EMA's when there is one."""
    return stats.minival_top1 if stats.minival_top1_ema is None else stats.minival_top1_ema


@dataclass(frozen=True, slots=True)
class StepTiming:
    """The measured training step time of one network on one device (see
    ``proxy_train.timing``)."""

    status: str
    """``'ok'`` or ``'failed'``."""
    reason: str
    """Why it failed (``'out of memory: ...'``, the error), empty when ok."""
    median_ms: float | None
    spread: float | None
    """Interquartile range of the step times divided by their median (a fraction)."""
    mean_ms: float | None
    steps: int
    """Timed steps (warm-up excluded)."""
    warmup_steps: int
    peak_memory_bytes: int | None
    """CUDA: ``max_memory_allocated`` over build + warm-up + timing. CPU: the rise of the
    process's peak resident set (``VmHWM``, reset first) over its resident set before the
    build; None where the peak cannot be reset (non-Linux)."""
    images_per_s: float | None
    device_name: str
    driver: str | None
    torch_version: str
    batch_size: int
    resolution: int
    precision: str
    memory_format: str
    time_s: float
    """Wall time the whole measurement cost, model build included."""
    hardware: str = ""
    """The hardware profile name."""
    optimizer: str = "rmsprop"
    num_classes: int = 1000
    rse: float | None = None
    """Relative standard error of the median when timing stopped."""
    warmup_stable: bool = False
    """Whether warm-up ended because two window medians agreed within ``stability``."""
    seed: int = 0
    policy: dict[str, object] = field(default_factory=dict)
    """The step as it ran (``TrainStep.describe``): the policy and the optimizer class."""
    failure_kind: FailureKind | None = None
    """Why the timing failed (None when ok); ``reason`` says it in words."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, object]:
        """A JSON-able dict of every field (the failure kind as its value)."""
        out = asdict(self)
        out["failure_kind"] = None if self.failure_kind is None else self.failure_kind.value
        return out


__all__ = ["EpochStats", "FailureKind", "StepTiming", "TrainResult", "evaluated_top1"]
