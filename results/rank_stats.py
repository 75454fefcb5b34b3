"""Rank agreement of two scorings of the same candidates: Kendall's tau-b, Spearman's rho, and
bootstrap intervals over the candidates.

Both coefficients take ties into account the usual way (``scipy.stats.kendalltau`` and
``spearmanr`` give the same numbers): tau-b counts concordant minus discordant pairs over
``sqrt((n0 - n1) (n0 - n2))``, where ``n1`` and ``n2`` are the pairs tied in the first and in
the second scoring; rho is Pearson's correlation of the average ranks. A scoring without two
different values has no rank order: its coefficients are NaN.

Everything works on the last axis, so a bootstrap of B resamples is one call on ``[B, n]``
arrays. :func:`bootstrap` resamples the candidates with replacement from its own seeded
generator (the same seed gives the same interval) and reports the 2.5 and 97.5 percentiles.
A candidate drawn twice forms a pair tied in both scorings, which tau-b leaves out of the
numerator, as it should.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95

Statistic = Callable[[np.ndarray], np.ndarray]
"""Maps resampled candidate indices ``[B, n]`` to one value per resample ``[B]``."""


def _pairs(values: np.ndarray) -> np.ndarray:
    """``sign(v_i - v_j)`` for every pair, ``[..., n, n]``."""
    return np.sign(values[..., :, None] - values[..., None, :])


def kendall_tau(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> np.ndarray:
    """Kendall's tau-b of ``x`` and ``y`` along the last axis (NaN without a rank order)."""
    a, b = _pairs(np.asarray(x, dtype=float)), _pairs(np.asarray(y, dtype=float))
    n = a.shape[-1]
    total = n * (n - 1) / 2
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    score = (a * b)[..., upper].sum(axis=-1)
    ties_x = (a[..., upper] == 0).sum(axis=-1)
    ties_y = (b[..., upper] == 0).sum(axis=-1)
    denominator = np.sqrt((total - ties_x) * (total - ties_y))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, score / np.where(denominator > 0, denominator, 1),
                        np.nan)


def average_ranks(values: np.ndarray | list[float]) -> np.ndarray:
    """1-based ranks along the last axis, tied values sharing the mean of their ranks."""
    v = np.asarray(values, dtype=float)
    below = (v[..., None, :] < v[..., :, None]).sum(axis=-1)
    equal = (v[..., None, :] == v[..., :, None]).sum(axis=-1)
    return below + (equal + 1) / 2


def spearman_rho(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> np.ndarray:
    """Spearman's rho of ``x`` and ``y`` along the last axis (NaN without a rank order)."""
    rx, ry = average_ranks(x), average_ranks(y)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((rx * rx).sum(axis=-1) * (ry * ry).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0,
                        (rx * ry).sum(axis=-1) / np.where(denominator > 0, denominator, 1),
                        np.nan)


def bootstrap(statistic: Statistic, n: int, *, seed: int = 0, resamples: int = RESAMPLES,
              level: float = LEVEL) -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``statistic`` on the ``n`` candidates, and the percentile
    interval of it over ``resamples`` resamples of the candidates with replacement (NaN
    resamples, e.g. one candidate drawn n times, are left out). Deterministic for ``seed``."""
    estimate = float(statistic(np.arange(n)[None, :])[0])
    if n < 2:
        return estimate, float("nan"), float("nan")
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    values = statistic(draws)
    values = values[np.isfinite(values)]
    if not len(values):
        return estimate, float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return estimate, float(low), float(high)


@dataclass(frozen=True, slots=True)
class Agreement:
    """Tau and rho of two scorings of ``n`` candidates, each with its bootstrap interval."""

    n: int
    tau: float
    tau_low: float
    tau_high: float
    rho: float
    rho_low: float
    rho_high: float

    def to_dict(self) -> dict[str, object]:
        def clean(value: float) -> float | None:
            return round(value, 4) if np.isfinite(value) else None

        return {"n": self.n, "tau": clean(self.tau),
                "tau_ci": [clean(self.tau_low), clean(self.tau_high)],
                "rho": clean(self.rho), "rho_ci": [clean(self.rho_low), clean(self.rho_high)]}


def agreement(pairs: list[tuple[np.ndarray, np.ndarray]], *, seed: int = 0,
              resamples: int = RESAMPLES) -> Agreement:
    """Tau and rho averaged over several pairs of scorings of the same candidates (e.g. each
    proxy seed against the long training), with one bootstrap over the candidates: the
    same resample is drawn for every pair. Each array holds one value per candidate."""
    if not pairs:
        raise ValueError("agreement needs at least one pair of scorings")
    n = len(pairs[0][0])
    stacked = [(np.asarray(x, dtype=float), np.asarray(y, dtype=float)) for x, y in pairs]

    def mean_of(coefficient: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Statistic:
        def statistic(draws: np.ndarray) -> np.ndarray:
            return np.mean([coefficient(x[draws], y[draws]) for x, y in stacked], axis=0)
        return statistic

    tau = bootstrap(mean_of(kendall_tau), n, seed=seed, resamples=resamples)
    rho = bootstrap(mean_of(spearman_rho), n, seed=seed, resamples=resamples)
    return Agreement(n, *tau, *rho)


__all__ = ["Agreement", "RESAMPLES", "agreement", "average_ranks", "bootstrap",
           "kendall_tau", "spearman_rho"]
