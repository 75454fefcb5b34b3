"""Contracts of the data sources: shapes, labels, splits, subsetting and error messages."""

from __future__ import annotations

import hashlib
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from proxy_train.data import DataSplits, default_minival_fraction, load_data
from proxy_train.datasets.synthetic import CLASS_NAMES
from proxy_train.errors import DataError
from search_space.errors import NasError

from .conftest import CLASSES, class_color, image_bytes


def _rows(images: torch.Tensor) -> set[bytes]:
    return {bytes(img.numpy().tobytes()) for img in images}


def _check_splits(d: DataSplits) -> None:
    for split in (d.train, d.minival) + ((d.test,) if d.test is not None else ()):
        assert split.images.dtype == torch.uint8
        assert split.labels.dtype == torch.int64
        assert tuple(split.images.shape[1:]) == (3, d.resolution, d.resolution)
        assert len(split.images) == len(split.labels)
        assert int(split.labels.min()) >= 0 and int(split.labels.max()) < d.num_classes
    assert len(d.class_names) == d.num_classes


# --- synthetic ---------------------------------------------------------------------------

def test_synthetic_defaults() -> None:
    d = load_data()
    _check_splits(d)
    assert d.name == "synthetic"
    assert (d.num_classes, d.resolution) == (10, 64)
    assert (len(d.train), len(d.minival), len(d.test)) == (1350, 150, 2000)
    assert d.class_names == CLASS_NAMES[:10]
    assert d.class_names[:2] == ("disc/hstripes", "disc/vstripes")
    # Stratified: 10% of 150 per class, and the test split is balanced.
    assert torch.bincount(d.minival.labels).tolist() == [15] * 10
    assert torch.bincount(d.test.labels).tolist() == [200] * 10
    assert not _rows(d.train.images) & _rows(d.minival.images)


def test_synthetic_is_deterministic_and_fast() -> None:
    start = time.perf_counter()
    a = load_data("synthetic", seed=5)
    elapsed = time.perf_counter() - start
    b = load_data("synthetic", seed=5)
    c = load_data("synthetic", seed=6)
    assert torch.equal(a.train.images, b.train.images)
    assert torch.equal(a.minival.labels, b.minival.labels)
    assert not torch.equal(a.train.images, c.train.images)
    assert elapsed < 5.0  # ~0.3 s on an idle 2-core CPU; generous for a busy machine


def test_synthetic_default_variant_renders_as_it_always_has() -> None:
    """Runs and studies recorded on the built-in set stay comparable: the default rendering
    is pinned by a checksum taken before the ``objects`` variant existed."""
    def digest(source: str) -> str:
        d = load_data(source, seed=7)
        data = d.train.images.numpy().tobytes() + d.test.images.numpy().tobytes()
        return hashlib.sha256(data).hexdigest()[:16]

    small = "synthetic:classes=3,per_class=4,test_per_class=2,resolution=24"
    assert digest(small) == digest(small + ",variant=stripes") == "36a27fbbd3ad7ff9"
    assert digest(small + ",variant=objects") != digest(small)


def test_synthetic_objects_variant_is_deterministic() -> None:
    source = "synthetic:variant=objects,classes=5,per_class=8,test_per_class=4"
    a, b, c = load_data(source, seed=2), load_data(source, seed=2), load_data(source, seed=3)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.images, b.test.images)
    assert not torch.equal(a.train.images, c.train.images)
    assert a.class_names == CLASS_NAMES[:5] and a.resolution == 64
    _raises(r"variant 'waves' is not one of \['stripes', 'objects'\]", "synthetic:variant=waves")


def test_synthetic_options_and_overrides() -> None:
    d = load_data("synthetic:classes=4,per_class=10,test_per_class=3,resolution=32,seed=3")
    _check_splits(d)
    assert (d.num_classes, d.resolution, len(d.train) + len(d.minival), len(d.test)) == (4, 32, 40, 12)
    assert torch.bincount(d.minival.labels).tolist() == [1, 1, 1, 1]  # at least one per class
    # The option seed fixes the rendering; the load seed still drives the minival split.
    e = load_data("synthetic:classes=4,per_class=10,test_per_class=3,resolution=32,seed=3",
                  seed=9)
    assert torch.equal(d.test.images, e.test.images)
    # Keyword arguments override the options.
    f = load_data("synthetic:classes=4", classes=3, per_class=6, resolution=24)
    assert (f.num_classes, f.resolution, len(f.train) + len(f.minival)) == (3, 24, 18)


