"""How the default scaling constants were fitted to the official S -> M -> L -> XL family.

The official models are hand-scaled (``google/automl`` ``effnetv2_configs.py``), so no single
compound rule reproduces every stage. Stage outputs (layers x width, stem first):

=====  ======  ========  ========  ========  =========  =========  =========  =========
model  stem    stage 1   stage 2   stage 3   stage 4    stage 5    stage 6    stage 7
=====  ======  ========  ========  ========  =========  =========  =========  =========
S      24      2 x 24    4 x 48    4 x 64    6 x 128    9 x 160    15 x 256   --
M      24      3 x 24    5 x 48    5 x 80    7 x 160    14 x 176   18 x 304   5 x 512
fit M  24      3 x 24    5 x 56    5 x 72    8 x 144    12 x 184   21 x 304   5 x 488
L      32      4 x 32    7 x 64    7 x 96    10 x 192   19 x 224   25 x 384   7 x 640
fit L  32      3 x 32    7 x 64    7 x 88    11 x 176   18 x 232   32 x 376   7 x 600
XL     32      4 x 32    8 x 64    8 x 96    16 x 192   24 x 256   32 x 512   8 x 640
fit XL 32      4 x 32    8 x 64    8 x 96    14 x 200   22 x 256   41 x 432   8 x 688
=====  ======  ========  ========  ========  =========  =========  =========  =========

Totals (PyTorch params; conv+FC MACs at the official eval size; XL with ``max_size=512``):

=====  ===========  ===========  =======  =========  =========  =======
model  official     derived      error    official   derived    error
       params       params                MACs       MACs
=====  ===========  ===========  =======  =========  =========  =======
M      54,139,356   56,234,078   +3.9 %   24.58 G    25.96 G    +5.6 %
L      118,515,272  126,207,994  +6.5 %   56.08 G    55.64 G    -0.8 %
XL     208,119,808  201,798,204  -3.0 %   93.35 G    90.65 G    -2.9 %
=====  ===========  ===========  =======  =========  =========  =======

Under the default 480 px cap XL evaluates at 480 px: 79.68 G against the official XL's
82.06 G at 480 px (-2.9 %). ``tests/scaling/test_rules.py`` recomputes every figure. In the
derived models 72-74 % of the added layers sit in the last three stages (official: M 76 %,
L 69 %, XL 67 %).

Procedure (:func:`fit_coefficients`, deterministic, about two seconds):

1. **Structural least squares.** With ``phi_M = 1`` and ``(phi_L, phi_XL)`` on a 0.05 grid,
   fit ``log(width_official / width_S) = phi * (log alpha + t * log alpha_late)`` over the stem
   and six stages, and the same form for depth, by linear least squares (``t`` is the stage
   position, 0 .. 1). The extra stage's width and depth ratios are the means of the official
   ``c7 / c6`` and ``r7 / r6``. Keep the ``phi`` pair with the smallest residual:
   ``phi = (1, 2.35, 3.10)``.
2. **Constrained refinement.** With ``phi`` fixed, minimise over the six multipliers the mean
   squared log ratio between derived (rounded) and official per-stage widths and depths, plus a
   hinge that is zero while the derived params and MACs are within 7.5 % (log ratio) of the
   official totals, plus a penalty when fewer than 60 % of the added layers land in the last
   three stages: a seeded random search (3,000 points in a box, and the step-1 point), then
   coordinate descent with halving steps.
3. **Rounding.** Multipliers are rounded to three decimals. ``gamma = (480 / 384) ** (1 /
   phi_M) = 1.25`` from S -> M, the only official step below the 480 px cap.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scaling.rules import ExtraStage, ScalingRule, late_share, scale
from search_space.cost import count_macs, count_params
from search_space.presets import get_preset
from search_space.spec import ArchSpec

OFFICIAL_TARGETS: tuple[tuple[str, str, int], ...] = (
    ("M", "efficientnetv2-m", 480),
    ("L", "efficientnetv2-l", 480),
    ("XL", "efficientnetv2-xl", 512),
)
BASE_PRESET = "efficientnetv2-s"
COST_TOLERANCE = 0.075
"""Allowed |log(derived / official)| of params and MACs during the refinement."""
MIN_LATE_SHARE = 0.6
_BOX = ((0.0, 0.3), (0.0, 0.3), (0.0, 0.5), (0.0, 0.5), (0.0, 0.7), (0.1, 0.5))
"""Search box: log alpha, log alpha_late, log beta, log beta_late, log extra width, extra depth."""


@dataclass(frozen=True, slots=True)
class FitResult:
    """The fitted rule, the named targets' ``phi`` and the fit's residual."""

    rule: ScalingRule
    target_phi: dict[str, float]
    residual: float


def fit_coefficients(samples: int = 3000, seed: int = 0) -> FitResult:
    """Re-run the fit described in the module docstring; returns rounded constants."""
    base = get_preset(BASE_PRESET).spec
    targets = [(name, get_preset(preset).spec, size) for name, preset, size in OFFICIAL_TARGETS]
    phis, theta0 = _structural_fit(base, [spec for _, spec, _ in targets])
    gamma = round((480 / get_preset(BASE_PRESET).eval_size) ** (1 / phis[0]), 3)
    official = [(spec, count_params(spec), count_macs(spec, size), size)
                for _, spec, size in targets]

    def objective(theta: Sequence[float]) -> float:
        return _objective(base, theta, phis, official, gamma)

    rng = random.Random(seed)
    best = list(theta0)
    best_f = objective(best)
    for _ in range(samples):
        theta = [rng.uniform(lo, hi) for lo, hi in _BOX]
        f = objective(theta)
        if f < best_f:
            best, best_f = theta, f
    step = 0.02
    while step > 0.0005:
        improved = True
        while improved:
            improved = False
            for k, (lo, hi) in enumerate(_BOX):
                for sign in (-1, 1):
                    trial = list(best)
                    trial[k] = min(hi, max(lo, trial[k] + sign * step))
                    f = objective(trial)
                    if f < best_f - 1e-12:
                        best, best_f, improved = trial, f, True
        step /= 2
    rule = _rule(best, gamma, decimals=3)
    names = [name for name, _, _ in OFFICIAL_TARGETS]
    return FitResult(rule, dict(zip(names, phis)), best_f)


def _rule(theta: Sequence[float], gamma: float, decimals: int | None = None) -> ScalingRule:
    la, las, lb, lbs, lew, ed = theta
    values = [math.exp(la), math.exp(las), math.exp(lb), math.exp(lbs), math.exp(lew), ed]
    if decimals is not None:
        values = [round(v, decimals) for v in values]
    a, a_late, b, b_late, ew, ed = values
    return ScalingRule(alpha=a, alpha_late=a_late, beta=b, beta_late=b_late, gamma=gamma,
                       extra_stage=ExtraStage(width_ratio=ew, depth_ratio=ed))


def _objective(base: ArchSpec, theta: Sequence[float], phis: Sequence[float],
               official: Sequence[tuple[ArchSpec, int, int, int]], gamma: float) -> float:
    rule = _rule(theta, gamma)
    residual = 0.0
    count = 0
    hinge = 0.0
    penalty = 0.0
    for phi, (spec, params, macs, size) in zip(phis, official):
        derived = scale(base, phi, rule).spec
        pairs = [(derived.stem_channels, spec.stem_channels)]
        pairs += [(d.out_channels, o.out_channels) for d, o in zip(derived.stages, spec.stages)]
        pairs += [(d.layers, o.layers) for d, o in zip(derived.stages, spec.stages)]
        residual += sum(math.log(d / o) ** 2 for d, o in pairs)
        count += len(pairs)
        for got, want in ((count_params(derived), params), (count_macs(derived, size), macs)):
            hinge += max(0.0, abs(math.log(got / want)) - COST_TOLERANCE)
        if late_share(base, derived) < MIN_LATE_SHARE:
            penalty += 10.0
    return residual / count + 10.0 * hinge + penalty


def _structural_fit(base: ArchSpec, specs: Sequence[ArchSpec]) -> tuple[list[float], list[float]]:
    """Step 1: the ``phi`` pair and log-multipliers with the least structural residual."""
    n = len(base.stages)
    positions = [i / (n - 1) for i in range(n)]
    extra_w = float(np.mean([math.log(s.stages[n].out_channels / s.stages[n - 1].out_channels)
                             for s in specs]))
    extra_d = float(np.mean([s.stages[n].layers / s.stages[n - 1].layers for s in specs]))
    best: tuple[float, list[float], list[float]] | None = None
    grid = [round(1.5 + 0.05 * i, 2) for i in range(51)]
    for phi_l in grid:
        for phi_xl in (g for g in grid + [round(4.05 + 0.05 * i, 2) for i in range(20)]
                       if g >= phi_l):
            phis = [1.0, phi_l, phi_xl]
            wx, wy, dx, dy = [], [], [], []
            for phi, spec in zip(phis, specs):
                wx.append([phi, 0.0])
                wy.append(math.log(spec.stem_channels / base.stem_channels))
                for t, s, b in zip(positions, spec.stages, base.stages):
                    wx.append([phi, phi * t])
                    wy.append(math.log(s.out_channels / b.out_channels))
                    dx.append([phi, phi * t])
                    dy.append(math.log(s.layers / b.layers))
            cw, rw = _lstsq(wx, wy)
            cd, rd = _lstsq(dx, dy)
            residual = rw / len(wy) + rd / len(dy)
            if best is None or residual < best[0] - 1e-12:
                best = (residual, phis, [cw[0], cw[1], cd[0], cd[1], extra_w, extra_d])
    assert best is not None
    return best[1], best[2]


def _lstsq(x: list[list[float]], y: list[float]) -> tuple[list[float], float]:
    a = np.asarray(x)
    b = np.asarray(y)
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    return [float(c) for c in coef], float(np.sum((a @ coef - b) ** 2))
