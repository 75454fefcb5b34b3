"""A picture of the built-in data set's variants: one image per class of each variant at its
native 64 px and resized to 32 px (what a half-resolution proxy or progressive learning's
first stage sees).

``python bench/synthetic_variants.py --out bench/results/synthetic_variants.png``
"""

from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from proxy_train.data import load_data  # noqa: E402
from proxy_train.datasets.synthetic import VARIANTS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rows = [(v, size) for v in VARIANTS for size in (64, 32)]
    fig, axes = plt.subplots(len(rows), args.classes, figsize=(1.5 * args.classes, 1.6 * len(rows)))
    for r, (variant, size) in enumerate(rows):
        data = load_data(f"synthetic:variant={variant},classes={args.classes},per_class=2,"
                         "test_per_class=0", seed=args.seed)
        for c in range(args.classes):
            image = data.train.images[int((data.train.labels == c).nonzero()[0])]
            if size != data.resolution:
                image = F.interpolate(image[None].float(), size=size, mode="bilinear",
                                      antialias=True)[0].round().clamp(0, 255).byte()
            ax = axes[r, c]
            ax.imshow(image.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(data.class_names[c], fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{variant}\n{size} px", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
