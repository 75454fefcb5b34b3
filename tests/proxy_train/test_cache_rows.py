"""Rows read from a finished cache: the right bytes in the asked order, a short file named,
and nothing of the cache counted in the reading process's resident memory."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from proxy_train.cache.manifest import IMAGES, LABELS, Manifest
from proxy_train.cache.rows import CachedRows, CacheRef, open_cache
from proxy_train.errors import DataError

SIZE = 16
ROW = 3 * SIZE * SIZE


def write_cache(folder: Path, rows: int) -> np.ndarray:
    """A finished cache of ``rows`` random images; returns them as ``[rows, 3, R, R]``."""
    folder.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (rows, 3, SIZE, SIZE), dtype=np.uint8)
    images.tofile(folder / IMAGES)
    np.save(folder / LABELS, np.arange(rows, dtype=np.int64) % 4)
    Manifest(source="folder:x", fingerprint="f", resolution=SIZE, crop="center",
             class_names=["a", "b", "c", "d"], rows=rows, train_rows=rows,
             selection="all").write(folder)
    return images


def rows_of(folder: Path, rows: np.ndarray) -> CachedRows:
    ref = CacheRef(str(folder), "f", "folder:x", {"resolution": SIZE})
    return CachedRows(ref, rows, open_cache(folder))


def test_rows_come_back_in_the_order_asked(tmp_path: Path) -> None:
    images = write_cache(tmp_path / "c", 50)
    split = np.array([7, 8, 9, 3, 40, 41, 0, 49, 12])  # runs of neighbours and lone rows
    cached = rows_of(tmp_path / "c", split)
    index = torch.tensor([8, 0, 1, 2, 2, 5, 4, 3, 6, 7])  # a repeat, and out of order
    assert np.array_equal(cached[index].numpy(), images[split[index.numpy()]])
    assert np.array_equal(cached[2:6].numpy(), images[split[2:6]])
    assert cached[torch.tensor([], dtype=torch.int64)].shape == (0, 3, SIZE, SIZE)
    out = torch.zeros((3, 3, SIZE, SIZE), dtype=torch.uint8)
    assert cached.gather(torch.tensor([1, 2, 3]), out=out) is out
    assert np.array_equal(out.numpy(), images[[8, 9, 3]])
    with pytest.raises(ValueError, match="contiguous uint8 tensor of shape"):
        cached.gather(torch.tensor([1, 2]), out=out)


def test_a_cache_file_shorter_than_its_manifest_is_named(tmp_path: Path) -> None:
    write_cache(tmp_path / "c", 10)
    with open(tmp_path / "c" / IMAGES, "r+b") as f:
        f.truncate(8 * ROW + 5)
    cached = rows_of(tmp_path / "c", np.arange(10))
    assert cached[torch.tensor([0, 7])].shape[0] == 2
    with pytest.raises(DataError, match=r"row 8: the cache file is shorter than its manifest"):
        cached[torch.tensor([8, 9])]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_reading_every_row_leaves_the_file_out_of_resident_memory(tmp_path: Path) -> None:
    """A whole 48 MiB cache read batch by batch adds at most a batch to the process's file
    pages (mapping the file, as before, added every page it touched)."""
    rows = 65536  # 48 MiB
    write_cache(tmp_path / "c", rows)
    cached = rows_of(tmp_path / "c", np.random.default_rng(1).permutation(rows))
    before = _rss_file_kb()
    for start in range(0, rows, 256):
        cached[start:start + 256]
    assert _rss_file_kb() - before < 4 * 1024  # < 4 MiB of the 48 MiB read


def _rss_file_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile line")
