"""A data set as training code sees it: train, minival and test splits of labelled images.

A split's images are either one uint8 tensor ``[N, 3, R, R]`` (the built-in and CIFAR sets,
held in memory) or :class:`~proxy_train.cache.rows.CachedRows` over a decoded cache (image
folders and Parquet tables); both gather a batch with ``images[index]``. Moving a split to a
device decides how its batches reach it (:mod:`proxy_train.feed`).

The minival split is the search's validation set, drawn from the *training* images,
stratified per class with a seeded generator. The paper holds out ~2% of ImageNet; small sets
need a larger share for a usable estimate, so by default the fraction is
``max(0.02, min(0.1, 5000 / N_train))`` with at least one image per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from proxy_train.cache.rows import CachedRows
from proxy_train.errors import DataError
from proxy_train.feed import place
from search_space.messages import counted

Images = torch.Tensor | CachedRows


@dataclass(frozen=True, slots=True)
class Split:
    """Images (uint8 ``[N, 3, H, W]``, a tensor or cached rows) and labels (int64 ``[N]``)."""

    images: Images
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: str | torch.device) -> Split:
        """This split on ``device``: cached rows stay in the cache unless they fit on a GPU."""
        dev = torch.device(device)
        if isinstance(self.images, CachedRows):
            return Split(place(self.images, dev), self.labels.to(dev))
        return Split(self.images.to(dev), self.labels.to(dev))


@dataclass(frozen=True, slots=True)
class DataSplits:
    """Train, minival (carved from train) and optional test splits of one source."""

    name: str
    train: Split
    minival: Split
    test: Split | None
    num_classes: int
    class_names: tuple[str, ...]
    resolution: int
    cache: str | None = None
    """The decoded cache the images are read from (None: held in memory)."""


def default_minival_fraction(num_train: int) -> float:
    """~2% as in the paper for large sets, up to 10% for small ones (5,000 images cap)."""
    return max(0.02, min(0.1, 5000 / max(1, num_train)))


def minival_share(minival: float | int | None, num_train: int) -> float:
    """The minival fraction: given (a fraction, or a count of images), or the default."""
    if minival is None:
        return default_minival_fraction(num_train)
    if isinstance(minival, int):
        if not 1 <= minival < num_train:
            raise DataError(f"minival {minival} must be a count in 1..{num_train - 1} (the "
                            f"training split has {num_train} images)")
        return minival / num_train
    return float(minival)


def stratified_split(labels: np.ndarray, num_classes: int, fraction: float,
                     rng: np.random.Generator, where: str,
                     names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``labels``) of the fit and minival parts: per class a seeded choice of
    ``max(1, round(fraction * n_c))`` images, leaving at least one for training."""
    fit, val = [], []
    for c in range(num_classes):
        rows = np.flatnonzero(labels == c)
        if len(rows) < 2:
            raise DataError(f"{where}: class {names[c]!r} has "
                            f"{counted(len(rows), 'training image')}; "
                            "need at least 2 (one for minival, one for training)")
        n_val = min(len(rows) - 1, max(1, round(fraction * len(rows))))
        picked = rng.permutation(rows)
        val.append(picked[:n_val])
        fit.append(picked[n_val:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))


__all__ = ["DataSplits", "Images", "Split", "default_minival_fraction", "minival_share",
           "stratified_split"]
