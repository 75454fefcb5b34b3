"""Writing the built-in set as an image folder on disk: data to try a folder source on.

``python -m proxy_train.datasets.example_folder OUT [--per-class N] [--test-per-class N]
[--classes K] [--seed S]`` writes ``OUT/train/<class>/*.jpg`` and ``OUT/val/<class>/*.jpg``:
the shapes and textures of :mod:`proxy_train.datasets.synthetic`, rendered at 160 px and
resized to a height drawn per image between 96 and 160 px and a random aspect ratio
(3:4 .. 4:3), like a folder of photos, saved as JPEG (quality 90). Class folders are named
``shape_texture``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from proxy_train.datasets.synthetic import CLASS_NAMES, render

SIZES = (96, 160)


def write_example_folder(out: str | Path, *, classes: int = 10, per_class: int = 100,
                         test_per_class: int = 20, seed: int = 0) -> Path:
    """Write the folder (see the module docstring); returns its root."""
    root = Path(out)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    for split, count in (("train", per_class), ("val", test_per_class)):
        for label in range(classes):
            folder = root / split / CLASS_NAMES[label].replace("/", "_")
            folder.mkdir(parents=True, exist_ok=True)
            for start in range(0, count, 128):  # rendered in batches at the largest size
                part = min(128, count - start)
                images = render(torch.full((part,), label), SIZES[1], generator)
                for i, image in enumerate(images):
                    _save(image, rng, folder / f"{split}_{label:02d}_{start + i:06d}.jpg")
    return root


def _save(image: torch.Tensor, rng: np.random.Generator, path: Path) -> None:
    """Resize to a drawn size and aspect ratio, save as JPEG."""
    height = int(rng.integers(SIZES[0], SIZES[1] + 1))
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    picture = Image.fromarray(image.permute(1, 2, 0).numpy())
    picture = picture.resize((int(height * aspect), height), Image.Resampling.BICUBIC)
    picture.save(path, quality=90)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = write_example_folder(args.out, classes=args.classes, per_class=args.per_class,
                                test_per_class=args.test_per_class, seed=args.seed)
    total = args.classes * (args.per_class + args.test_per_class)
    print(f"wrote {total:,} JPEG images in {args.classes} classes to {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
