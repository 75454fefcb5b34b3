"""Contracts of the batched augmentation: shapes, normalisation, seeding and mixup targets."""

from __future__ import annotations

import pytest
import torch

from proxy_train.augment import Augmenter, normalize
from proxy_train.errors import RecipeError


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 40, 40), dtype=torch.uint8, generator=g)
    labels = torch.arange(16) % 5
    return images, labels


def test_shapes_dtypes_and_one_hot_targets(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = batch
    x, y = Augmenter(24, seed=0)(images, labels, 5)
    assert x.shape == (16, 3, 24, 24) and x.dtype == torch.float32
    assert y.shape == (16, 5) and torch.equal(y.argmax(1), labels)
    assert torch.equal(y.sum(1), torch.ones(16))
    assert float(x.min()) >= -1.0 and float(x.max()) <= 127 / 128
    assert images.dtype == torch.uint8  # input untouched


def test_normalisation_matches_official_formula() -> None:
    pixels = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    assert normalize(pixels).flatten().tolist() == [-1.0, 0.0, 127 / 128]


def test_constant_image_stays_constant() -> None:
    # Crop, resize and flip of a flat image must give the same flat image.
    images = torch.full((4, 3, 32, 32), 200, dtype=torch.uint8)
    x, _ = Augmenter(16, seed=3)(images, torch.zeros(4, dtype=torch.long), 2)
    assert torch.allclose(x, torch.full_like(x, (200 - 128) / 128), atol=1e-5)


def test_eval_resizes_whole_image() -> None:
    images = torch.zeros((2, 3, 32, 32), dtype=torch.uint8)
    images[:, :, :, 16:] = 255  # left half black, right half white
    x = Augmenter(8).eval(images)
    assert x.shape == (2, 3, 8, 8)
    # No crop: both halves are still there (the antialias filter blurs only the border).
    assert torch.allclose(x[..., :3], torch.tensor(-1.0))
    assert torch.allclose(x[..., 5:], torch.tensor(127 / 128))
    same = Augmenter(32).eval(images)
    assert torch.equal(same, normalize(images))


@pytest.mark.parametrize("magnitude,alpha", [(0, 0.0), (5, 0.2)])
def test_seeded_and_leaves_global_rng_alone(batch: tuple[torch.Tensor, torch.Tensor],
                                            magnitude: float, alpha: float) -> None:
    images, labels = batch
    a = Augmenter(24, randaug_magnitude=magnitude, mixup_alpha=alpha, seed=7)
    b = Augmenter(24, randaug_magnitude=magnitude, mixup_alpha=alpha, seed=7)
    c = Augmenter(24, randaug_magnitude=magnitude, mixup_alpha=alpha, seed=8)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = [a(images, labels, 5) for _ in range(2)]
    assert torch.equal(torch.rand(3), expected)  # the caller's RNG stream is untouched
    second = [b(images, labels, 5) for _ in range(2)]
    for (x1, y1), (x2, y2) in zip(first, second):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(first[0][0], first[1][0])  # successive batches differ
    assert not torch.equal(c(images, labels, 5)[0], first[0][0])


def test_randaug_runs_and_stays_in_range(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = batch
    plain, _ = Augmenter(24, seed=1)(images, labels, 5)
    x, _ = Augmenter(24, randaug_magnitude=9, randaug_layers=3, seed=1)(images, labels, 5)
    assert x.shape == plain.shape
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert not torch.equal(x, plain)
    # Magnitudes above the kornia maximum saturate instead of failing.
    Augmenter(24, randaug_magnitude=15, seed=1)(images, labels, 5)


def test_mixup_targets(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = batch
    x, y = Augmenter(24, mixup_alpha=0.4, seed=2)(images, labels, 5)
    assert torch.allclose(y.sum(1), torch.ones(16))
    # lambda = max(lambda, 1 - lambda): each sample's own label keeps at least half the mass,
    # the rest goes to the label of the reversed batch.
    own = y[torch.arange(16), labels]
    partner = y[torch.arange(16), labels.flip(0)]
    assert bool((own >= 0.5 - 1e-6).all())
    assert torch.allclose(own + partner, torch.ones(16)) or bool((labels == labels.flip(0)).any())
    assert bool((own < 1).any())  # something was actually mixed


def test_invalid_arguments() -> None:
    with pytest.raises(RecipeError, match="randaug_magnitude -1"):
        Augmenter(24, randaug_magnitude=-1)
    with pytest.raises(RecipeError, match="mixup_alpha -0.5 must be >= 0"):
        Augmenter(24, mixup_alpha=-0.5)
    with pytest.raises(RecipeError, match="crop_area"):
        Augmenter(24, crop_area=(0.5, 0.2))
