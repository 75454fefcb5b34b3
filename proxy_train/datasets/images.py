"""Decoding encoded images (JPEG, PNG, ...) with Pillow into square uint8 tensors."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from proxy_train.errors import DataError

DEFAULT_MAX_RESOLUTION = 128
"""Folder/Parquet images are resized to this unless a resolution is given (never upscaled
past the first image's shorter side)."""


def open_rgb(payload: bytes | str, name: str) -> Image.Image:
    """Open an image from bytes or a path; ``name`` is what an error message names."""
    try:
        image = Image.open(io.BytesIO(payload) if isinstance(payload, bytes) else payload)
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{name}: cannot decode image ({type(exc).__name__}: {exc}); "
                        "expected a JPEG, PNG, WebP or BMP file") from None
    return image.convert("RGB")


def default_resolution(payload: bytes | str, name: str) -> int:
    """The shorter side of the first image, capped at ``DEFAULT_MAX_RESOLUTION``."""
    return min(DEFAULT_MAX_RESOLUTION, min(open_rgb(payload, name).size))


def decode_many(count: int, load: Callable[[int], tuple[bytes | str, str]],
                resolution: int) -> torch.Tensor:
    """Decode ``count`` images (``load(i) -> (payload, name)``) into uint8 ``[count, 3, R, R]``:
    centre crop to a square, resize (bicubic, antialiased by Pillow)."""
    out = np.empty((count, resolution, resolution, 3), dtype=np.uint8)

    def one(i: int) -> None:
        payload, name = load(i)
        image = ImageOps.fit(open_rgb(payload, name), (resolution, resolution),
                             method=Image.Resampling.BICUBIC)
        out[i] = np.asarray(image)

    # Pillow releases the GIL while decoding, so threads help even on 2 cores.
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        list(pool.map(one, range(count)))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def decode_payloads(payloads: Sequence[bytes | str], names: Sequence[str],
                    resolution: int) -> torch.Tensor:
    return decode_many(len(payloads), lambda i: (payloads[i], names[i]), resolution)
