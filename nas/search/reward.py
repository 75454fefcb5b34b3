"""The training-aware reward of EfficientNetV2: ``A * S^w * P^v``.

``A`` is the proxy accuracy, ``S`` the training step time and ``P`` the parameter count, both
normalised by a reference architecture's, so the reward of the reference itself is its
accuracy. The paper uses ``w = -0.07`` and ``v = -0.05``: doubling the step time costs about
4.7% of reward, doubling the parameters about 3.4%.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from search_space.errors import NasError

DEFAULT_W = -0.07
DEFAULT_V = -0.05


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

    def __post_init__(self) -> None:
        _number("w", self.w)
        _number("v", self.v)
        _positive("ref_step_time", self.ref_step_time)
        _positive("ref_params", self.ref_params)
        if not isinstance(self.reference_arch, str):
            raise RewardError(f"reference_arch {self.reference_arch!r} must be a string")

    def __call__(self, accuracy: float | None, step_time: float,
                 params: float) -> float | None:
        """The reward of one candidate under this config (None: it has no accuracy)."""
        if accuracy is None:
            return None
        return reward(accuracy, step_time, params, ref_step_time=self.ref_step_time,
                      ref_params=self.ref_params, w=self.w, v=self.v)

    def normalize(self, step_time: float, params: float) -> tuple[float, float]:
        """``(S, P)`` for the ``step_time_norm`` / ``params_norm`` columns."""
        return normalize(step_time, params, ref_step_time=self.ref_step_time,
                         ref_params=self.ref_params)

    def to_dict(self) -> dict[str, Any]:
        return {"w": self.w, "v": self.v, "ref_step_time": self.ref_step_time,
                "ref_params": self.ref_params, "reference_arch": self.reference_arch}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> RewardConfig:
        known = ("w", "v", "ref_step_time", "ref_params", "reference_arch")
        unknown = [k for k in obj if k not in known]
        if unknown:
            raise RewardError(f"unknown reward field {unknown[0]!r}; expected {', '.join(known)}")
        try:
            return cls(**obj)
        except TypeError as exc:
            raise RewardError(f"reward config: {exc}") from None
