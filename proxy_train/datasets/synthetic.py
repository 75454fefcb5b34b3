"""The built-in synthetic data set: shapes filled with fine textures on noisy backgrounds.

Each class is one (shape, texture) pair, e.g. ``disc/hstripes``. A shape is drawn at a random
position, size and rotation; its fill is a binary texture (horizontal, vertical, diagonal or
anti-diagonal stripes, or a checkerboard) with a random period of 3 to 5.5 pixels at the native
64 px, random phase and a small orientation jitter; colours, a background gradient and pixel
noise (sigma 10) are random too. Shapes span 26-36% of the image side around the centre
(an earlier, harder variant -- smaller shapes, sigma 16 -- was not learnable in a 3-epoch CPU
proxy). The default 10 classes are 5 shapes x {horizontal, vertical} stripes, so
half of the decision is a high-frequency texture: at a 32 px proxy resolution the shorter
periods fall below the Nyquist limit, so resolution (and the capacity to use it) is worth
accuracy, and the shapes at random scale/rotation need more than a linear model.

Rendering is vectorised torch on the CPU (one thread) and deterministic for a seed: 2,000
images at 64 px take ~0.3 s of CPU time.

**Variants** (``variant=``). ``stripes`` (the default, described above): the texture's period is
fixed in pixels, so it says how much a resolution (and a model's capacity to use it) is worth,
but it vanishes at half size, where natural images keep most of their classes. ``objects``:
the class cues scale with the object, as in photographs: the object's size varies more (16-34%
of the side), its stripes' period is 45-65% of its radius (about 4.5-14 px at 64 px, so at half
size they stay above the Nyquist limit), up to three small plain shapes of other colours clutter
the background, and half of the images have a bar drawn across the object that hides part of
it. Classes, colours, noise and the class table are the same in both. ``nas-search`` and
``nas-train`` use ``objects`` unless told (``proxy_train.datasets.sources.BUILT_IN_DATA``);
``stripes`` stays this module's default so that runs recorded as ``synthetic`` keep their
images.

Options (``synthetic:key=value,...``): ``classes`` (1..40, default 10), ``per_class`` (training
images per class, default 150), ``test_per_class`` (default 200), ``resolution`` (native size in
pixels, default 64, >= 16), ``variant`` (``stripes`` or ``objects``, default ``stripes``) and
``seed`` (default: the ``seed`` given to ``load_data``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from proxy_train.datasets.base import Pool, RawSource, int_option, parse_options
from proxy_train.errors import DataError

SHAPES: tuple[str, ...] = ("disc", "square", "triangle", "ring", "cross",
                           "frame", "halfdisc", "ellipse")
TEXTURES: tuple[str, ...] = ("hstripes", "vstripes", "checker", "diagonal", "antidiagonal")
# Angle of each stripe texture's wave vector (hstripes vary along y).
_WAVE_ANGLE = {"hstripes": 90.0, "vstripes": 0.0, "checker": 0.0, "diagonal": 45.0,
               "antidiagonal": 135.0}
OPTIONS: tuple[str, ...] = ("classes", "per_class", "test_per_class", "resolution", "variant",
                            "seed")
VARIANTS: tuple[str, ...] = ("stripes", "objects")
DEFAULT_CLASSES = 10
DEFAULT_PER_CLASS = 150
DEFAULT_TEST_PER_CLASS = 200
DEFAULT_RESOLUTION = 64


def _class_table() -> tuple[tuple[int, int], ...]:
    """(shape, texture) per class id; pairs that differ only in texture come first."""
    table = []
    for shapes in (range(0, 5), range(5, 8)):
        for textures in ((0, 1), (2, 3), (4,)):
            table += [(s, t) for s in shapes for t in textures]
    return tuple(table)


CLASS_TABLE = _class_table()
MAX_CLASSES = len(CLASS_TABLE)
CLASS_NAMES: tuple[str, ...] = tuple(f"{SHAPES[s]}/{TEXTURES[t]}" for s, t in CLASS_TABLE)


def _shape_mask(shape: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside test for a unit-size shape in its own rotated frame (u, v)."""
    r = torch.sqrt(u * u + v * v)
    box = torch.maximum(u.abs(), v.abs())
    if shape == "disc":
        return r < 1.0
    if shape == "square":
        return box < 0.8
    if shape == "triangle":
        inside = torch.ones_like(u, dtype=torch.bool)
        for angle in (90.0, 210.0, 330.0):
            a = math.radians(angle)
            inside &= u * math.cos(a) + v * math.sin(a) < 0.55
        return inside
    if shape == "ring":
        return (r < 1.0) & (r > 0.55)
    if shape == "cross":
        return ((u.abs() < 0.33) & (v.abs() < 1.0)) | ((v.abs() < 0.33) & (u.abs() < 1.0))
    if shape == "frame":
        return (box < 0.9) & (box > 0.5)
    if shape == "halfdisc":
        return (r < 1.0) & (v > -0.1)
    if shape == "ellipse":
        return u * u + 4.0 * v * v < 1.0
    raise AssertionError(shape)


