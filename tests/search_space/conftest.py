"""Shared fixtures for the search_space tests: a seeded generator of small random specs."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from search_space.spec import BLOCK_TYPES, ArchSpec, StageSpec


def _channels(rng: random.Random) -> int:
    # Mostly multiples of 8, sometimes odd widths, which the official rules also allow.
    return rng.choice((8, 16, 24, 32)) if rng.random() < 0.7 else rng.randint(1, 27)


def make_random_spec(rng: random.Random) -> ArchSpec:
    """A small valid spec mixing every block type, kernel, expansion, SE and stride."""
    stages = tuple(
        StageSpec(
            block=rng.choice(BLOCK_TYPES),
            layers=rng.randint(1, 3),
            kernel=rng.choice((3, 5, 7)),
            expansion=rng.choice((1, 4, 6)),
            out_channels=_channels(rng),
            stride=rng.choice((1, 2)),
            se_ratio=rng.choice((0.0, 0.25)),
        )
        for _ in range(rng.randint(1, 4))
    )
    return ArchSpec(
        stem_channels=_channels(rng),
        stages=stages,
        head_channels=rng.choice((16, 24, 33, 64)),
        num_classes=rng.randint(2, 20),
    )


@pytest.fixture
def random_specs() -> Callable[[int, int], list[ArchSpec]]:
    """``random_specs(count, seed)`` -> that many reproducible random specs."""

    def generate(count: int, seed: int = 0) -> list[ArchSpec]:
        rng = random.Random(seed)
        return [make_random_spec(rng) for _ in range(count)]

    return generate
