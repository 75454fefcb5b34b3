"""Images as people have them: odd modes are converted as a viewer shows them; broken files
are skipped and counted; sources that cannot work are refused in one line, leaving nothing."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from proxy_train.cache import build
from proxy_train.data import load_data
from proxy_train.errors import DataError

from .conftest import image_bytes
from .test_cache import Said, caches


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("EFFNAS_CACHE", raising=False)
    return tmp_path / "xdg-cache" / "effnas"


def _saved(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _filler(count: int = 2) -> dict[str, bytes]:
    return {f"plain/{i}.png": image_bytes((10, 10, 10), size=(12, 12)) for i in range(count)}


def _refused(match: str, source: str, root: Path) -> str:
    with pytest.raises(DataError, match=match) as info:
        load_data(source)
    assert "\n" not in str(info.value)
    assert not caches(root), "a refused source leaves no cache behind"
    return str(info.value)


def _only_image(data_root: Path, name: str) -> torch.Tensor:
    data = load_data(f"folder:{data_root}:resolution=10,minival=1")
    images = torch.cat([data.train.images[:], data.minival.images[:]])
    labels = torch.cat([data.train.labels, data.minival.labels])
    return images[labels == data.class_names.index(name)][0]


def test_modes_are_converted_as_a_viewer_shows_them(tmp_path: Path) -> None:
    sixteen = Image.fromarray(np.full((12, 12), 40000, dtype=np.uint16))
    rgba = Image.new("RGBA", (12, 12), (255, 0, 0, 0))
    files = {
        "gray/0.png": _saved(Image.new("L", (12, 12), 100), "PNG"),
        "rgba/0.png": _saved(rgba, "PNG"),
        "cmyk/0.jpg": _saved(Image.new("CMYK", (12, 12), (0, 255, 255, 0)), "JPEG"),
        "sixteen/0.png": _saved(sixteen, "PNG"),
    }
    root = _folder(tmp_path / "modes", {**files, **{k.replace("0.", "1."): v
                                                    for k, v in files.items()}})
    assert _only_image(root, "gray")[:, 5, 5].tolist() == [100, 100, 100]
    assert _only_image(root, "rgba")[:, 5, 5].tolist() == [255, 255, 255]  # over white
    red = _only_image(root, "cmyk")[:, 5, 5].tolist()
    assert red[0] > 230 and red[1] < 30 and red[2] < 30
    assert _only_image(root, "sixteen")[:, 5, 5].tolist() == [156] * 3  # 40000 / 257


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    pixels[:, 15:] = 255  # stored: left half black, right half white
    stored = Image.fromarray(pixels)
    exif = stored.getexif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: black on top
    data = _saved(stored, "JPEG", exif=exif.tobytes(), quality=95)
    root = _folder(tmp_path / "exif", {"turned/0.jpg": data, "turned/1.jpg": data})
    image = _only_image(root, "turned")
    assert image[0, 1, 5] < 40 and image[0, 8, 5] > 215


def test_broken_files_are_skipped_and_counted_in_one_line(image_folder: Path) -> None:
    good = image_bytes((200, 10, 10), size=(40, 40), fmt="JPEG")
    (image_folder / "dog" / "garbage.jpg").write_bytes(b"not really a jpeg")
    (image_folder / "cat" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    said = Said()
    data = load_data(f"folder:{image_folder}", say=said)
    assert len(data.train) + len(data.minival) == 18
    lines = [line for line in said if line.startswith("skipped 2 images")]
    assert len(lines) == 1 and "garbage.jpg" in lines[0] and "truncated.jpg" in lines[0]


def test_non_images_and_hidden_files_are_skipped_with_a_note(image_folder: Path) -> None:
    (image_folder / "cat" / "notes.txt").write_text("hello")
    (image_folder / "cat" / "._0.jpg").write_bytes(b"macOS resource fork")
    said = Said()
    data = load_data(f"folder:{image_folder}", say=said)
    assert len(data.train) + len(data.minival) == 18
    assert said.has("skipped 1 file not named as an image (.txt)")


def test_a_source_that_is_mostly_unreadable_is_refused(tmp_path: Path, own_cache: Path) -> None:
    files = {f"{c}/{i}.jpg": b"garbage" for c in ("a", "b") for i in range(3)}
    files["a/ok.png"] = files["b/ok.png"] = image_bytes((1, 2, 3))
    root = _folder(tmp_path / "bad", files)
    message = _refused("6 of 8 images tried could not be decoded", f"folder:{root}:resolution=8",
                       own_cache)
    assert "refusing a source that is mostly unreadable" in message


def test_a_class_left_with_one_readable_image_is_refused(tmp_path: Path, own_cache: Path
                                                        ) -> None:
    files = {**_filler(4), "thin/0.png": image_bytes((1, 2, 3)), "thin/1.jpg": b"garbage"}
    root = _folder(tmp_path / "thin", files)
    _refused("class 'thin' has 1 decodable training image", f"folder:{root}", own_cache)


@pytest.mark.parametrize("case", ["empty class", "one image", "symlink loop", "self link",
                                  "no images at all"])
def test_folders_that_cannot_work_are_refused(case: str, tmp_path: Path, own_cache: Path
                                              ) -> None:
    root = _folder(tmp_path / "src", _filler())
    if case == "empty class":
        (root / "empty").mkdir()
        _refused(f"{root / 'empty'}: class folder has no images", f"folder:{root}", own_cache)
    elif case == "one image":
        _folder(root, {"single/0.png": image_bytes((5, 5, 5))})
        _refused("class has 1 training image; every class needs at least 2",
                 f"folder:{root}", own_cache)
    elif case == "symlink loop":
        os.symlink(root / "plain", root / "plain" / "again")
        _refused("symbolic link loop", f"folder:{root}", own_cache)
    elif case == "self link":
        os.symlink(root / "plain" / "x.jpg", root / "plain" / "x.jpg")
        _refused("symbolic link loop or an unreadable entry", f"folder:{root}", own_cache)
    else:
        (root / "words").mkdir()
        (root / "words" / "a.txt").write_text("x")
        _refused("class folder has no images", f"folder:{root}", own_cache)


def test_a_read_only_source_is_read_and_a_read_only_cache_is_refused(image_folder: Path,
                                                                    own_cache: Path) -> None:
    for path in [image_folder, *image_folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        data = load_data(f"folder:{image_folder}")
        assert str(data.cache).startswith(str(own_cache))
        assert sorted(p.name for p in image_folder.iterdir()) == ["cat", "dog", "frog"]
    finally:
        for path in [image_folder, *image_folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    with pytest.raises(DataError, match="cannot write the data cache folder /proc/effnas"):
        load_data(f"folder:{image_folder}:cache=/proc/effnas")


def test_no_disk_space_is_one_line_with_the_size_and_leaves_nothing(
        image_folder: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = build.shutil.disk_usage

    def tiny(path: object) -> object:
        return real(path)._replace(free=1000)  # type: ignore[arg-type]

    monkeypatch.setattr(build.shutil, "disk_usage", tiny)
    message = _refused("not enough disk space for the data cache", f"folder:{image_folder}",
                       own_cache)
    assert "it needs 21.6 kB, 1.0 kB is free" in message
    monkeypatch.setattr(build.shutil, "disk_usage", real)

    def full(chunk: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build, "decode_chunk", full)
    _refused("not enough disk space for the data cache", f"folder:{image_folder}", own_cache)
