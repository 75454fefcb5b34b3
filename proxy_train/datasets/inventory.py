"""What an image source lists before anything is decoded: one item and one label per row.

Rows run training first, then test (``train_rows`` says where the test split starts). An
item is ``(path, group, row)``: an image file (``group`` -1), or row ``row`` of row group
``group`` of a Parquet file. The fingerprint hashes every item with its file's size and
modification time, so a file added, removed or rewritten changes it; it is what a decoded
cache is checked against.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

Item = tuple[str, int, int]
CROP_RULE = "centre square crop, Pillow bicubic resize (antialiased)"
"""How every cached image is made square (recorded in each cache's manifest)."""


@dataclass(frozen=True, slots=True)
class Inventory:
    """The rows a source will decode (after class and per-class selection)."""

    name: str
    """``kind:root``, as the data set is named in records."""
    kind: str
    root: str
    class_names: tuple[str, ...]
    items: list[Item]
    labels: np.ndarray
    train_rows: int
    fingerprint: str
    selection: str
    """What chose the rows besides the source itself (classes, per-class cap, columns):
    part of the cache's name, so each selection has a cache of its own."""
    notes: tuple[str, ...] = ()
    """Lines to tell the user (files that were ignored, and why)."""

    def __len__(self) -> int:
        return len(self.items)

    def display(self, item: Item) -> str:
        """How an error names one row."""
        path, group, row = item
        return path if group < 0 else f"{path} row group {group} row {row}"


def fingerprint(entries: list[str]) -> str:
    """A short hash of ``entries`` (one line per row and whatever else decides the rows)."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(entry.encode("utf-8", "surrogateescape"))
        digest.update(b"\n")
    return digest.hexdigest()[:32]


__all__ = ["CROP_RULE", "Inventory", "Item", "fingerprint"]
