"""A finished cache, opened for reading, and the rows of one split of it.

Every process opens a cache's ``images.u8`` once and reads the rows a batch needs with
positioned reads (``os.preadv`` straight into the batch's buffer, one read per run of
neighbouring rows). The file's pages live in the operating system's page cache, one copy per
machine however many trials read them, and none of them is mapped into a process: a trial's
resident memory holds its batches, not the pages it read them from. (Mapping the file, the
first design, counted every touched page, and the kernel's fault-around neighbours with it,
in each process's RSS, so a trial's peak grew with the data; reading costs a copy the mapping
did not: ``bench/results/cache_reads.md``.)

:class:`CachedRows` is what a :class:`~proxy_train.data.Split` holds instead of an image
tensor: the rows of one split (a minival is scattered through the training rows) and the
way to open the cache again. Pickled, it is that way and the row numbers, never the images:
a trial on another process or machine opens the cache there, and builds it from the source
first if that machine has none (:class:`CacheRef`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

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
    fd: int
    """``images.u8``, open for reading (for the life of the process: rows handed out keep
    reading the file they were opened on, even after a rebuild replaced it)."""
    labels: np.ndarray

    @property
    def row_bytes(self) -> int:
        return 3 * self.manifest.resolution ** 2

    def read(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Rows ``rows`` of the cache into ``out`` (uint8, C-contiguous ``[len(rows), ...]``)."""
        flat = out.reshape(len(rows), self.row_bytes)
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)  # runs of neighbouring rows
        ends = np.append(starts[1:], len(rows))
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            want = (end - start) * self.row_bytes
            got = _pread(self.fd, flat[start:end], int(rows[start]) * self.row_bytes)
            if got != want:
                raise DataError(f"{self.path / IMAGES}: {got} of {want} bytes read at row "
                                f"{int(rows[start])}: the cache file is shorter than its "
                                f"manifest says (delete the folder to rebuild it)")


def _pread(fd: int, buffer: np.ndarray, offset: int) -> int:
    if hasattr(os, "preadv"):
        return os.preadv(fd, [cast(Any, buffer)], offset)  # an ndarray is a writable buffer
    data = os.pread(fd, buffer.nbytes, offset)  # platforms without preadv
    buffer.reshape(-1)[:len(data)] = np.frombuffer(data, dtype=np.uint8)
    return len(data)


_OPEN: dict[str, OpenCache] = {}
_LOCK = threading.Lock()
Rebuild = Callable[[CacheRef], Path]
_REBUILD: list[Rebuild] = []


def open_cache(path: Path) -> OpenCache:
    """Open the finished cache in ``path`` (once per process, and again after a rebuild)."""
    key = str(path)
    with _LOCK:
        manifest = Manifest.read(path)
        if manifest is None:
            raise DataError(f"{path}: not a finished data cache (no manifest)")
        if key not in _OPEN or _OPEN[key].manifest != manifest:  # new, or built again
            fd = os.open(path / IMAGES, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            labels = np.load(path / LABELS)
            _OPEN[key] = OpenCache(path, manifest, fd, labels)
        return _OPEN[key]


def set_rebuild(rebuild: Rebuild) -> None:
    """How :func:`reopen` builds a cache that this machine lacks (set by ``proxy_train.data``:
    scan the source again, check its fingerprint, build)."""
    _REBUILD[:] = [rebuild]


def reopen(ref: CacheRef) -> OpenCache:
    """The cache ``ref`` names, on this machine: opened if present and current, else built."""
    manifest = Manifest.read(Path(ref.path))
    if manifest is not None and manifest.fingerprint == ref.fingerprint:
        return open_cache(Path(ref.path))
    if not _REBUILD:
        import proxy_train.datasets.cached  # noqa: F401 - registers the rebuild

    return open_cache(_REBUILD[0](ref))


class CachedRows:
    """Rows ``rows`` of a cache, as a split's images: ``cached[index]`` reads a uint8 batch
    ``[len(index), 3, R, R]`` (``index``: a tensor of positions or a slice)."""

    def __init__(self, ref: CacheRef, rows: np.ndarray, cache: OpenCache | None = None) -> None:
        self.ref = ref
        self.rows = np.asarray(rows, dtype=np.int64)
        self._cache = cache

    @property
    def cache(self) -> OpenCache:
        """The open cache (opened on first use in this process)."""
        if self._cache is None:
            self._cache = reopen(self.ref)
        return self._cache

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
        """The images at ``index`` (positions in this split), into ``out`` if given (a
        contiguous CPU tensor, pinned or not)."""
        rows = self.rows[index] if isinstance(index, slice) \
            else self.rows[index.cpu().numpy()]
        if out is None:
            out = torch.empty((len(rows), *self.shape[1:]), dtype=torch.uint8)
        if not out.is_contiguous() or out.shape != (len(rows), *self.shape[1:]):
            raise ValueError(f"out must be a contiguous uint8 tensor of shape "
                             f"{(len(rows), *self.shape[1:])}, not {tuple(out.shape)}")
        if len(rows):
            self.cache.read(rows, out.numpy())
        return out

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        return self.gather(index)

    def __reduce__(self) -> tuple[Any, tuple[CacheRef, np.ndarray]]:
        return CachedRows, (self.ref, self.rows)


__all__ = ["CacheRef", "CachedRows", "OpenCache", "open_cache", "reopen", "set_rebuild"]