def test_synthetic_class_list_relabels_in_given_order() -> None:
    d = load_data("synthetic:per_class=4,test_per_class=1", classes=["ring/vstripes", 0])
    assert d.class_names == ("ring/vstripes", "disc/hstripes")
    assert d.num_classes == 2 and len(d.test) == 2


def test_minival_fraction_rule() -> None:
    assert default_minival_fraction(1000) == 0.1
    assert default_minival_fraction(100_000) == 0.05
    assert default_minival_fraction(1_281_167) == 0.02
    d = load_data("synthetic:classes=2,per_class=50,test_per_class=0", minival_fraction=0.2)
    assert torch.bincount(d.minival.labels).tolist() == [10, 10]
    assert d.test is None


# --- folders ---------------------------------------------------------------------------------

def test_folder_source(image_folder: Path) -> None:
    d = load_data(f"folder:{image_folder}", minival_fraction=0.34)
    _check_splits(d)
    assert d.class_names == CLASSES
    assert d.resolution == 20  # the first image's shorter side (24x20, centre-cropped)
    assert d.test is None
    assert torch.bincount(d.minival.labels).tolist() == [2, 2, 2]
    assert len(d.train) == 12
    # Colours survive decoding (PNG exactly, JPEG within a few levels), labels match folders.
    for split in (d.train, d.minival):
        for img, label in zip(split.images[:], split.labels):
            assert abs(int(img[0, 10, 10]) - class_color(int(label), 0)[0]) <= 3
    # Together the two parts hold each image exactly once.
    all_images = torch.cat([d.train.images[:], d.minival.images[:]])
    assert len(_rows(all_images)) == 18


def test_folder_resolution_and_bare_path(image_folder: Path) -> None:
    d = load_data(str(image_folder), resolution=12)
    assert d.resolution == 12 and d.name == f"folder:{image_folder}"
    assert tuple(d.train.images.shape[1:]) == (3, 12, 12)


def test_folder_train_val_layout(split_folder: Path) -> None:
    d = load_data(f"folder:{split_folder}")
    _check_splits(d)
    assert d.class_names == ("a", "b")
    assert len(d.train) + len(d.minival) == 8
    assert torch.bincount(d.test.labels).tolist() == [2, 2]


def test_subsetting_classes_and_per_class(image_folder: Path) -> None:
    d = load_data(f"folder:{image_folder}", classes=2, per_class=4, seed=1)
    assert d.class_names == ("cat", "dog")
    assert torch.bincount(torch.cat([d.train.labels, d.minival.labels])).tolist() == [4, 4]
    e = load_data(f"folder:{image_folder}", classes=["frog", "cat"], per_class=3)
    assert e.class_names == ("frog", "cat")
    # frog (folder label 2) is now label 0: its images carry the frog colour.
    frog = torch.cat([e.train.images[:], e.minival.images[:]])[
        torch.cat([e.train.labels, e.minival.labels]) == 0]
    assert {abs(int(v) - class_color(2, 0)[0]) <= 3 for v in frog[:, 0, 5, 5]} == {True}
    # Seeded choice: same seed, same subset.
    again = load_data(f"folder:{image_folder}", classes=2, per_class=4, seed=1)
    assert torch.equal(d.train.images[:], again.train.images[:])


# --- CIFAR ---------------------------------------------------------------------------------

