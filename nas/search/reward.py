"""The training-aware reward of EfficientNetV2: ``A * S^w * P^v``.

``A`` is the proxy's accuracy estimate, ``S`` the training step time and ``P`` the parameter
count, both normalised by a reference architecture's, so the reward of the reference itself
is its ``A``. The paper uses ``w = -0.07`` and ``v = -0.05``: doubling the step time costs
about 4.7% of reward, doubling the parameters about 3.4%.

``A`` is one of :data:`ESTIMATES`, both on the accuracy scale [0, 1]: ``likelihood`` (the
default), ``exp(-minival loss)``, the geometric mean over the minival images of the
probability the trained weights give the true class (1/K for a uniform guess over K classes,
1 for a certain right answer), or ``top1``, the minival top-1 of the weights the recipe
evaluates. The likelihood counts every image's confidence, not only which side of the
decision it falls on, so a few hundred minival images rank candidates with less noise: in the
CPU proxy study (``bench/results/proxy_fidelity_cpu.md``) the reward with it ranked like long
training better than with top-1 for every proxy that learned the task. A result without a
minival loss (the surrogate's) is scored by its top-1.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from search_space.errors import NasError

DEFAULT_W = -0.07
DEFAULT_V = -0.05
ESTIMATES: tuple[str, ...] = ("likelihood", "top1")
"""What ``A`` is (see the module docstring); the first is the default."""


class RewardError(NasError, ValueError):
    """An input of the reward breaks a rule (accuracy outside [0, 1], a non-positive time)."""


def _number(name: str, value: object) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RewardError(f"{name} {value!r} must be a number")
    out = float(value)
    if not math.isfinite(out):
        raise RewardError(f"{name} {value!r} must be finite")
    return out


def _positive(name: str, value: object) -> float:
    out = _number(name, value)
    if out <= 0:
        raise RewardError(f"{name} {value!r} must be > 0")
    return out


def normalize(step_time: float, params: float, *, ref_step_time: float,
              ref_params: float) -> tuple[float, float]:
    """``(S, P)``: step time and params divided by the reference's."""
    return (_positive("step_time", step_time) / _positive("ref_step_time", ref_step_time),
            _positive("params", params) / _positive("ref_params", ref_params))


def likelihood(minival_loss: float) -> float:
    """``exp(-loss)`` of a mean cross-entropy: the geometric mean probability of the true
    class, in (0, 1]."""
    loss = _number("minival_loss", minival_loss)
    if loss < 0:
        raise RewardError(f"minival_loss {minival_loss!r} must be >= 0")
    return math.exp(-loss)


def reward(accuracy: float, step_time: float, params: float, *, ref_step_time: float,
           ref_params: float, w: float = DEFAULT_W, v: float = DEFAULT_V) -> float:
    """``accuracy * (step_time / ref_step_time) ** w * (params / ref_params) ** v``.

    ``step_time`` and ``ref_step_time`` share a unit (e.g. ms). Raises :class:`RewardError`
    naming the value for a missing or non-finite input, an accuracy outside [0, 1], or a
    non-positive time or parameter count.
    """
    a = _number("accuracy", accuracy)
    if not 0.0 <= a <= 1.0:
        raise RewardError(f"accuracy {accuracy!r} must be in [0, 1]")
    s, p = normalize(step_time, params, ref_step_time=ref_step_time, ref_params=ref_params)
    return a * s ** _number("w", w) * p ** _number("v", v)


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardConfig:
    """The reward's exponents and reference point: the one object that scores a candidate,
    in a search's trials (``nas.search.trial.TrialContext.reward``) and in a validation's jobs
    (``nas.validate.jobs.JobContext.reward``) alike.

    ``ref_step_time`` (ms) and ``ref_params`` are the reference architecture's
    (``reference_arch``: a preset name or canonical string, for the record).
    """

    w: float = DEFAULT_W
    v: float = DEFAULT_V
    ref_step_time: float
    ref_params: float
    reference_arch: str = ""
    estimate: str = ESTIMATES[0]
    """What ``A`` is: one of :data:`ESTIMATES`."""

    def __post_init__(self) -> None:
        if self.estimate not in ESTIMATES:
            raise RewardError(f"unknown accuracy estimate {self.estimate!r}; expected one of "
                              f"{list(ESTIMATES)}")
        _number("w", self.w)
        _number("v", self.v)
        _positive("ref_step_time", self.ref_step_time)
        _positive("ref_params", self.ref_params)
        if not isinstance(self.reference_arch, str):
            raise RewardError(f"reference_arch {self.reference_arch!r} must be a string")

    def __call__(self, accuracy: float | None, step_time: float,
                 params: float) -> float | None:
        """The reward of ``A = accuracy`` (None: it has no accuracy)."""
        if accuracy is None:
            return None
        return reward(accuracy, step_time, params, ref_step_time=self.ref_step_time,
                      ref_params=self.ref_params, w=self.w, v=self.v)

    def accuracy_of(self, top1: float | None, minival_loss: float | None) -> float | None:
        """``A`` of a proxy run from its minival top-1 and loss, under :attr:`estimate`."""
        if self.estimate == "likelihood" and minival_loss is not None:
            return likelihood(minival_loss)
        return top1

    def proxy(self, top1: float | None, minival_loss: float | None, step_time: float,
              params: float) -> float | None:
        """The reward of a proxy run: ``A`` (:meth:`accuracy_of`) with ``S`` and ``P``."""
        return self(self.accuracy_of(top1, minival_loss), step_time, params)

    def normalize(self, step_time: float, params: float) -> tuple[float, float]:
        """``(S, P)`` for the ``step_time_norm`` / ``params_norm`` columns."""
        return normalize(step_time, params, ref_step_time=self.ref_step_time,
                         ref_params=self.ref_params)

    def to_dict(self) -> dict[str, Any]:
        return {"w": self.w, "v": self.v, "ref_step_time": self.ref_step_time,
                "ref_params": self.ref_params, "reference_arch": self.reference_arch,
                "estimate": self.estimate}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> RewardConfig:
        known = ("w", "v", "ref_step_time", "ref_params", "reference_arch", "estimate")
        unknown = [k for k in obj if k not in known]
        if unknown:
            raise RewardError(f"unknown reward field {unknown[0]!r}; expected {', '.join(known)}")
        try:
            return cls(**obj)
        except TypeError as exc:
            raise RewardError(f"reward config: {exc}") from None
