"""Data sources decoded once into memory, with a minival split carved from training data.

``load_data(source)`` returns :class:`DataSplits`: uint8 images ``[N, 3, R, R]`` and int64
labels per split, already on the requested device, so proxy training never touches a file.

Source strings:

* ``synthetic`` or ``synthetic:classes=20,per_class=300,resolution=96,seed=3`` -- the
  built-in set (no download; see :mod:`proxy_train.datasets.synthetic`). Defaults: 10 classes,
  150 training + 200 test images per class, 64 px.
* ``folder:PATH`` -- ``PATH/<class>/*.jpg|jpeg|png|webp|bmp``, classes sorted by name; with
  ``PATH/train`` and ``PATH/val`` (or ``test``/``validation``) those are the splits.
* ``cifar10:PATH`` / ``cifar100:PATH`` -- the python pickle release (the extracted folder or
  its parent).
* ``parquet:PATH`` or ``parquet:PATH?image=COL&label=COL`` -- a Parquet file or folder with
  encoded image bytes (Hugging Face export) and integer labels.
* a bare existing path -- the kind is detected (CIFAR pickles, Parquet files, else a folder).

Folder and Parquet images are centre-cropped to a square and resized once to ``resolution``
(default: the first image's shorter side, at most 128 px); CIFAR keeps 32 px unless told.

The minival split is the search's validation set, drawn from the *training* images, stratified
per class with a seeded generator. The paper holds out ~2% of ImageNet; small sets need a
larger share for a usable estimate, so by default the fraction is
``max(0.02, min(0.1, 5000 / N_train))`` with at least one image per class. The test split is
kept apart and never used by search code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from proxy_train.datasets.base import RawSource
from proxy_train.errors import DataError
from search_space.checks import is_int
from search_space.messages import counted

SOURCE_KINDS: tuple[str, ...] = ("synthetic", "folder", "cifar10", "cifar100", "parquet")


@dataclass(frozen=True, slots=True)
class Split:
    """Images (uint8 ``[N, 3, H, W]``) and labels (int64 ``[N]``) on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: str | torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


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


def default_minival_fraction(num_train: int) -> float:
    """~2% as in the paper for large sets, up to 10% for small ones (5,000 images cap)."""
    return max(0.02, min(0.1, 5000 / max(1, num_train)))


def load_data(source: str = "synthetic", *, seed: int = 0, minival_fraction: float | None = None,
              classes: int | Sequence[int | str] | None = None, per_class: int | None = None,
              resolution: int | None = None, device: str | torch.device = "cpu") -> DataSplits:
    """Load ``source`` (see the module docstring) into memory on ``device``.

    ``classes``: the first K classes (int) or a list of class names/ids (relabelled 0..K-1 in
    the given order). ``per_class``: at most this many training images per class (seeded
    choice; for ``synthetic`` it is the number rendered). ``resolution``: the square size the
    images are stored at. ``seed`` drives subsetting and the minival split (and the synthetic
    rendering unless its options give a seed).
    """
    if minival_fraction is not None and not 0.0 < minival_fraction < 1.0:
        raise DataError(f"minival_fraction {minival_fraction} must be in (0, 1)")
    if per_class is not None and (not is_int(per_class) or per_class < 2):
        raise DataError(f"per_class {per_class!r} must be an integer >= 2 "
                        "(one image for minival, one for training)")
    if resolution is not None and (not is_int(resolution) or resolution < 8):
        raise DataError(f"resolution {resolution!r} must be an integer >= 8")
    raw = _open(source, seed=seed, classes=classes, per_class=per_class, resolution=resolution)
    chosen = _select_classes(raw.class_names, classes, raw.name)
    rng = np.random.default_rng(seed)

    train_idx, train_labels = _keep(raw.train.labels, chosen)
    if per_class is not None:
        train_idx, train_labels = _cap_per_class(train_idx, train_labels, per_class, rng)
    fraction = minival_fraction or default_minival_fraction(len(train_idx))
    fit_idx, val_idx = _stratified_split(train_labels, len(chosen), fraction, rng, raw.name,
                                         [raw.class_names[c] for c in chosen])
    images = raw.train.decode(train_idx)
    train = Split(images[fit_idx], torch.as_tensor(train_labels[fit_idx]))
    minival = Split(images[val_idx], torch.as_tensor(train_labels[val_idx]))
    test = None
    if raw.test is not None:
        test_idx, test_labels = _keep(raw.test.labels, chosen)
        if len(test_idx):
            test = Split(raw.test.decode(test_idx), torch.as_tensor(test_labels))
    return DataSplits(
        name=raw.name,
        train=train.to(device),
        minival=minival.to(device),
        test=test.to(device) if test is not None else None,
        num_classes=len(chosen),
        class_names=tuple(raw.class_names[c] for c in chosen),
        resolution=int(images.shape[-1]),
    )