def test_cifar10(cifar10_dir: Path) -> None:
    d = load_data(f"cifar10:{cifar10_dir}")
    _check_splits(d)
    assert d.resolution == 32 and d.num_classes == 10
    assert d.class_names[0] == "airplane" and d.class_names[9] == "truck"
    assert len(d.train) + len(d.minival) == 50 and len(d.test) == 20
    # Pixel layout: the first training image's red plane is the first 1024 bytes.
    batch = pickle.loads((cifar10_dir / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    first = torch.from_numpy(batch[b"data"][0].reshape(3, 32, 32))
    all_images = torch.cat([d.train.images, d.minival.images])
    assert any(torch.equal(first, img) for img in all_images)
    # A bare parent path is detected as CIFAR-10.
    assert load_data(str(cifar10_dir)).name.startswith("cifar10:")


def test_cifar100_and_resize(cifar100_dir: Path) -> None:
    d = load_data(f"cifar100:{cifar100_dir}", classes=5, resolution=16)
    _check_splits(d)
    assert d.num_classes == 5 and d.class_names == ("c0", "c1", "c2", "c3", "c4")
    assert d.resolution == 16 and len(d.train) + len(d.minival) == 10 and len(d.test) == 5
    assert load_data(str(cifar100_dir), classes=2).name.startswith("cifar100:")


# --- Parquet -------------------------------------------------------------------------------

def test_parquet_hf_struct_column(parquet_hf: Path) -> None:
    d = load_data(f"parquet:{parquet_hf}")
    _check_splits(d)
    assert d.class_names == CLASSES
    assert d.resolution == 20
    assert len(d.train) + len(d.minival) == 15 and len(d.test) == 6
    assert int(d.test.images[:][0, 0, 3, 3]) == class_color(int(d.test.labels[0]), 0)[0]
    assert load_data(str(parquet_hf)).name == f"parquet:{parquet_hf}"


def test_parquet_plain_bytes_column(parquet_bytes: Path) -> None:
    d = load_data(f"parquet:{parquet_bytes}")
    assert d.class_names == ("0", "1") and d.resolution == 18 and d.test is None
    e = load_data(f"parquet:{parquet_bytes}?image=img&label=labels", resolution=8)
    assert e.resolution == 8 and len(e.train) + len(e.minival) == 8


# --- errors --------------------------------------------------------------------------------

def _raises(match: str, source: str, **kwargs: object) -> str:
    with pytest.raises(DataError, match=match) as info:
        load_data(source, **kwargs)
    assert isinstance(info.value, NasError)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_error_missing_and_unknown(tmp_path: Path) -> None:
    _raises(f"{tmp_path / 'nope'}: folder not found", f"folder:{tmp_path / 'nope'}")
    message = _raises("unknown data source kind 'imagenet'", "imagenet:/data")
    assert "'cifar10'" in message and "'parquet'" in message
    _raises("neither an existing path", str(tmp_path / "missing"))
    _raises("unknown option 'colors'", "synthetic:colors=3")
    _raises("option per_class='x' must be an integer", "synthetic:per_class=x")


def test_error_empty_folder_and_class_without_images(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _raises("no class folders", f"folder:{tmp_path / 'empty'}")
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "x.png").write_bytes(image_bytes((1, 2, 3)))
    (tmp_path / "data" / "b").mkdir()
    _raises(f"{tmp_path / 'data' / 'b'}: class folder has no images", f"folder:{tmp_path / 'data'}")




def test_error_wrong_cifar_pickle(cifar10_dir: Path) -> None:
    batch = cifar10_dir / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(pickle.dumps({b"images": [], b"labels": []}))
    message = _raises("missing keys", f"cifar10:{cifar10_dir}")
    assert str(batch) in message and "'data'" in message
    _raises("no 'data_batch_1'", f"cifar10:{cifar10_dir / 'cifar-10-batches-py' / '..' / '..'}")


def test_error_parquet_columns(parquet_bytes: Path) -> None:
    message = _raises("no image column 'pixels'", f"parquet:{parquet_bytes}?image=pixels")
    assert "['img', 'labels', 'note']" in message
    _raises("no label column", f"parquet:{parquet_bytes}?label=cls")
    _raises("has type string; expected encoded image bytes", f"parquet:{parquet_bytes}?image=note")


def test_error_subsetting_out_of_range(image_folder: Path) -> None:
    _raises("classes 4 not in 1..3", f"folder:{image_folder}", classes=4)
    _raises("unknown class 'horse'; classes are: cat, dog, frog", f"folder:{image_folder}",
            classes=["horse"])
    _raises("class id 7 not in 0..2", f"folder:{image_folder}", classes=[7])
    _raises("per_class 1 must be an integer >= 2", f"folder:{image_folder}", per_class=1)
    _raises("classes 41 not in 1..40", "synthetic", classes=41)


def test_split_to_device_keeps_data() -> None:
    d = load_data("synthetic:classes=2,per_class=4,test_per_class=1", device="cpu")
    moved = d.train.to("cpu")
    assert torch.equal(moved.images, d.train.images)
    assert d.train.images.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_load_to_cuda() -> None:
    d = load_data("synthetic:classes=2,per_class=4,test_per_class=1", device="cuda")
    assert d.train.images.is_cuda and d.minival.labels.is_cuda
    assert np.array_equal(d.train.labels.cpu().numpy(),
                          load_data("synthetic:classes=2,per_class=4,test_per_class=1")
                          .train.labels.numpy())
