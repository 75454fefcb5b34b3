"""A trained model as one file: ``model.pt`` (final and EMA weights with the architecture).

The file is ``torch.save`` of a plain dict (tensors, strings and numbers only, so it loads
with ``torch.load(..., weights_only=True)``)::

    {"format": "effnas.model", "version": 1,
     "arch": "<canonical architecture string>", "num_classes": 10,
     "eval_size": 64,                       # image size the model is evaluated at
     "model": {state_dict of the final weights},
     "ema": {state_dict of the EMA weights} or None,
     "meta": {...}}                         # JSON-able provenance (recipe, data, metrics)

``search_space.model.build_model(decode(arch), num_classes=num_classes)`` builds the network
the state dicts belong to. Written atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from proxy_train.errors import DataError
from proxy_train.files import atomic_write, load_torch_file
from search_space.codec import decode, encode
from search_space.errors import SpecError
from search_space.model import build_model
from search_space.spec import ArchSpec

FORMAT = "effnas.model"
VERSION = 1
WEIGHTS: tuple[str, ...] = ("ema", "final")


@dataclass(frozen=True)
class TrainedModel:
    """The contents of a model file."""

    spec: ArchSpec
    num_classes: int
    eval_size: int
    model: Mapping[str, torch.Tensor]
    ema: Mapping[str, torch.Tensor] | None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def state_dict(self, weights: str = "ema") -> Mapping[str, torch.Tensor]:
        """The ``'ema'`` weights (the final ones where the file has no EMA) or ``'final'``."""
        if weights not in WEIGHTS:
            raise DataError(f"weights {weights!r} not in {WEIGHTS}")
        return self.ema if weights == "ema" and self.ema is not None else self.model

    def build(self, weights: str = "ema") -> nn.Module:
        """The network with the chosen weights loaded (``strict=True``), in eval mode."""
        model = build_model(self.spec, num_classes=self.num_classes)
        model.load_state_dict(dict(self.state_dict(weights)), strict=True)
        return model.eval()


def save_model(path: str | os.PathLike[str], spec: ArchSpec, *, num_classes: int,
               eval_size: int, model: Mapping[str, torch.Tensor],
               ema: Mapping[str, torch.Tensor] | None = None,
               meta: Mapping[str, Any] | None = None) -> Path:
    """Write a model file atomically; returns its path."""
    target = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "arch": encode(spec),
               "num_classes": int(num_classes), "eval_size": int(eval_size),
               "model": {k: v.detach().cpu() for k, v in model.items()},
               "ema": None if ema is None else {k: v.detach().cpu() for k, v in ema.items()},
               "meta": dict(meta or {})}
    atomic_write(target, lambda handle: torch.save(payload, handle))
    return target


def load_model(path: str | os.PathLike[str]) -> TrainedModel:
    """Read a model file; a missing, corrupt or foreign file raises ``DataError``."""
    source = Path(path)
    if source.is_dir():
        source = source / "model.pt"
    payload = load_torch_file(source, kind="model file", file_format=FORMAT, version=VERSION)
    try:
        spec = decode(str(payload["arch"]))
        return TrainedModel(spec=spec, num_classes=int(payload["num_classes"]),
                            eval_size=int(payload["eval_size"]), model=payload["model"],
                            ema=payload.get("ema"), meta=payload.get("meta") or {})
    except (KeyError, TypeError, ValueError, SpecError) as exc:
        raise DataError(f"{source}: malformed model file ({exc})") from None


__all__ = ["FORMAT", "VERSION", "WEIGHTS", "TrainedModel", "load_model", "save_model"]
