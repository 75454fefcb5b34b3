"""Fixtures that write tiny fake data sets (image folders, CIFAR pickles, Parquet tables)."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

CLASSES = ("cat", "dog", "frog")


def image_bytes(color: tuple[int, int, int], size: tuple[int, int] = (24, 20),
                fmt: str = "PNG") -> bytes:
    """An encoded solid-colour image (``size`` is width, height)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def class_color(label: int, i: int) -> tuple[int, int, int]:
    """A colour that encodes label and index, so tests can tell images apart after decoding."""
    return (40 + 60 * label, 10 * i, 200)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """``root/<cat|dog|frog>/`` with 6 images each (PNG and JPEG, 24x20 so a crop happens)."""
    root = tmp_path / "folder"
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(6):
            fmt, ext = ("PNG", "png") if i % 2 == 0 else ("JPEG", "jpg")
            (root / name / f"{i}.{ext}").write_bytes(image_bytes(class_color(label, i), fmt=fmt))
    return root


@pytest.fixture
def split_folder(tmp_path: Path) -> Path:
    """``root/train/<a|b>/`` (4 images each) and ``root/val/<a|b>/`` (2 each), 16x16."""
    root = tmp_path / "split"
    for split, count in (("train", 4), ("val", 2)):
        for label, name in enumerate(("a", "b")):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                data = image_bytes(class_color(label, i), size=(16, 16))
                (root / split / name / f"{i}.png").write_bytes(data)
    return root


def _cifar_data(n: int, num_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    labels = [i % num_classes for i in range(n)]
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return data, labels


def _dump(path: Path, obj: dict) -> None:
    path.write_bytes(pickle.dumps(obj))


@pytest.fixture
def cifar10_dir(tmp_path: Path) -> Path:
    """Parent folder holding ``cifar-10-batches-py`` (5 x 10 train images, 20 test images)."""
    root = tmp_path / "c10" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        data, labels = _cifar_data(10, 10, rng)
        _dump(root / f"data_batch_{i}", {b"batch_label": b"x", b"labels": labels, b"data": data,
                                         b"filenames": [b"f"] * 10})
    data, labels = _cifar_data(20, 10, rng)
    _dump(root / "test_batch", {b"labels": labels, b"data": data})
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    _dump(root / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    return root.parent


@pytest.fixture
def cifar100_dir(tmp_path: Path) -> Path:
    """The ``cifar-100-python`` folder itself: 200 train (2 per class), 100 test images."""
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    rng = np.random.default_rng(1)
    data, labels = _cifar_data(200, 100, rng)
    _dump(root / "train", {b"data": data, b"fine_labels": labels,
                           b"coarse_labels": [0] * 200})
    data, labels = _cifar_data(100, 100, rng)
    _dump(root / "test", {b"data": data, b"fine_labels": labels})
    _dump(root / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                          b"coarse_label_names": [b"x"]})
    return root


def _hf_metadata(names: list[str]) -> dict[bytes, bytes]:
    info = {"info": {"features": {
        "image": {"_type": "Image"},
        "label": {"names": names, "_type": "ClassLabel"},
    }}}
    return {b"huggingface": json.dumps(info).encode()}


@pytest.fixture
def parquet_hf(tmp_path: Path) -> Path:
    """A Hugging Face style export: ``train-*.parquet`` and ``test-*.parquet`` with an
    ``image`` struct {bytes, path} column, a ``label`` column and ClassLabel names."""
    root = tmp_path / "hf"
    root.mkdir()
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    for split, per_class in (("train", 5), ("test", 2)):
        images, labels = [], []
        for label in range(3):
            for i in range(per_class):
                images.append({"bytes": image_bytes(class_color(label, i), size=(20, 20)),
                               "path": f"{label}_{i}.png"})
                labels.append(label)
        table = pa.table({"image": pa.array(images, type=struct),
                          "label": pa.array(labels, type=pa.int64())})
        table = table.replace_schema_metadata(_hf_metadata(list(CLASSES)))
        pq.write_table(table, root / f"{split}-00000-of-00001.parquet")
    return root


@pytest.fixture
def parquet_bytes(tmp_path: Path) -> Path:
    """One file with a plain binary ``img`` column and an int32 ``labels`` column."""
    images = [image_bytes(class_color(label, i), size=(18, 18), fmt="PNG")
              for label in range(2) for i in range(4)]
    labels = [label for label in range(2) for _ in range(4)]
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"img": pa.array(images, type=pa.binary()),
                             "labels": pa.array(labels, type=pa.int32()),
                             "note": ["x"] * 8}), path)
    return path
