"""Choosing classes and capping images per class, on labels alone (before any decoding)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from proxy_train.errors import DataError
from search_space.checks import is_int


def select_classes(names: tuple[str, ...], classes: object, where: str) -> list[int]:
    """The class ids ``classes`` names, in its order: None (all), an int K (the first K), or
    a sequence of names or ids (a digit string that is no class name counts as an id)."""
    total = len(names)
    if classes is None:
        return list(range(total))
    if isinstance(classes, bool):
        raise DataError(f"classes {classes!r} must be an int or a list of class names/ids")
    if isinstance(classes, int):
        if not 1 <= classes <= total:
            raise DataError(f"{where}: classes {classes} not in 1..{total}")
        return list(range(classes))
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise DataError(f"classes {classes!r} must be an int or a list of class names/ids")
    chosen: list[int] = []
    for item in classes:
        if isinstance(item, str) and item not in names and item.isdigit():
            item = int(item)
        if is_int(item):
            if not 0 <= item < total:
                raise DataError(f"{where}: class id {item} not in 0..{total - 1}")
            index = item
        elif isinstance(item, str) and item in names:
            index = names.index(item)
        else:
            shown = ", ".join(names[:10]) + (", ..." if total > 10 else "")
            raise DataError(f"{where}: unknown class {item!r}; classes are: {shown}")
        if index in chosen:
            raise DataError(f"{where}: class {item!r} listed twice")
        chosen.append(index)
    if not chosen:
        raise DataError(f"{where}: classes list is empty")
    return chosen


def keep_classes(labels: np.ndarray, chosen: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label is chosen, relabelled to the position in ``chosen``."""
    remap = np.full(max(int(labels.max(initial=0)), max(chosen)) + 1, -1, dtype=np.int64)
    remap[chosen] = np.arange(len(chosen))
    new = remap[labels]
    index = np.flatnonzero(new >= 0)
    return index, new[index]


def cap_per_class(index: np.ndarray, labels: np.ndarray, cap: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """At most ``cap`` rows per label (a choice of ``rng``), in their original order."""
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        keep.append(rows if len(rows) <= cap else rng.choice(rows, size=cap, replace=False))
    rows = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
    return index[rows], labels[rows]


__all__ = ["cap_per_class", "keep_classes", "select_classes"]
