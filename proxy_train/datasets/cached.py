"""Image folders and Parquet tables through the decoded cache.

``load_cached`` scans the source (names, sizes and times of its files; no decoding), finds or
builds its cache at the resolution asked for (:func:`proxy_train.cache.build.ensure_cache`),
opens it, and carves the minival split from the training rows. The splits hold cached rows,
never decoded copies: this process, every trial (on this machine or another, which opens or
builds its own cache: :mod:`proxy_train.cache.rows`) and every later run read the same
file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from proxy_train.cache.build import ensure_cache
from proxy_train.cache.location import cache_root
from proxy_train.cache.manifest import size_text
from proxy_train.cache.rows import CachedRows, CacheRef, OpenCache, open_cache, set_rebuild
from proxy_train.datasets.folder import scan_folder
from proxy_train.datasets.inventory import Inventory
from proxy_train.datasets.options import SourceOptions
from proxy_train.datasets.parquet_images import scan_parquet
from proxy_train.errors import DataError
from proxy_train.splits import DataSplits, Split, minival_share, stratified_split

Say = Callable[[str], None]
DEFAULT_MAX_RESOLUTION = 128
"""Images are cached at this size unless a resolution is given (never upscaled past the
first image's shorter side)."""


def scan(kind: str, path: str, options: SourceOptions) -> tuple[Inventory, str | None]:
    """The source's rows (and, for Parquet, its image column)."""
    if kind == "folder":
        return scan_folder(path, classes=options.classes, per_class=options.per_class), None
    return scan_parquet(path, classes=options.classes, per_class=options.per_class,
                        image=options.image, label=options.label)


def first_resolution(inventory: Inventory, column: str | None) -> int:
    """The shorter side of the first image that opens, capped at ``DEFAULT_MAX_RESOLUTION``."""
    from PIL import Image

    from proxy_train.cache.decode import Chunk, payloads

    for item in inventory.items[:20]:
        payload = payloads(Chunk("", 0, 1, [item], column))[0]
        try:
            with Image.open(payload if isinstance(payload, str) else _bytes(payload)) as image:
                return min(DEFAULT_MAX_RESOLUTION, *image.size)
        except Exception:  # noqa: BLE001 - try the next one
            continue
    raise DataError(f"{inventory.name}: none of the first images can be opened (first: "
                    f"{inventory.display(inventory.items[0])}); images must be JPEG, PNG, "
                    "WebP, BMP or TIFF files")


def _bytes(payload: bytes | None) -> Any:
    import io

    return io.BytesIO(payload or b"")


def load_cached(source: str, kind: str, path: str, options: SourceOptions, *, seed: int,
                say: Say | None, progress: bool) -> DataSplits:
    """The splits of a folder or Parquet source, read from its cache."""
    tell: Say = say if say is not None else (lambda line: None)
    inventory, column = scan(kind, path, options)
    for note in inventory.notes:
        tell(note)
    size = options.resolution or first_resolution(inventory, column)
    folder = ensure_cache(inventory, size, cache_root(options.cache), image_column=column,
                          say=tell, progress=progress)
    cache = open_cache(folder)
    manifest = cache.manifest
    tell(f"data: {manifest.rows - manifest.bad:,} images in {len(manifest.class_names)} classes "
         f"at {size} px, read from the cache {folder} ({size_text(manifest.image_bytes)})")
    build = {"classes": options.classes, "per_class": options.per_class, "resolution": size,
             "cache": options.cache, "image": options.image, "label": options.label}
    ref = CacheRef(str(folder), inventory.fingerprint, source, build)
    return _splits(cache, ref, inventory.name, options.minival, seed)


def _splits(cache: OpenCache, ref: CacheRef, name: str, minival: float | int | None,
            seed: int) -> DataSplits:
    manifest, labels = cache.manifest, cache.labels
    names = list(manifest.class_names)
    train_rows = np.flatnonzero(labels[:manifest.train_rows] >= 0)
    train_labels = labels[train_rows]
    fraction = minival_share(minival, len(train_rows))
    fit, val = stratified_split(train_labels, len(names), fraction,
                                np.random.default_rng(seed), name, names)

    def split(rows: np.ndarray) -> Split:
        return Split(CachedRows(ref, rows, cache), torch.as_tensor(labels[rows]))

    test_rows = manifest.train_rows + np.flatnonzero(labels[manifest.train_rows:] >= 0)
    return DataSplits(name=name, train=split(train_rows[fit]), minival=split(train_rows[val]),
                      test=split(test_rows) if len(test_rows) else None,
                      num_classes=len(names), class_names=tuple(names),
                      resolution=manifest.resolution, cache=str(cache.path))


def _rebuild(ref: CacheRef) -> Path:
    """Find or build ``ref``'s cache on this machine (a trial where the run's cache folder
    is missing or not current): the source here must be the source the run started from."""
    from proxy_train.datasets.sources import parse_source

    kind, path, _ = parse_source(ref.source)
    build = ref.build
    options = SourceOptions(resolution=build["resolution"], classes=build["classes"],
                            per_class=build["per_class"], cache=build["cache"],
                            image=build["image"], label=build["label"])
    inventory, column = scan(kind, path, options)
    if inventory.fingerprint != ref.fingerprint:
        raise DataError(f"{inventory.name} on this machine is not the data the run started "
                        "from (its files differ: added, removed or modified); give every "
                        "machine the same copy, or a shared folder")
    return ensure_cache(inventory, build["resolution"], cache_root(options.cache),
                        image_column=column)


set_rebuild(_rebuild)

__all__ = ["DEFAULT_MAX_RESOLUTION", "first_resolution", "load_cached", "scan"]
