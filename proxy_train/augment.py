"""Batched augmentation on the training device (kornia), mixup and normalisation.

Why kornia: images live on the device as one uint8 tensor (see :mod:`proxy_train.data`), so
augmentation must run on whole batches there; per-image CPU pipelines (PIL / torchvision
transforms in data-loader workers) would be the bottleneck of a 10-epoch proxy run on a GPU
(and torchvision is not a dependency). kornia provides a batched RandAugment (15 ops) on any
device. The geometric part (random resized crop + horizontal flip) is a single
``affine_grid``/``grid_sample`` over the whole batch instead of kornia's
``RandomResizedCrop``, which crops image by image: on a 2-core CPU that was ~10x slower
(~65 ms vs ~8 ms for 64 images), and the one-kernel version also takes a ``torch.Generator``.

Training transform: random resized crop to the proxy resolution (area fraction ``crop_area``,
aspect 3/4..4/3, bilinear, as Inception/RandomResizedCrop), horizontal flip, RandAugment (``randaug_layers`` ops, ``randaug_magnitude`` on the
official 0..10 scale), normalisation ``(x - 128) / 128`` as in the official code, then mixup.
Evaluation: a plain bilinear resize of the whole image to the proxy resolution (no crop),
the same resampling as the training crop (as the official TF code, which does not antialias).

RandAugment magnitudes: the official code maps level ``m`` to ``m / 10`` of each op's maximum
(rotate 30 degrees, shear 0.3, ...); kornia maps ``m_k / 30``, so ``m_k = 3 m``. kornia requires
``m_k < 30``, so magnitudes above 9.67 saturate at 9.67. kornia draws one set of ops per call;
the batch is split into up to ``RANDAUG_GROUPS`` groups that each draw their own ops, so a
batch sees several op pairs as the per-image original does.

Seeding: the crop/flip parameters and mixup lambdas come from this augmenter's own
generators. kornia samples from torch's global generator and takes no ``torch.Generator``. Each
call therefore runs inside ``torch.random.fork_rng`` seeded from this augmenter's own numpy
generator: results depend only on ``seed`` and the call sequence, and the caller's global RNG
state is left untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from kornia.augmentation.auto import RandAugment

from proxy_train.errors import RecipeError

RANDAUG_GROUPS = 4
MAX_MAGNITUDE = 29.0 / 3.0


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (or float 0..255) images -> float ``(x - 128) / 128``."""
    return (images.float() - 128.0) / 128.0


class Augmenter:
    """Seeded batched augmentation: ``aug(images_uint8, labels, num_classes)`` ->
    ``(float images [B, 3, R, R], soft targets [B, num_classes])``; ``aug.eval(images)``."""

    def __init__(self, resolution: int, randaug_magnitude: float = 0, randaug_layers: int = 2,
                 mixup_alpha: float = 0.0, seed: int = 0,
                 crop_area: tuple[float, float] = (0.08, 1.0)) -> None:
        if resolution < 8:
            raise RecipeError(f"resolution {resolution} must be >= 8")
        if randaug_magnitude < 0:
            raise RecipeError(f"randaug_magnitude {randaug_magnitude} must be >= 0")
        if not 1 <= randaug_layers <= 15:
            raise RecipeError(f"randaug_layers {randaug_layers} not in 1..15")
        if mixup_alpha < 0:
            raise RecipeError(f"mixup_alpha {mixup_alpha} must be >= 0")
        if not 0.0 < crop_area[0] <= crop_area[1] <= 1.0:
            raise RecipeError(f"crop_area {crop_area} must satisfy 0 < low <= high <= 1")
        self.resolution = resolution
        self.randaug_magnitude = float(randaug_magnitude)
        self.mixup_alpha = float(mixup_alpha)
        self.seed = seed
        self.crop_area = crop_area
        self._rng = np.random.default_rng(seed)
        self._generator = torch.Generator().manual_seed(seed)
        self._randaug = None
        if randaug_magnitude > 0:
            kornia_m = 3.0 * min(float(randaug_magnitude), MAX_MAGNITUDE)
            self._randaug = RandAugment(n=randaug_layers, m=kornia_m)  # type: ignore[arg-type]

    def __call__(self, images: torch.Tensor, labels: torch.Tensor,
                 num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._crop_flip(images.float().div_(255.0))  # kornia's colour ops expect [0, 1]
        if self._randaug is not None:
            devices = [x.device] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(int(self._rng.integers(2**62)))
                groups = x.split(max(1, -(-x.shape[0] // RANDAUG_GROUPS)))
                x = torch.cat([self._randaug(g) for g in groups])
        x = (x.clamp_(0.0, 1.0) * 255.0 - 128.0) / 128.0
        targets = F.one_hot(labels.long(), num_classes).to(x.dtype)
        if self.mixup_alpha > 0:
            x, targets = self._mixup(x, targets)
        return x, targets

    def _crop_flip(self, x: torch.Tensor) -> torch.Tensor:
        """Random resized crop + horizontal flip as one affine resampling of the batch."""
        n, g = x.shape[0], self._generator
        low, high = self.crop_area
        area = low + (high - low) * torch.rand(n, generator=g)
        log_ratio = (2 * torch.rand(n, generator=g) - 1) * np.log(4 / 3)
        ratio = torch.exp(log_ratio)  # width / height of the crop
        # Crop sides as fractions of the image, clipped to fit (as torchvision's fallback does).
        width = torch.sqrt(area * ratio).clamp(max=1.0)
        height = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (1 - width) * (2 * torch.rand(n, generator=g) - 1)  # centre in [-1, 1] coords
        cy = (1 - height) * (2 * torch.rand(n, generator=g) - 1)
        flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = width * flip
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = height
        theta[:, 1, 2] = cy
        size = (n, x.shape[1], self.resolution, self.resolution)
        grid = F.affine_grid(theta.to(x.device, x.dtype), list(size), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)

    def _mixup(self, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample lambda ~ Beta(a, a), lambda = max(lambda, 1 - lambda), mixed with the
        reversed batch (as the official code does)."""
        draw = self._rng.beta(self.mixup_alpha, self.mixup_alpha, size=x.shape[0])
        lam = torch.as_tensor(np.maximum(draw, 1.0 - draw), dtype=x.dtype, device=x.device)
        mixed = lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * x.flip(0)
        soft = lam.view(-1, 1) * targets + (1 - lam.view(-1, 1)) * targets.flip(0)
        return mixed, soft

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        """The evaluation transform at this augmenter's resolution (:func:`eval_transform`)."""
        return eval_transform(images, self.resolution)

    def state_dict(self) -> dict[str, Any]:
        """The random state of both generators, so a resumed run draws what it would have."""
        return {"numpy": self._rng.bit_generator.state, "torch": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["numpy"]
        self._generator.set_state(state["torch"])


def eval_transform(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize the whole image to ``resolution`` and normalise.

    Plain bilinear, not antialiased, on purpose: it is exactly the resampling the training
    crop uses (``grid_sample``), so fine textures look the same in training and evaluation.
    An antialiased eval resize blurred them differently and cost ~15 points of minival
    accuracy on the built-in set."""
    x = images.float()
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear",
                          antialias=False, align_corners=False)
    return normalize(x)
