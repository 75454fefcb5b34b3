"""EfficientNetV2 scaling: derive bigger models from a searched base as pure ``spec -> spec`` rules.

Compound scaling (EfficientNet V1) multiplies width, depth and image size by ``alpha**phi``,
``beta**phi`` and ``gamma**phi``. The EfficientNetV2 paper (section 3.3) keeps this with two
changes, both implemented here:

1. The inference image size is capped (``max_size``, 480 px by default) and the training size
   is about 20 % smaller than the inference size.
2. Extra layers go preferentially to later stages. Here the per-stage multipliers grow with the
   stage's position ``t = i / (n - 1)`` in the base (0 for the first stage, 1 for the last)::

       width_i(phi) = (alpha * alpha_late ** t) ** phi     ->  round_filters(c_i, width_i)
       depth_i(phi) = (beta * beta_late ** t) ** phi       ->  ceil(r_i * depth_i)
       eval(phi)    = min(max_size, nearest multiple of size_divisor to eval_0 * gamma ** phi)
       train(phi)   = floor(train_ratio * eval / size_divisor) * size_divisor

   and, like the official M/L/XL, a stage is appended after the last one (stride 1, MBConv e6
   k3 SE 0.25) with ``round_filters(c_last * extra.width_ratio)`` channels and
   ``ceil(extra.depth_ratio * r_last)`` layers, where ``c_last``/``r_last`` are the scaled
   last stage's width and depth.

The stem uses the first stage's width multiplier; the head keeps its width (1280 in S, M, L and
XL alike). Widths use the official ``round_filters`` (multiples of 8, no 0.9 rule), depths the
official ``ceil``. With every multiplier >= 1 all sizes grow monotonically with ``phi``, which
:func:`scale_to_budget` relies on for its bisection.

``phi = 0`` returns the base unchanged. The named targets are fixed values of ``phi``
(:data:`TARGET_PHI`); the constants below and those values come from
:func:`scaling.fit.fit_coefficients` (see that module for the procedure and the table of
official versus derived widths and depths).

Train-size rule, checked against the official train/eval pairs (floor to a multiple of 32 of
0.8 x eval): M 480 -> 384 (official 384), L 480 -> 384 (384), XL 512 -> 384 (384),
S 384 -> 288 (official 300, the only miss; a multiple of 16 would give 304 but XL 400).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scaling.errors import ScalingError
from search_space.checks import is_int, is_number
from search_space.cost import count_macs, count_params
from search_space.rounding import round_filters, round_repeats
from search_space.spec import MBCONV, ArchSpec, StageSpec

DEFAULT_MAX_SIZE = 480
DEFAULT_BASE_EVAL_SIZE = 384
"""Eval size assumed for a base that is not a preset and names none (EfficientNetV2-S's)."""
MAX_PHI = 16.0


@dataclass(frozen=True, slots=True)
class ExtraStage:
    """The stage appended after the last one when ``phi > 0`` (official M/L/XL)."""

    width_ratio: float
    """Output channels = ``round_filters(scaled last-stage width * width_ratio)``."""
    depth_ratio: float
    """Layers = ``ceil(scaled last-stage layers * depth_ratio)``, at least 1."""
    block: str = MBCONV
    kernel: int = 3
    expansion: int = 6
    se_ratio: float = 0.25


@dataclass(frozen=True, slots=True)
class ScalingRule:
    """Per-unit-``phi`` multipliers and the image-size policy (see the module docstring)."""

    alpha: float
    """Width multiplier of the first stage (and the stem) per unit phi."""
    alpha_late: float
    """Extra width growth of the last stage relative to the first, per unit phi."""
    beta: float
    """Depth multiplier of the first stage per unit phi."""
    beta_late: float
    """Extra depth growth of the last stage relative to the first, per unit phi."""
    gamma: float
    """Eval image-size multiplier per unit phi (before the cap)."""
    extra_stage: ExtraStage | None
    max_size: int = DEFAULT_MAX_SIZE
    train_ratio: float = 0.8
    size_divisor: int = 32

    def to_dict(self) -> dict[str, Any]:
        extra = self.extra_stage
        return {
            "alpha": self.alpha, "alpha_late": self.alpha_late,
            "beta": self.beta, "beta_late": self.beta_late, "gamma": self.gamma,
            "extra_stage": None if extra is None else {
                "width_ratio": extra.width_ratio, "depth_ratio": extra.depth_ratio,
                "block": extra.block, "kernel": extra.kernel, "expansion": extra.expansion,
                "se_ratio": extra.se_ratio,
            },
            "max_size": self.max_size, "train_ratio": self.train_ratio,
            "size_divisor": self.size_divisor,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ScalingRule:
        extra = obj.get("extra_stage")
        return cls(
            alpha=obj["alpha"], alpha_late=obj["alpha_late"], beta=obj["beta"],
            beta_late=obj["beta_late"], gamma=obj["gamma"],
            extra_stage=None if extra is None else ExtraStage(**extra),
            max_size=obj["max_size"], train_ratio=obj["train_ratio"],
            size_divisor=obj["size_divisor"],
        )


# Fitted by scaling.fit.fit_coefficients() (a test re-runs it and compares).
DEFAULT_RULE = ScalingRule(
    alpha=1.101, alpha_late=1.073, beta=1.157, beta_late=1.192, gamma=1.25,
    extra_stage=ExtraStage(width_ratio=1.596, depth_ratio=0.193),
)
TARGET_PHI: dict[str, float] = {"M": 1.0, "L": 2.35, "XL": 3.1}
"""The named targets as fixed values of the compound coefficient."""


@dataclass(frozen=True, slots=True)
class Coefficients:
    """What one scaling did to one base: the resolved per-stage multipliers and sizes."""

    phi: float
    width: tuple[float, ...]
    """Width multiplier applied to each base stage (the stem uses the first)."""
    depth: tuple[float, ...]
    """Depth multiplier applied to each base stage (then ``ceil``)."""
    resolution: float
    """``gamma ** phi``, before rounding and the cap."""
    eval_size: int
    train_size: int
    extra_stage: tuple[int, int] | None
    """``(layers, out_channels)`` of the appended stage, or ``None``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "phi": self.phi, "width": list(self.width), "depth": list(self.depth),
            "resolution": self.resolution, "eval_size": self.eval_size,
            "train_size": self.train_size,
            "extra_stage": None if self.extra_stage is None else list(self.extra_stage),
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Coefficients:
        extra = obj.get("extra_stage")
        return cls(
            phi=obj["phi"], width=tuple(obj["width"]), depth=tuple(obj["depth"]),
            resolution=obj["resolution"], eval_size=obj["eval_size"],
            train_size=obj["train_size"], extra_stage=None if extra is None else tuple(extra),
        )


@dataclass(frozen=True, slots=True)
class Scaled:
    """A derived model: its spec, its sizes and how it was derived."""

    spec: ArchSpec
    coefficients: Coefficients
    rule: ScalingRule

    @property
    def train_size(self) -> int:
        return self.coefficients.train_size

    @property
    def eval_size(self) -> int:
        return self.coefficients.eval_size


def train_size_for(eval_size: int, rule: ScalingRule = DEFAULT_RULE) -> int:
    """Training size for an eval size: ``floor(train_ratio * eval)`` to a multiple of the divisor."""
    d = rule.size_divisor
    return max(d, int(rule.train_ratio * eval_size) // d * d)


def eval_size_for(phi: float, base_eval_size: int, rule: ScalingRule = DEFAULT_RULE) -> int:
    """Eval size at ``phi``: ``base * gamma**phi`` to the nearest multiple of the divisor, capped."""
    if phi == 0:
        return base_eval_size
    d = rule.size_divisor
    size = int(base_eval_size * rule.gamma**phi / d + 0.5) * d
    return min(max(size, base_eval_size), rule.max_size)


def check_sizes(base_eval_size: int, rule: ScalingRule) -> None:
    """Reject a size cap below the base's own eval size."""
    if not is_int(base_eval_size) or base_eval_size < 1:
        raise ScalingError(f"base eval size {base_eval_size!r} must be an integer >= 1")
    if rule.max_size < base_eval_size:
        raise ScalingError(
            f"max size {rule.max_size} is below the base's eval size {base_eval_size}; "
            "the cap must be at least the base's size"
        )


def scale(
    base: ArchSpec,
    phi: float,
    rule: ScalingRule = DEFAULT_RULE,
    *,
    base_eval_size: int = DEFAULT_BASE_EVAL_SIZE,
    base_train_size: int | None = None,
) -> Scaled:
    """Scale ``base`` by the compound coefficient ``phi >= 0`` under ``rule``."""
    if not is_number(phi) or not 0 <= phi <= MAX_PHI:
        raise ScalingError(f"phi {phi!r} must be a number in [0, {MAX_PHI}]")
    check_sizes(base_eval_size, rule)
    n = len(base.stages)
    positions = [i / (n - 1) if n > 1 else 1.0 for i in range(n)]
    widths = tuple((rule.alpha * rule.alpha_late**t) ** phi for t in positions)
    depths = tuple((rule.beta * rule.beta_late**t) ** phi for t in positions)
    eval_size = eval_size_for(phi, base_eval_size, rule)
    if phi == 0:
        train = base_train_size if base_train_size is not None else train_size_for(eval_size, rule)
        coeffs = Coefficients(0.0, widths, depths, 1.0, eval_size, train, None)
        return Scaled(base, coeffs, rule)
    stages = [
        StageSpec(
            block=s.block, layers=round_repeats(s.layers, d), kernel=s.kernel,
            expansion=s.expansion, out_channels=round_filters(s.out_channels, w),
            stride=s.stride, se_ratio=s.se_ratio,
        )
        for s, w, d in zip(base.stages, widths, depths)
    ]
    extra: tuple[int, int] | None = None
    if rule.extra_stage is not None:
        e = rule.extra_stage
        last = stages[-1]
        extra = (max(1, round_repeats(last.layers, e.depth_ratio)),
                 round_filters(last.out_channels, e.width_ratio))
        stages.append(StageSpec(block=e.block, layers=extra[0], kernel=e.kernel,
                                expansion=e.expansion, out_channels=extra[1], stride=1,
                                se_ratio=e.se_ratio))
    spec = ArchSpec(
        stem_channels=round_filters(base.stem_channels, widths[0]),
        stages=tuple(stages),
        head_channels=base.head_channels,
        num_classes=base.num_classes,
    )
    coeffs = Coefficients(float(phi), widths, depths, rule.gamma**phi, eval_size,
                          train_size_for(eval_size, rule), extra)
    return Scaled(spec, coeffs, rule)


def scale_to_target(
    base: ArchSpec,
    target: str,
    rule: ScalingRule = DEFAULT_RULE,
    *,
    base_eval_size: int = DEFAULT_BASE_EVAL_SIZE,
) -> Scaled:
    """Scale ``base`` to a named target (``M``, ``L`` or ``XL``, case-insensitive)."""
    return scale(base, target_phi(target), rule, base_eval_size=base_eval_size)


def target_phi(target: str) -> float:
    key = target.strip().upper()
    if key not in TARGET_PHI:
        raise ScalingError(f"unknown target {target!r}; expected one of {list(TARGET_PHI)}")
    return TARGET_PHI[key]


def scale_to_budget(
    base: ArchSpec,
    *,
    params: int | None = None,
    macs: int | None = None,
    rule: ScalingRule = DEFAULT_RULE,
    base_eval_size: int = DEFAULT_BASE_EVAL_SIZE,
    base_train_size: int | None = None,
    iterations: int = 48,
) -> Scaled:
    """The largest scaling of ``base`` whose params (or MACs at its eval size) fit the budget.

    Bisection on a continuous ``phi``: every size is monotone in ``phi``, so the cost is too.
    A budget smaller than the base's own cost is an error.
    """
    if (params is None) == (macs is None):
        raise ScalingError("give exactly one budget: params or macs")
    budget = params if params is not None else macs
    kind = "params" if params is not None else "MACs"
    if not is_int(budget) or budget < 1:
        raise ScalingError(f"{kind} budget {budget!r} must be an integer >= 1")
    check_sizes(base_eval_size, rule)

    def measure(s: Scaled) -> int:
        return count_params(s.spec) if params is not None else count_macs(s.spec, s.eval_size)

    def at(phi: float) -> Scaled:
        return scale(base, phi, rule, base_eval_size=base_eval_size,
                     base_train_size=base_train_size)

    base_cost = measure(at(0.0))
    if budget < base_cost:
        where = "" if params is not None else f" at {eval_size_for(0, base_eval_size, rule)} px"
        raise ScalingError(
            f"{kind} budget {budget:,} is smaller than the base's {base_cost:,}{where}; "
            "a budget must be at least the base's cost"
        )
    return _bisect(at, measure, budget, kind, iterations)


def _bisect(at: Callable[[float], Scaled], measure: Callable[[Scaled], int], budget: int,
            kind: str, iterations: int) -> Scaled:
    lo, hi = 0.0, 1.0
    while measure(at(hi)) <= budget:
        lo, hi = hi, hi * 2
        if hi > MAX_PHI:
            raise ScalingError(
                f"{kind} budget {budget:,} is beyond phi {MAX_PHI} of this base; "
                "give a smaller budget"
            )
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if measure(at(mid)) <= budget:
            lo = mid
        else:
            hi = mid
    return at(lo)


def added_layers(base: ArchSpec, derived: ArchSpec) -> tuple[int, ...]:
    """Layers added per stage of ``derived`` (an appended stage counts all of its layers)."""
    old = [s.layers for s in base.stages]
    return tuple(s.layers - (old[i] if i < len(old) else 0) for i, s in enumerate(derived.stages))


def late_share(base: ArchSpec, derived: ArchSpec, last: int = 3) -> float:
    """Fraction of the added layers that sit in the last ``last`` stages of ``derived``."""
    added = added_layers(base, derived)
    total = sum(added)
    return sum(added[-last:]) / total if total > 0 else 0.0
