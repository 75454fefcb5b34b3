"""Image folders: ``root/<class>/**/*.jpg`` (classes sorted by name), or ``root/train/<class>``
with ``root/val`` (or ``root/test``, ``root/validation``) as the test split.

Scanning lists files and their sizes and times, nothing more; images are decoded into the
cache (:mod:`proxy_train.cache`). Images anywhere below a class folder belong to it (symbolic
links are followed; a link that leads back into its own path is refused). Hidden files and
files without an image suffix are skipped and counted in a note. Refused, in one line each:
a missing root, no class folders, a class folder without images, a chosen class with fewer
than two training images (minival needs one, training one), test classes the training split
does not have, a symbolic link loop.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from proxy_train.datasets.inventory import Inventory, Item, fingerprint
from proxy_train.datasets.select import cap_per_class, select_classes
from proxy_train.errors import DataError
from search_space.messages import counted

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
TEST_DIRS: tuple[str, ...] = ("val", "test", "validation")
SELECTION_SEED = 0
"""The per-class cap's choice does not depend on a run's seed: every run with the same
options decodes (and caches) the same images."""


def _class_dirs(root: Path) -> list[Path]:
    try:
        dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.name)
    except OSError as exc:
        raise DataError(f"{root}: cannot list this folder ({exc.strerror})") from None
    if not dirs:
        raise DataError(f"{root}: no class folders; expected root/<class_name>/*.jpg "
                        f"(images {', '.join(IMAGE_SUFFIXES)})")
    return dirs


class _Walk:
    """Image files below one class folder, with the files it skipped."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []  # (path, "size mtime")
        self.skipped: list[str] = []

    def visit(self, folder: Path, ancestors: tuple[tuple[int, int], ...]) -> None:
        here = os.stat(folder)
        key = (here.st_dev, here.st_ino)
        if key in ancestors:
            raise DataError(f"{folder}: symbolic link loop (it leads back to a folder above "
                            "it); remove the link, or point it at a folder outside the data")
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
                stat = entry.stat() if is_file else None
            except OSError as exc:
                raise DataError(f"{entry.path}: {exc.strerror or exc} (a symbolic link loop "
                                "or an unreadable entry); remove it or fix the link") from None
            if is_dir:
                self.visit(Path(entry.path), (*ancestors, key))
            elif stat is not None and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                self.found.append((entry.path, f"{stat.st_size} {stat.st_mtime_ns}"))
            else:
                self.skipped.append(entry.path)


def _scan(root: Path, names: tuple[str, ...], chosen: list[int], known: tuple[str, ...] | None,
          skipped: list[str]) -> tuple[list[tuple[str, str]], list[int]]:
    """(file, stamp) and label rows of the chosen classes below ``root``."""
    files: list[tuple[str, str]] = []
    labels: list[int] = []
    for label, index in enumerate(chosen):
        folder = root / names[index]
        if known is not None and not folder.is_dir():
            continue  # a test split may lack a class
        walk = _Walk()
        walk.visit(folder, ())
        skipped += walk.skipped
        if not walk.found:
            raise DataError(f"{folder}: class folder has no images (expected files ending in "
                            f"{', '.join(IMAGE_SUFFIXES)}); remove it, or leave it out with "
                            "the option classes=...")
        files += walk.found
        labels += [label] * len(walk.found)
    return files, labels


def _check_counts(labels: np.ndarray, names: list[str], where: Path) -> None:
    counts = np.bincount(labels, minlength=len(names))
    for name, count in zip(names, counts):
        if count < 2:
            raise DataError(f"{where / name}: class has {counted(int(count), 'training image')}; every class "
                            "needs at least 2 (one for minival, one for training); add images "
                            "or leave it out with the option classes=...")


def scan_folder(path: str, *, classes: object, per_class: int | None) -> Inventory:
    """List the rows of the image folder ``path`` (see the module docstring)."""
    root = Path(path).expanduser().absolute()
    if not root.exists():
        hint = " (options follow the path after ':', e.g. folder:PATH:per_class=2)" \
            if "," in str(root) else ""
        raise DataError(f"{root}: folder not found{hint}")
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of class folders, got a file")
    train_root, test_root = root, None
    if (root / "train").is_dir():
        train_root = root / "train"
        test_root = next((root / d for d in TEST_DIRS if (root / d).is_dir()), None)
    names = tuple(d.name for d in _class_dirs(train_root))
    chosen = select_classes(names, classes, f"folder:{root}")
    chosen_names = [names[i] for i in chosen]
    skipped: list[str] = []
    files, label_list = _scan(train_root, names, chosen, None, skipped)
    labels = np.asarray(label_list, dtype=np.int64)
    index = np.arange(len(files))
    if per_class is not None:
        index, labels = cap_per_class(index, labels, per_class,
                                      np.random.default_rng(SELECTION_SEED))
    _check_counts(labels, chosen_names, train_root)
    rows = [files[i] for i in index]
    test_labels: np.ndarray = np.zeros(0, dtype=np.int64)
    if test_root is not None:
        extra = sorted({d.name for d in _class_dirs(test_root)} - set(names))
        if extra:
            raise DataError(f"{test_root}: class folders {extra} are not in the training split")
        test_files, test_list = _scan(test_root, names, chosen, names, skipped)
        rows += test_files
        test_labels = np.asarray(test_list, dtype=np.int64)
    items: list[Item] = [(file, -1, 0) for file, _ in rows]
    stamps = [f"{os.path.relpath(file, root)} {stamp}" for file, stamp in rows]
    selection = f"classes={chosen_names if classes is not None else 'all'} per_class={per_class}"
    return Inventory(
        name=f"folder:{root}", kind="folder", root=str(root), class_names=tuple(chosen_names),
        items=items, labels=np.concatenate([labels, test_labels]), train_rows=len(labels),
        fingerprint=fingerprint([selection, *chosen_names, str(len(labels)), *stamps]),
        selection=selection, notes=_skipped_note(skipped))


def _skipped_note(skipped: list[str]) -> tuple[str, ...]:
    if not skipped:
        return ()
    shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
    kinds = sorted({Path(s).suffix.lower() or "(no suffix)" for s in skipped})[:6]
    return (f"skipped {counted(len(skipped), 'file')} not named as an image "
            f"({', '.join(kinds)}): {shown}; images end in {', '.join(IMAGE_SUFFIXES)}",)


__all__ = ["IMAGE_SUFFIXES", "TEST_DIRS", "scan_folder"]
