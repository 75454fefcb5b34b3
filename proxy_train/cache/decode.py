"""Turning one encoded image into the square uint8 ``[3, R, R]`` the cache stores.

Runs in the decoding processes, so it imports neither torch nor anything that does. Every
input Pillow opens becomes RGB the way a viewer shows it: EXIF orientation applied, grayscale
and CMYK converted, transparency composited over white, 16-bit samples scaled to 8 bits
(Pillow would clip them). Then the centre square is cut and resized to ``R`` with Pillow's
antialiased bicubic filter; JPEGs are first decoded at a reduced scale (libjpeg's DCT
scaling, ``Image.draft``) when the image is at least twice ``R``, which makes large photos
several times cheaper to decode and keeps the shorter side >= ``R``.

A chunk of rows is decoded into one buffer and written to the cache file at its place with
``pwrite``: the processes share nothing but the file.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Rows ``start .. start + len(items)`` of the cache file ``out``."""

    out: str
    start: int
    resolution: int
    items: list[tuple[str, int, int]]
    image_column: str | None = None
    """For Parquet items: the column that holds the encoded bytes."""


def to_rgb(image: Image.Image) -> Image.Image:
    """The RGB image a viewer would show for ``image`` (see the module docstring)."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in _SIXTEEN_BIT or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        peak = float(np.max(values)) if values.size else 0.0
        scale = 1.0 if image.mode == "F" or peak <= 255 else 1.0 / 257.0
        image = Image.fromarray(np.clip(values * scale + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("RGB")


def square(image: Image.Image, resolution: int) -> np.ndarray:
    """Centre square of ``image`` resized to ``resolution``: uint8 ``[3, R, R]``."""
    width, height = image.size
    if image.format == "JPEG" and min(width, height) >= 2 * resolution:
        scale = resolution / min(width, height)
        image.draft("RGB", (int(width * scale) + 1, int(height * scale) + 1))
    image.load()
    fitted = ImageOps.fit(to_rgb(image), (resolution, resolution),
                          method=Image.Resampling.BICUBIC)
    return np.asarray(fitted, dtype=np.uint8).transpose(2, 0, 1)


def decode_one(payload: str | bytes, resolution: int) -> np.ndarray:
    """Open a path or encoded bytes and make the cached square (raises on a bad image)."""
    with Image.open(io.BytesIO(payload) if isinstance(payload, bytes) else payload) as image:
        return square(image, resolution)


def payloads(chunk: Chunk) -> list[str | bytes | None]:
    """What to decode for each item: the file path, or the Parquet cell's bytes."""
    if chunk.image_column is None:
        return [path for path, _, _ in chunk.items]
    import pyarrow.parquet as pq

    out: list[str | bytes | None] = []
    cells: dict[tuple[str, int], list[object]] = {}
    for path, group, row in chunk.items:
        if (path, group) not in cells:
            table = pq.ParquetFile(path).read_row_group(group, columns=[chunk.image_column])
            cells[(path, group)] = table.column(0).to_pylist()
        cell = cells[(path, group)][row]
        out.append(cell.get("bytes") if isinstance(cell, dict) else cell)  # type: ignore[arg-type]
    return out


def decode_chunk(chunk: Chunk) -> list[tuple[int, str]]:
    """Decode ``chunk`` into its rows of the cache file; returns ``(row, reason)`` for every
    image that could not be decoded (its row stays zero)."""
    size = chunk.resolution
    buffer = np.zeros((len(chunk.items), 3, size, size), dtype=np.uint8)
    bad: list[tuple[int, str]] = []
    for i, payload in enumerate(payloads(chunk)):
        try:
            if payload is None:
                raise ValueError("empty cell")
            buffer[i] = decode_one(payload, size)
        except Exception as exc:  # noqa: BLE001 - any failure of one image is that image's
            first = str(exc).splitlines()[0] if str(exc) else ""
            bad.append((chunk.start + i, f"{type(exc).__name__}: {first}"[:200]))
    write_rows(chunk.out, chunk.start * 3 * size * size, buffer)
    return bad


def write_rows(path: str, offset: int, buffer: np.ndarray) -> None:
    """``pwrite`` all of ``buffer`` at ``offset`` of ``path``."""
    view = memoryview(buffer.tobytes() if not buffer.flags.c_contiguous else buffer.data).cast("B")
    fd = os.open(path, os.O_WRONLY)
    try:
        done = 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)
    finally:
        os.close(fd)


__all__ = ["Chunk", "decode_chunk", "decode_one", "payloads", "square", "to_rgb",
           "write_rows"]