def _open(source: str, *, seed: int, classes: object, per_class: int | None,
          resolution: int | None) -> RawSource:
    kind, sep, rest = source.partition(":")
    if kind == "synthetic":
        from proxy_train.datasets.synthetic import CLASS_NAMES, load_synthetic

        if is_int(classes):
            count = classes
        elif classes is None:
            count = None
        else:  # a list: render every class it could name, then select
            count = len(CLASS_NAMES)
        return load_synthetic(rest, seed=seed, classes=count, per_class=per_class,
                              resolution=resolution)
    if not sep or (kind not in SOURCE_KINDS and Path(source).exists()) or len(kind) == 1:
        kind, rest = _detect(source), source  # a bare path (len 1: a Windows drive letter)
    if kind == "folder":
        from proxy_train.datasets.folder import load_folder

        return load_folder(rest, resolution=resolution)
    if kind in ("cifar10", "cifar100"):
        from proxy_train.datasets.cifar import load_cifar

        return load_cifar(kind, rest, resolution=resolution)
    if kind == "parquet":
        from proxy_train.datasets.parquet_images import load_parquet

        return load_parquet(rest, resolution=resolution)
    raise DataError(f"unknown data source kind {kind!r} in {source!r}; expected one of "
                    f"{list(SOURCE_KINDS)} as KIND:PATH, 'synthetic', or an existing path")


def _detect(path_text: str) -> str:
    path = Path(path_text).expanduser()
    if not path.exists():
        raise DataError(f"data source {path_text!r} is neither an existing path nor one of "
                        f"{list(SOURCE_KINDS)} (write KIND:PATH, e.g. folder:{path_text})")
    if path.is_file():
        if path.suffix == ".parquet":
            return "parquet"
        raise DataError(f"{path}: cannot tell the data format of this file; expected a .parquet "
                        "file or a folder")
    if (path / "cifar-10-batches-py").is_dir() or (path / "data_batch_1").is_file():
        return "cifar10"
    if (path / "cifar-100-python").is_dir() or ((path / "train").is_file()
                                               and (path / "meta").is_file()):
        return "cifar100"
    if any(path.glob("*.parquet")) or any(path.glob("*/*.parquet")):
        return "parquet"
    return "folder"


def _select_classes(names: tuple[str, ...], classes: object, where: str) -> list[int]:
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


def _keep(labels: np.ndarray, chosen: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label is chosen, relabelled to the position in ``chosen``."""
    remap = np.full(max(int(labels.max(initial=0)), max(chosen)) + 1, -1, dtype=np.int64)
    remap[chosen] = np.arange(len(chosen))
    new = remap[labels]
    index = np.flatnonzero(new >= 0)
    return index, new[index]


def _cap_per_class(index: np.ndarray, labels: np.ndarray, cap: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        keep.append(rows if len(rows) <= cap else rng.choice(rows, size=cap, replace=False))
    rows = np.sort(np.concatenate(keep))
    return index[rows], labels[rows]


def _stratified_split(labels: np.ndarray, num_classes: int, fraction: float,
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
