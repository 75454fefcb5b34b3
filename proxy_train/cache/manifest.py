"""The small record beside a cache's images: what it holds and how it was made.

A finished cache folder holds ``images.u8`` (uint8 ``[rows, 3, R, R]``, C order, no header:
any reader can map it), ``labels.npy`` (int64 per row; -1 for an image that could not be
decoded) and ``manifest.json`` (this record). The manifest is written last, and the folder is
renamed into place only after that, so a folder with a manifest is a finished cache.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from proxy_train.cache.location import FORMAT_VERSION
from proxy_train.files import atomic_write

MANIFEST = "manifest.json"
IMAGES = "images.u8"
LABELS = "labels.npy"


@dataclass(frozen=True, slots=True)
class Manifest:
    source: str
    """The source's name (``folder:/data/imagenet``)."""
    fingerprint: str
    """Of the rows it was built from (:func:`proxy_train.datasets.inventory.fingerprint`)."""
    resolution: int
    crop: str
    class_names: list[str]
    rows: int
    train_rows: int
    """Rows ``0 .. train_rows`` are the training split, the rest the test split."""
    selection: str
    bad: int = 0
    """Images that could not be decoded (label -1)."""
    bad_examples: list[str] = field(default_factory=list)
    build_s: float = 0.0
    created: str = ""
    format: int = FORMAT_VERSION

    @property
    def image_bytes(self) -> int:
        return self.rows * 3 * self.resolution * self.resolution

    def write(self, folder: Path) -> None:
        text = json.dumps(asdict(self), indent=1).encode()
        atomic_write(folder / MANIFEST, lambda fh: fh.write(text))

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        """The manifest of ``folder``, or None if there is none (or it is of another format
        or unreadable: then the cache is built again)."""
        try:
            values: dict[str, Any] = json.loads((folder / MANIFEST).read_text("utf-8"))
            manifest = cls(**values)
        except (OSError, ValueError, TypeError):
            return None
        return manifest if manifest.format == FORMAT_VERSION else None


def size_text(size: float) -> str:
    """``1.2 GB``-style sizes (decimal units, as disk tools print)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


__all__ = ["IMAGES", "LABELS", "MANIFEST", "Manifest", "size_text"]
