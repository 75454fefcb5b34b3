"""What every data source hands to :func:`proxy_train.data.load_data`.

A source first lists its rows (labels only, cheap) and a ``decode`` callable that turns a set
of row indices into a uint8 tensor ``[n, 3, R, R]``. Selection (classes, per-class caps) runs on
the labels, so a slice of a large folder decodes only the files it keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from proxy_train.errors import DataError


@dataclass(frozen=True, slots=True)
class Pool:
    """One split before decoding: a label per row and a decoder for chosen rows."""

    labels: np.ndarray
    decode: Callable[[np.ndarray], torch.Tensor]


@dataclass(frozen=True, slots=True)
class RawSource:
    name: str
    class_names: tuple[str, ...]
    train: Pool
    test: Pool | None


def resize_square(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize a uint8 ``[n, 3, H, W]`` batch to ``resolution`` (center crop to square first)."""
    h, w = images.shape[-2:]
    side = min(h, w)
    if h != w:
        top, left = (h - side) // 2, (w - side) // 2
        images = images[..., top : top + side, left : left + side]
    if side == resolution:
        return images.contiguous()
    out = []
    for chunk in images.split(4096):  # bounded float memory for large sets
        x = F.interpolate(chunk.float(), size=(resolution, resolution), mode="bilinear",
                          antialias=True, align_corners=False)
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out) if out else images.new_zeros((0, 3, resolution, resolution))


def array_pool(images: torch.Tensor, labels: np.ndarray, resolution: int) -> Pool:
    """A pool over images already in memory (uint8 ``[n, 3, H, W]``)."""

    def decode(index: np.ndarray) -> torch.Tensor:
        return resize_square(images[torch.as_tensor(index, dtype=torch.long)], resolution)

    return Pool(labels=np.asarray(labels, dtype=np.int64), decode=decode)


def parse_options(text: str, where: str, allowed: Sequence[str]) -> dict[str, str]:
    """Parse ``key=value`` pairs separated by ``,`` or ``&`` (``where`` names the source)."""
    options: dict[str, str] = {}
    for part in text.replace("&", ",").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise DataError(f"{where}: option {part!r} must look like key=value")
        if key not in allowed:
            raise DataError(f"{where}: unknown option {key!r}; expected one of {list(allowed)}")
        options[key] = value.strip()
    return options


def int_option(options: dict[str, str], key: str, where: str) -> int | None:
    if key not in options:
        return None
    try:
        return int(options[key])
    except ValueError:
        raise DataError(f"{where}: option {key}={options[key]!r} must be an integer") from None
