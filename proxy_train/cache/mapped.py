"""A finished cache, mapped into memory, and the rows of one split of it.

Every process opens a cache by mapping ``images.u8`` (``numpy.memmap``, copy-on-write so
torch may wrap it; nothing ever writes to it): the pages live in the operating system's page
cache, one copy per machine however many trials read them. Each process maps a cache once.

:class:`MappedRows` is what a :class:`~proxy_train.data.Split` holds instead of an image
tensor: the rows of one split (a minival is scattered through the training rows) and the
way to open the cache again. Pickled, it is that way and the row numbers, never the images:
a trial on another process or machine maps the cache there, and builds it from the source
first if that machine has none (:class:`CacheRef`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from proxy_train.cache.manifest import IMAGES, LABELS, Manifest
from proxy_train.errors import DataError


@dataclass(frozen=True, slots=True)
class CacheRef:
    """How to find (or make) one cache: the folder it was opened from, the fingerprint it
    must have, and the source string to build it from where it is missing."""

    path: str
    fingerprint: str
    source: str
    build: dict[str, Any]
    """``load_data`` keyword arguments that chose the rows (classes, per_class, resolution)."""


@dataclass(frozen=True, slots=True)
class OpenCache:
    path: Path
    manifest: Manifest
    images: torch.Tensor
    """uint8 ``[rows, 3, R, R]`` over the mapped file."""
    labels: np.ndarray


_OPEN: dict[str, OpenCache] = {}
_LOCK = threading.Lock()
Rebuild = Callable[[CacheRef], Path]
_REBUILD: list[Rebuild] = []


def open_cache(path: Path) -> OpenCache:
    """Map the finished cache in ``path`` (once per process, and again after a rebuild)."""
    key = str(path)
    with _LOCK:
        manifest = Manifest.read(path)
        if manifest is None:
            raise DataError(f"{path}: not a finished data cache (no manifest)")
        if key not in _OPEN or _OPEN[key].manifest != manifest:  # new, or built again
            size = manifest.resolution
            array = np.memmap(path / IMAGES, dtype=np.uint8, mode="c",
                              shape=(manifest.rows, 3, size, size))
            labels = np.load(path / LABELS)
            _OPEN[key] = OpenCache(path, manifest, torch.from_numpy(array), labels)
        return _OPEN[key]


def set_rebuild(rebuild: Rebuild) -> None:
    """How :func:`reopen` builds a cache that this machine lacks (set by ``proxy_train.data``:
    scan the source again, check its fingerprint, build)."""
    _REBUILD[:] = [rebuild]


def reopen(ref: CacheRef) -> OpenCache:
    """The cache ``ref`` names, on this machine: mapped if present and current, else built."""
    manifest = Manifest.read(Path(ref.path))
    if manifest is not None and manifest.fingerprint == ref.fingerprint:
        return open_cache(Path(ref.path))
    if not _REBUILD:
        import proxy_train.datasets.cached  # noqa: F401 - registers the rebuild

    return open_cache(_REBUILD[0](ref))


class MappedRows:
    """Rows ``rows`` of a mapped cache, as a split's images: ``rows_view[index]`` gathers a
    uint8 batch ``[len(index), 3, R, R]`` (``index``: a tensor of positions or a slice)."""

    def __init__(self, ref: CacheRef, rows: np.ndarray, cache: OpenCache | None = None) -> None:
        self.ref = ref
        self.rows = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        self._cache = cache

    @property
    def base(self) -> torch.Tensor:
        """The whole mapped array (opened on first use in this process)."""
        if self._cache is None:
            self._cache = reopen(self.ref)
        return self._cache.images

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        size = int(self.ref.build["resolution"])
        return (len(self), 3, size, size)

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def nbytes(self) -> int:
        _, c, h, w = self.shape
        return len(self) * c * h * w

    def gather(self, index: torch.Tensor | slice, out: torch.Tensor | None = None
               ) -> torch.Tensor:
        """The images at ``index`` (positions in this split), into ``out`` if given."""
        rows = self.rows[index] if isinstance(index, slice) else self.rows[index.cpu()]
        return torch.index_select(self.base, 0, rows, out=out) if out is not None \
            else torch.index_select(self.base, 0, rows)

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        return self.gather(index)

    def __reduce__(self) -> tuple[Any, tuple[CacheRef, np.ndarray]]:
        return MappedRows, (self.ref, self.rows.numpy())


__all__ = ["CacheRef", "MappedRows", "OpenCache", "open_cache", "reopen", "set_rebuild"]
