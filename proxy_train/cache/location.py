"""Where decoded caches live, and the name of each one.

The folder is, first that is set: the source option ``cache=DIR``, the environment variable
``EFFNAS_CACHE``, ``$XDG_CACHE_HOME/effnas``, ``~/.cache/effnas``. Never the run folder: a
cache serves every run, ``nas-train`` and ``nas-validate`` on the same data.

A cache's name says what it holds and is stable while the source changes, e.g.
``folder-imagenet-128px-3fa2b9c1d2e4``: the kind, the source folder's name, the resolution, and
a hash of the source's path, the selection (classes, per-class cap, columns), the crop rule
and the format version. The source's *contents* are checked against the fingerprint in the
manifest, so a changed source rebuilds the same name instead of leaving an old cache behind.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from proxy_train.datasets.inventory import CROP_RULE, Inventory

CACHE_ENV = "EFFNAS_CACHE"
FORMAT_VERSION = 1


def cache_root(option: str | None = None) -> Path:
    """The folder caches live in (see the module docstring)."""
    if option:
        return Path(option).expanduser().absolute()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base.absolute() / "effnas"


def cache_name(inventory: Inventory, resolution: int) -> str:
    """The cache's folder name for ``inventory`` at ``resolution``."""
    key = "\n".join([str(FORMAT_VERSION), inventory.kind, inventory.root, inventory.selection,
                     str(resolution), CROP_RULE])
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(inventory.root).stem)[:40] or "data"
    return f"{inventory.kind}-{stem}-{resolution}px-{digest}"


__all__ = ["CACHE_ENV", "FORMAT_VERSION", "cache_name", "cache_root"]
