"""Data sources, with a minival split carved from training data.

``load_data(source)`` returns :class:`DataSplits`: uint8 images ``[N, 3, R, R]`` and int64
labels per split. The built-in set and CIFAR are held in memory; image folders and Parquet
tables are decoded once per resolution into a cache on disk and read from there
(:mod:`proxy_train.datasets.cached`), so every later run, ``nas-train``, ``nas-validate`` and
every trial of the machine read one copy.

Source strings (options follow the path after ``:``; see
:mod:`proxy_train.datasets.options`):

* ``synthetic`` or ``synthetic:classes=20,per_class=300,resolution=96,seed=3`` -- the
  built-in set (no download; see :mod:`proxy_train.datasets.synthetic`). Defaults: 10 classes,
  150 training + 200 test images per class, 64 px.
* ``folder:PATH[:OPTIONS]`` -- ``PATH/<class>/**/*.jpg|jpeg|png|webp|bmp|tif``, classes sorted
  by name; with ``PATH/train`` and ``PATH/val`` (or ``test``/``validation``) those are the
  splits. E.g. ``folder:/data/imagenet:resolution=64,classes=100,per_class=300``.
* ``cifar10:PATH`` / ``cifar100:PATH`` -- the python pickle release (the extracted folder or
  its parent).
* ``parquet:PATH[:OPTIONS]`` -- a Parquet file or folder with encoded image bytes (Hugging
  Face export) and integer labels; ``image=COL,label=COL`` name the columns.
* a bare existing path -- the kind is detected (CIFAR pickles, Parquet files, else a folder).

Options of folder, Parquet and CIFAR sources: ``resolution``, ``classes``, ``per_class``,
``minival`` and (cached kinds) ``cache``; the keyword arguments of :func:`load_data` override
them. Folder and Parquet images are centre-cropped to a square and resized once to
``resolution`` (default: the first image's shorter side, at most 128 px); CIFAR keeps 32 px
unless told.

The minival split is drawn from the training images (:mod:`proxy_train.splits`); the test
split is kept apart and never used by search code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from proxy_train.datasets.base import RawSource
from proxy_train.datasets.options import read_options
from proxy_train.datasets.select import cap_per_class, keep_classes, select_classes
from proxy_train.datasets.sources import CACHED_KINDS, SOURCE_KINDS, parse_source
from proxy_train.errors import DataError
from proxy_train.splits import (
    DataSplits,
    Split,
    default_minival_fraction,
    minival_share,
    stratified_split,
)
from search_space.checks import is_int

Say = Callable[[str], None]


def load_data(source: str = "synthetic", *, seed: int = 0, minival_fraction: float | None = None,
              classes: int | Sequence[int | str] | None = None, per_class: int | None = None,
              resolution: int | None = None, device: str | torch.device = "cpu",
              say: Say | None = None, progress: bool = False) -> DataSplits:
    """Load ``source`` (see the module docstring), its splits moved to ``device``.

    ``classes``: the first K classes (int) or a list of class names/ids (relabelled 0..K-1 in
    the given order). ``per_class``: at most this many training images per class (for folder
    and Parquet sources the same choice for every seed, so runs share a cache; for
    ``synthetic`` it is the number rendered). ``resolution``: the square size the images are
    stored at. ``seed`` drives the minival split (and the synthetic rendering unless its
    options give a seed). ``say`` prints progress lines (where a cache goes, skipped files);
    ``progress`` shows a bar while a cache is built.
    """
    kind, path, raw = parse_source(source)
    options = read_options(raw, source)
    classes = classes if classes is not None else options.classes
    per_class = per_class if per_class is not None else options.per_class
    resolution = resolution if resolution is not None else options.resolution
    minival = minival_fraction if minival_fraction is not None else options.minival
    if minival_fraction is not None and not 0.0 < minival_fraction < 1.0:
        raise DataError(f"minival_fraction {minival_fraction} must be in (0, 1)")
    if per_class is not None and (not is_int(per_class) or per_class < 2):
        raise DataError(f"per_class {per_class!r} must be an integer >= 2 "
                        "(one image for minival, one for training)")
    if resolution is not None and (not is_int(resolution) or resolution < 8):
        raise DataError(f"resolution {resolution!r} must be an integer >= 8")
    if kind in CACHED_KINDS:
        from dataclasses import replace

        from proxy_train.datasets.cached import load_cached

        wanted = classes if classes is None or isinstance(classes, int) else tuple(classes)
        chosen = replace(options, classes=wanted, per_class=per_class, resolution=resolution,
                         minival=minival)
        data = load_cached(source, kind, path, chosen, seed=seed, say=say, progress=progress)
        return _moved(data, device)
    raw_source = _open(kind, path, seed=seed, classes=classes, per_class=per_class,
                       resolution=resolution)
    return _moved(_in_memory(raw_source, classes, per_class, minival, seed), device)


def _in_memory(raw: RawSource, classes: object, per_class: int | None,
               minival: float | int | None, seed: int) -> DataSplits:
    chosen = select_classes(raw.class_names, classes, raw.name)
    rng = np.random.default_rng(seed)
    train_idx, train_labels = keep_classes(raw.train.labels, chosen)
    if per_class is not None:
        train_idx, train_labels = cap_per_class(train_idx, train_labels, per_class, rng)
    fraction = minival_share(minival, len(train_idx))
    fit_idx, val_idx = stratified_split(train_labels, len(chosen), fraction, rng, raw.name,
                                        [raw.class_names[c] for c in chosen])
    images = raw.train.decode(train_idx)
    train = Split(images[fit_idx], torch.as_tensor(train_labels[fit_idx]))
    minival_split = Split(images[val_idx], torch.as_tensor(train_labels[val_idx]))
    test = None
    if raw.test is not None:
        test_idx, test_labels = keep_classes(raw.test.labels, chosen)
        if len(test_idx):
            test = Split(raw.test.decode(test_idx), torch.as_tensor(test_labels))
    return DataSplits(name=raw.name, train=train, minival=minival_split, test=test,
                      num_classes=len(chosen),
                      class_names=tuple(raw.class_names[c] for c in chosen),
                      resolution=int(images.shape[-1]))


def _moved(data: DataSplits, device: str | torch.device) -> DataSplits:
    from dataclasses import replace

    return replace(data, train=data.train.to(device), minival=data.minival.to(device),
                   test=data.test.to(device) if data.test is not None else None)


def _open(kind: str, path: str, *, seed: int, classes: object, per_class: int | None,
          resolution: int | None) -> RawSource:
    if kind == "synthetic":
        from proxy_train.datasets.synthetic import CLASS_NAMES, load_synthetic

        if is_int(classes):
            count = classes
        elif classes is None:
            count = None
        else:  # a list: render every class it could name, then select
            count = len(CLASS_NAMES)
        return load_synthetic(path, seed=seed, classes=count, per_class=per_class,
                              resolution=resolution)
    from proxy_train.datasets.cifar import load_cifar

    return load_cifar(kind, path, resolution=resolution)


__all__ = ["SOURCE_KINDS", "DataSplits", "Split", "default_minival_fraction", "load_data"]
