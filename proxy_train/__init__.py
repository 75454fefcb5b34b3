"""Proxy training: data sources, batched augmentation, recipes and the training loop.

Heavy modules (torch, kornia, Pillow) load on first use of a name below, so importing
``proxy_train.errors`` alone stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from proxy_train.errors import DataError, HardwareError, RecipeError

_LAZY = {
    "load_data": "proxy_train.data", "DataSplits": "proxy_train.data", "Split": "proxy_train.data",
    "Augmenter": "proxy_train.augment",
    "Recipe": "proxy_train.recipe",
    "train": "proxy_train.loop", "TrainResult": "proxy_train.records",
}

__all__ = ["DataError", "HardwareError", "RecipeError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'proxy_train' has no attribute {name!r}")
