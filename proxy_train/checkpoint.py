"""The state of a training run between two epochs, and its file.

:class:`TrainState` is everything ``proxy_train.loop.train`` needs to continue a run exactly
where it was: the weights, the EMA, the optimizer and grad-scaler state, the result so far,
the stage, and every random state (torch's global generator, which dropout and stochastic
depth draw from; the CUDA generator; the generator of the data order; the augmenter's
generators). The loop hands one out after every epoch; a run resumed from it draws the same
batches, crops and masks an uninterrupted run would have drawn.

The file is ``torch.save`` of a plain dict of tensors, numbers and strings (it loads with
``weights_only=True``), written atomically: a crash while writing leaves the previous
checkpoint whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from proxy_train.errors import DataError
from proxy_train.files import atomic_write, load_torch_file

FORMAT = "effnas.checkpoint"
VERSION = 1


@dataclass(frozen=True)
class TrainState:
    """A training run between two epochs (see the module docstring)."""

    progress: dict[str, Any]
    """``TrainResult.to_dict()`` after the last finished epoch."""
    stage: int
    """0-based stage of that epoch (the augmenter state belongs to it)."""
    model: dict[str, torch.Tensor]
    ema: dict[str, Any] | None
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    torch_rng: torch.Tensor
    cuda_rng: torch.Tensor | None
    shuffle: torch.Tensor
    augment: dict[str, Any]

    @property
    def epochs_run(self) -> int:
        return int(self.progress["epochs_run"])


def save_checkpoint(path: str | os.PathLike[str], state: TrainState,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write ``state`` (and JSON-able ``meta``) to ``path`` atomically."""
    fields_ = {f.name: getattr(state, f.name) for f in fields(TrainState)}  # no deep copy
    payload = {"format": FORMAT, "version": VERSION, "meta": dict(meta or {}), **fields_}
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[TrainState, dict[str, Any]]:
    """Read a checkpoint: ``(state, meta)``. A corrupt or foreign file raises ``DataError``."""
    source = Path(path)
    payload = load_torch_file(source, kind="checkpoint", file_format=FORMAT, version=VERSION)
    try:
        state = TrainState(**{f.name: payload[f.name] for f in fields(TrainState)})
    except KeyError as exc:
        raise DataError(f"{source}: malformed checkpoint (no {exc})") from None
    return state, dict(payload.get("meta") or {})


__all__ = ["TrainState", "load_checkpoint", "save_checkpoint"]
