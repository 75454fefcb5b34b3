"""Options after a source's path: the syntax, paths holding ':' and ',', and each option."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from proxy_train.data import load_data
from proxy_train.datasets.options import COMMON_OPTIONS, read_options, split_path
from proxy_train.errors import DataError

from .conftest import image_bytes


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.mark.parametrize(("text", "path", "options"), [
    ("/data/imagenet", "/data/imagenet", {}),
    ("/data/imagenet:resolution=32", "/data/imagenet", {"resolution": "32"}),
    ("/data/imagenet?resolution=32&per_class=2", "/data/imagenet",
     {"resolution": "32", "per_class": "2"}),
    ("/data/a:b,c:classes=cat+dog,minival=0.05", "/data/a:b,c",
     {"classes": "cat+dog", "minival": "0.05"}),
    ("/data/run,lr=0.1", "/data/run,lr=0.1", {}),
])
def test_split_path(text: str, path: str, options: dict[str, str]) -> None:
    assert split_path(text, text, COMMON_OPTIONS) == (path, options)


def test_option_values_are_checked() -> None:
    options = read_options({"resolution": "64", "classes": "a+b", "per_class": "5",
                            "minival": "500"}, "w")
    assert (options.resolution, options.classes, options.per_class, options.minival) == \
        (64, ("a", "b"), 5, 500)
    assert read_options({"classes": "10", "minival": "0.02"}, "w").classes == 10
    for raw, match in [({"resolution": "x"}, "must be an integer"),
                       ({"per_class": "1"}, "per_class=1 must be >= 2"),
                       ({"minival": "1.5"}, "minival='1.5' must be a fraction"),
                       ({"classes": "a++b"}, "joined by \\+")]:
        with pytest.raises(DataError, match=match):
            read_options(raw, "w")


def test_a_path_with_colons_and_commas_takes_options(tmp_path: Path) -> None:
    root = tmp_path / "my:data,v2"
    for name in ("cat", "dog", "frog"):
        (root / name).mkdir(parents=True)
        for i in range(6):
            (root / name / f"{i}.png").write_bytes(image_bytes((40 * i, 20, 20), size=(16, 16)))
    data = load_data(f"folder:{root}:resolution=12,classes=frog+cat,per_class=4,minival=2")
    assert data.class_names == ("frog", "cat") and data.resolution == 12
    assert len(data.minival) == 2 and len(data.train) == 6
    assert load_data(str(root) + ":classes=2").class_names == ("cat", "dog")  # a bare path
    assert load_data(f"folder:{root}").resolution == 16
    with pytest.raises(DataError, match="unknown option 'colors'"):
        load_data(f"folder:{root}:colors=3")
    with pytest.raises(DataError, match="option 'cache' does not apply to a cifar10 source"):
        load_data(f"cifar10:{root}:cache=/tmp")


def test_keyword_arguments_override_options(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(5):
            (root / name / f"{i}.png").write_bytes(image_bytes((9, 9, 9), size=(20, 20)))
    data = load_data(f"folder:{root}:resolution=12,classes=1", resolution=8, classes=2)
    assert data.resolution == 8 and data.num_classes == 2
    assert torch.bincount(data.minival.labels).tolist() == [1, 1]


def test_the_old_missing_folder_message_points_at_the_syntax(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="options follow the path after ':'"):
        load_data(f"folder:{tmp_path / 'x'},per_class=2")