def _texture(texture: str, x: torch.Tensor, y: torch.Tensor, angle: torch.Tensor,
             period: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    a = torch.deg2rad(angle)
    along = x * torch.cos(a) + y * torch.sin(a)
    wave = torch.sin(2 * math.pi * along / period + phase)
    if texture == "checker":
        across = -x * torch.sin(a) + y * torch.cos(a)
        wave = wave * torch.sin(2 * math.pi * across / period + 1.3 * phase)
    return wave > 0


def render(labels: torch.Tensor, resolution: int, generator: torch.Generator,
           variant: str = "stripes") -> torch.Tensor:
    """Draw one image per label: uint8 ``[n, 3, resolution, resolution]``."""
    # Chunks of 128 images keep the temporaries in cache (~6x faster than one big batch), and
    # one thread is enough for such small ops: with more, OpenMP's spinning threads made it
    # 10x slower whenever anything else was using the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        chunks = [_render_chunk(part, resolution, generator, variant)
                  for part in labels.split(128)]
    finally:
        torch.set_num_threads(threads)
    return torch.cat(chunks) if chunks else torch.zeros((0, 3, resolution, resolution),
                                                        dtype=torch.uint8)


@dataclass(frozen=True, slots=True)
class _Geometry:
    """Where each image's object lies and how its texture runs (one row per image)."""

    u: torch.Tensor
    v: torch.Tensor
    radius: torch.Tensor
    jitter: torch.Tensor
    period: torch.Tensor
    phase: torch.Tensor


def _render_chunk(labels: torch.Tensor, resolution: int, generator: torch.Generator,
                  variant: str) -> torch.Tensor:
    n, size = labels.numel(), resolution
    scale = size / DEFAULT_RESOLUTION
    objects = variant == "objects"

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand((n, *shape), generator=generator)

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    cx, cy = uniform(0.36, 0.64, 1, 1) * size, uniform(0.36, 0.64, 1, 1) * size
    radius = uniform(*((0.16, 0.34) if objects else (0.26, 0.36)), 1, 1) * size
    theta = uniform(0.0, 2 * math.pi, 1, 1)
    u = (torch.cos(theta) * (x - cx) + torch.sin(theta) * (y - cy)) / radius
    v = (-torch.sin(theta) * (x - cx) + torch.cos(theta) * (y - cy)) / radius
    jitter = uniform(-12.0, 12.0, 1, 1)
    period = (uniform(0.45, 0.65, 1, 1) * radius if objects
              else uniform(3.0, 5.5, 1, 1) * scale)
    phase = uniform(0.0, 2 * math.pi, 1, 1)
    inside, stripe = _object_masks(labels, x, y, _Geometry(u, v, radius, jitter, period, phase))

    # Shape and background sit in opposite brightness halves so the shape is always visible;
    # the stripes are +-contrast around the shape colour, so mean colour says nothing of texture.
    bright = torch.rand((n, 1, 1, 1), generator=generator) < 0.5
    shape_base = torch.where(bright, uniform(150, 215, 3, 1, 1), uniform(45, 105, 3, 1, 1))
    background = torch.where(bright, uniform(0, 100, 3, 1, 1), uniform(155, 255, 3, 1, 1))
    contrast = uniform(30, 45, 1, 1, 1)
    fill = shape_base + torch.where(stripe.unsqueeze(1), contrast, -contrast)
    gx, gy = uniform(-30, 30, 1, 1, 1), uniform(-30, 30, 1, 1, 1)
    gradient = (gx * (x - size / 2) + gy * (y - size / 2)) / size
    image = background + gradient
    if objects:
        image = _clutter(image, x, y, size, uniform)
    image = torch.where(inside.unsqueeze(1), fill, image)
    if objects:
        image = _occlude(image, x, y, cx, cy, radius, background, uniform)
    image = image + 10.0 * torch.randn(image.shape, generator=generator)
    return image.round_().clamp_(0, 255).to(torch.uint8)


def _object_masks(labels: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                  g: _Geometry) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the object's pixels (its class's shape) and its texture's bright stripes."""
    n, size = labels.numel(), x.shape[-1]
    table = torch.tensor(CLASS_TABLE, dtype=torch.long)[labels]
    inside = torch.zeros((n, size, size), dtype=torch.bool)
    stripe = torch.zeros((n, size, size), dtype=torch.bool)
    for k, shape in enumerate(SHAPES):
        idx = (table[:, 0] == k).nonzero().flatten()
        if idx.numel():
            inside[idx] = _shape_mask(shape, g.u[idx], g.v[idx])
    for k, texture in enumerate(TEXTURES):
        idx = (table[:, 1] == k).nonzero().flatten()
        if idx.numel():
            angle = _WAVE_ANGLE[texture] + g.jitter[idx]
            stripe[idx] = _texture(texture, x, y, angle, g.period[idx], g.phase[idx])
    return inside, stripe


