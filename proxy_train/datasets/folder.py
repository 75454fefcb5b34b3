"""Image folders: ``root/<class>/*.jpg`` (classes sorted by name), or ``root/train/<class>``
with ``root/val`` (or ``root/test``) as the test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from proxy_train.datasets.base import Pool, RawSource
from proxy_train.datasets.images import decode_payloads, default_resolution
from proxy_train.errors import DataError

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
TEST_DIRS: tuple[str, ...] = ("val", "test", "validation")


def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)
    if not dirs:
        raise DataError(f"{root}: no class folders; expected root/<class_name>/*.jpg "
                        f"(images {', '.join(IMAGE_SUFFIXES)})")
    return dirs


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _scan(root: Path, known: tuple[str, ...] | None) -> tuple[tuple[str, ...], list[Path], np.ndarray]:
    """List (file, label) rows; ``known`` maps a test split's folders onto the train classes."""
    dirs = _class_dirs(root)
    names = tuple(d.name for d in dirs)
    if known is not None:
        extra = sorted(set(names) - set(known))
        if extra:
            raise DataError(f"{root}: class folders {extra} are not in the training split")
    files: list[Path] = []
    labels: list[int] = []
    for folder in dirs:
        found = _images_in(folder)
        if not found:
            raise DataError(f"{folder}: class folder has no images "
                            f"(expected files ending in {', '.join(IMAGE_SUFFIXES)})")
        label = (known or names).index(folder.name)
        files += found
        labels += [label] * len(found)
    return names, files, np.asarray(labels, dtype=np.int64)


def _pool(files: list[Path], labels: np.ndarray, resolution: int) -> Pool:
    def decode(index: np.ndarray) -> torch.Tensor:
        chosen = [str(files[i]) for i in index]
        return decode_payloads(chosen, chosen, resolution)

    return Pool(labels=labels, decode=decode)


def load_folder(path: str, *, resolution: int | None) -> RawSource:
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of class folders, got a file")
    train_root, test_root = root, None
    if (root / "train").is_dir():
        train_root = root / "train"
        test_root = next((root / d for d in TEST_DIRS if (root / d).is_dir()), None)
    names, files, labels = _scan(train_root, None)
    size = resolution or default_resolution(str(files[0]), str(files[0]))
    test = None
    if test_root is not None:
        _, test_files, test_labels = _scan(test_root, names)
        test = _pool(test_files, test_labels, size)
    return RawSource(name=f"folder:{root}", class_names=names,
                     train=_pool(files, labels, size), test=test)
