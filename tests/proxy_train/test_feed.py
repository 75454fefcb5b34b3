"""Batches read from a cache are the batches a resident split gives, in the same order."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from proxy_train.data import load_data
from proxy_train.feed import draw_batches, fits

from .conftest import class_color, image_bytes


@pytest.fixture
def mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    root = tmp_path / "imgs"
    for label in range(3):
        (root / f"c{label}").mkdir(parents=True)
        for i in range(10):
            (root / f"c{label}" / f"{i}.png").write_bytes(
                image_bytes(class_color(label, i), size=(12, 12)))
    return load_data(f"folder:{root}")


def test_streamed_batches_equal_resident_ones(mapped) -> None:  # type: ignore[no-untyped-def]
    split = mapped.train
    resident = split.images[:]
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))
    streamed = list(draw_batches(split.images, split.labels, order, 5, 4))
    dense = list(draw_batches(resident, split.labels, order, 5, 4))
    assert len(streamed) == 4
    for (a, la), (b, lb) in zip(streamed, dense):
        assert torch.equal(a, b) and torch.equal(la, lb)
    assert split.to("cpu").images is split.images  # the CPU keeps cached rows in the cache
    assert not fits(10**6, torch.device("cpu"))


def test_a_consumer_that_stops_early_stops_the_thread(mapped) -> None:  # type: ignore[no-untyped-def]
    split = mapped.train
    order = torch.arange(len(split))
    before = threading.active_count()
    batches = draw_batches(split.images, split.labels, order, 2, 10)
    next(batches)
    batches.close()
    assert threading.active_count() == before
