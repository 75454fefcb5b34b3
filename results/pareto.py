"""The non-dominated front on (accuracy max, step time min, params min)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Values = Sequence[float] | npt.NDArray[np.floating]


def pareto_mask(accuracy: Values, step_time: Values, params: Values) -> list[bool]:
    """``mask[i]`` is True iff no other point is at least as good on all three objectives
    and strictly better on one. Points with equal objectives are all kept; a point with a
    missing (NaN) objective is never on the front."""
    # Minimise all three: negate accuracy.
    pts = np.column_stack([-np.asarray(accuracy, dtype=float),
                           np.asarray(step_time, dtype=float),
                           np.asarray(params, dtype=float)]) if len(accuracy) else np.zeros((0, 3))
    valid = ~np.isnan(pts).any(axis=1)
    good = pts[valid]
    mask = np.zeros(len(pts), dtype=bool)
    idx = np.flatnonzero(valid)
    for k, p in enumerate(good):
        dominated = np.any(np.all(good <= p, axis=1) & np.any(good < p, axis=1))
        mask[idx[k]] = not dominated
    return mask.tolist()