def _clutter(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: int,
             uniform: Callable[..., torch.Tensor]) -> torch.Tensor:
    """Up to three small, plain (untextured) shapes of random colours anywhere in the image."""
    for _ in range(3):
        present = uniform(0.0, 1.0, 1, 1) < 0.67
        cx, cy = uniform(0.05, 0.95, 1, 1) * size, uniform(0.05, 0.95, 1, 1) * size
        radius = uniform(0.05, 0.11, 1, 1) * size
        theta = uniform(0.0, 2 * math.pi, 1, 1)
        kind = (uniform(0.0, 1.0) * len(SHAPES)).long().clamp_(max=len(SHAPES) - 1)
        colour = uniform(0, 255, 3, 1, 1)
        u = (torch.cos(theta) * (x - cx) + torch.sin(theta) * (y - cy)) / radius
        v = (-torch.sin(theta) * (x - cx) + torch.cos(theta) * (y - cy)) / radius
        mask = torch.zeros_like(u, dtype=torch.bool)
        for k, shape in enumerate(SHAPES):
            idx = (kind == k).nonzero().flatten()
            if idx.numel():
                mask[idx] = _shape_mask(shape, u[idx], v[idx])
        image = torch.where((mask & present).unsqueeze(1), colour, image)
    return image


def _occlude(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor, cx: torch.Tensor,
             cy: torch.Tensor, radius: torch.Tensor, background: torch.Tensor,
             uniform: Callable[..., torch.Tensor]) -> torch.Tensor:
    """In half of the images, a bar of the background's colour across the object (a third to
    a half of its radius wide, through a point within half its radius of its centre)."""
    present = uniform(0.0, 1.0, 1, 1) < 0.5
    angle = uniform(0.0, math.pi, 1, 1)
    px = cx + uniform(-0.5, 0.5, 1, 1) * radius
    py = cy + uniform(-0.5, 0.5, 1, 1) * radius
    width = uniform(0.33, 0.5, 1, 1) * radius
    across = (x - px) * -torch.sin(angle) + (y - py) * torch.cos(angle)
    bar = (across.abs() < width / 2) & present
    shade = background + uniform(-20, 20, 1, 1, 1)
    return torch.where(bar.unsqueeze(1), shade, image)


def load_synthetic(options_text: str, *, seed: int, classes: int | None,
                   per_class: int | None, resolution: int | None) -> RawSource:
    """Render the synthetic set. Integer ``classes``/``per_class``/``resolution`` arguments
    override the options in the source string."""
    where = f"synthetic:{options_text}" if options_text else "synthetic"
    options = parse_options(options_text, where, OPTIONS)
    num_classes = classes if classes is not None else int_option(options, "classes", where)
    num_classes = DEFAULT_CLASSES if num_classes is None else num_classes
    train_n = per_class if per_class is not None else int_option(options, "per_class", where)
    train_n = DEFAULT_PER_CLASS if train_n is None else train_n
    test_n = int_option(options, "test_per_class", where)
    test_n = DEFAULT_TEST_PER_CLASS if test_n is None else test_n
    size = resolution if resolution is not None else int_option(options, "resolution", where)
    size = DEFAULT_RESOLUTION if size is None else size
    data_seed = int_option(options, "seed", where)
    data_seed = seed if data_seed is None else data_seed
    variant = options.get("variant", "stripes")
    if variant not in VARIANTS:
        raise DataError(f"{where}: variant {variant!r} is not one of {list(VARIANTS)}")
    if not 1 <= num_classes <= MAX_CLASSES:
        raise DataError(f"{where}: classes {num_classes} not in 1..{MAX_CLASSES}")
    if train_n < 2:
        raise DataError(f"{where}: per_class {train_n} must be >= 2 (minival is carved from it)")
    if test_n < 0:
        raise DataError(f"{where}: test_per_class {test_n} must be >= 0")
    if size < 16:
        raise DataError(f"{where}: resolution {size} must be >= 16")

    def pool(count: int, stream: int) -> Pool:
        labels = torch.arange(num_classes).repeat_interleave(count)
        generator = torch.Generator().manual_seed(data_seed * 1_000_003 + stream)
        images = render(labels, size, generator, variant)

        def decode(index: np.ndarray) -> torch.Tensor:
            return images[torch.as_tensor(index, dtype=torch.long)]

        return Pool(labels=labels.numpy(), decode=decode)

    return RawSource(
        name=where,
        class_names=CLASS_NAMES[:num_classes],
        train=pool(train_n, 0),
        test=pool(test_n, 1) if test_n else None,
    )
