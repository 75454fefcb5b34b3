"""The decoded cache: built once and reused, rebuilt when the source changes, never used
half-built, and opened by path (not shipped) in other processes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from proxy_train.cache import build
from proxy_train.cache.manifest import Manifest
from proxy_train.data import load_data

from .conftest import class_color, image_bytes


class Said(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self)


def caches(root: Path) -> list[Path]:
    """The cache folders (finished or partial) under ``root``."""
    return sorted(p for p in root.glob("*px-*") if p.is_dir()) if root.exists() else []


def cache_root() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "effnas"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test has a cache folder of its own (the suite's home is shared by a module)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("EFFNAS_CACHE", raising=False)
    return tmp_path / "xdg-cache" / "effnas"


def test_built_once_then_mapped(image_folder: Path) -> None:
    said = Said()
    first = load_data(f"folder:{image_folder}", say=said)
    assert said.has("decoding 18 images") and said.has(str(cache_root()))
    again = Said()
    second = load_data(f"folder:{image_folder}", say=again)
    assert not again.has("decoding") and again.has("read from the cache")
    assert first.cache == second.cache and len(caches(cache_root())) == 1
    assert torch.equal(first.train.images[:], second.train.images[:])
    manifest = Manifest.read(Path(str(first.cache)))
    assert manifest is not None and manifest.rows == 18 and manifest.resolution == 20
    assert manifest.class_names == ["cat", "dog", "frog"] and manifest.source.startswith("folder:")


def test_pickled_splits_carry_rows_not_images(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for label in range(2):
        (root / f"c{label}").mkdir(parents=True)
        for i in range(40):
            (root / f"c{label}" / f"{i}.png").write_bytes(image_bytes(class_color(label, i),
                                                                      size=(64, 64)))
    data = load_data(f"folder:{root}")
    image_bytes_total = 80 * 3 * 64 * 64
    payload = pickle.dumps(data)
    assert len(payload) < image_bytes_total / 10
    copy = pickle.loads(payload)
    assert torch.equal(copy.train.images[:], data.train.images[:])
    assert torch.equal(copy.minival.labels, data.minival.labels)


def test_a_changed_source_is_rebuilt(image_folder: Path) -> None:
    source = f"folder:{image_folder}"
    before = load_data(source)
    (image_folder / "cat" / "extra.png").write_bytes(image_bytes((1, 2, 3)))
    said = Said()
    added = load_data(source, say=said)
    assert said.has("the source changed") and said.has("decoding 19 images")
    assert len(added.train) + len(added.minival) == 19 and added.cache == before.cache
    (image_folder / "cat" / "extra.png").unlink()
    assert load_data(source).train.labels.shape == before.train.labels.shape
    target = image_folder / "dog" / "0.png"
    target.write_bytes(image_bytes((250, 250, 250)))
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    said = Said()
    changed = load_data(source, say=said)
    assert said.has("the source changed")
    pixels = torch.cat([changed.train.images[:], changed.minival.images[:]])
    assert (pixels[:, 0, 5, 5] >= 245).sum() == 1
    assert len(caches(cache_root())) == 1


def test_the_cache_folder_comes_from_option_then_environment(image_folder: Path,
                                                            tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    data = load_data(f"folder:{image_folder}:cache={tmp_path / 'opt'}")
    assert str(data.cache).startswith(str(tmp_path / "opt"))
    monkeypatch.setenv("EFFNAS_CACHE", str(tmp_path / "env"))
    assert str(load_data(f"folder:{image_folder}").cache).startswith(str(tmp_path / "env"))
    assert not caches(cache_root())
    assert not list(image_folder.rglob("*.u8"))  # nothing is written into the source


_KILLED_BUILD = textwrap.dedent("""
    import sys, time
    from proxy_train.cache import build
    from proxy_train.data import load_data

    build.CHUNK_ROWS, build.MARK_EVERY_S = 4, 0.0
    real = build.decode_chunk
    done = []

    def slow(chunk):
        if len(done) == 2:
            time.sleep(600)  # killed here, after two chunks were recorded
        done.append(chunk.start)
        return real(chunk)

    build.decode_chunk = slow
    load_data(sys.argv[1])
""")


def test_a_killed_build_is_never_used_and_is_resumed(image_folder: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "EFFNAS_DECODE_WORKERS": "1"}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_BUILD, f"folder:{image_folder}"],
                             env=env)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            partial = [p for p in caches(cache_root()) if p.name.endswith(".partial")]
            if partial and len((partial[0] / "done.jsonl").read_text().splitlines()) >= 2:
                break
            assert child.poll() is None, "the build ended before it was killed"
            time.sleep(0.2)
        else:
            pytest.fail("the build recorded no chunk in time")
    finally:
        child.kill()
        child.wait()
    assert [p.name.endswith(".partial") for p in caches(cache_root())] == [True]
    monkeypatch.setattr(build, "CHUNK_ROWS", 4)
    said = Said()
    resumed = load_data(f"folder:{image_folder}", say=said)
    assert said.has("resuming a build that stopped (2 of 5 chunks done)")
    assert said.has("decoding 10 images")
    assert [p.name.endswith(".partial") for p in caches(cache_root())] == [False]
    fresh = load_data(f"folder:{image_folder}:cache={tmp_path / 'fresh'}")
    assert torch.equal(resumed.train.images[:], fresh.train.images[:])
    assert torch.equal(resumed.minival.images[:], fresh.minival.images[:])


def test_a_build_in_worker_processes_equals_one_in_process(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    root = tmp_path / "many"
    for label in range(2):
        (root / f"c{label}").mkdir(parents=True)
        for i in range(12):
            (root / f"c{label}" / f"{i}.jpg").write_bytes(
                image_bytes(class_color(label, i), size=(30, 26), fmt="JPEG"))
    monkeypatch.setattr(build, "CHUNK_ROWS", 5)
    monkeypatch.setenv("EFFNAS_DECODE_WORKERS", "2")
    said = Said()
    parallel = load_data(f"folder:{root}", say=said)
    assert said.has("with 2 process(es)")
    monkeypatch.setenv("EFFNAS_DECODE_WORKERS", "1")
    single = load_data(f"folder:{root}:cache={tmp_path / 'one'}")
    assert torch.equal(parallel.train.images[:], single.train.images[:])


def test_parquet_through_the_cache(parquet_hf: Path) -> None:
    data = load_data(f"parquet:{parquet_hf}:resolution=10")
    assert data.cache is not None and data.resolution == 10
    assert np.array_equal(np.bincount(data.test.labels.numpy()), [2, 2, 2])
    again = Said()
    load_data(f"parquet:{parquet_hf}:resolution=10", say=again)
    assert not again.has("decoding")
