"""Getting a split's batches to the training device.

Two ways, chosen per split when it is moved to the device (:func:`place`):

* **resident**: the images are one uint8 tensor on the device and a batch is an index into
  it, as for the built-in data. A cached split goes there when the device is a GPU and the
  split takes under a third of its memory (and under half of what is free), leaving the
  rest to the model; it is copied once, in slices, through pinned memory.
* **streamed**: the split stays in the cache (:class:`~proxy_train.cache.rows.
  CachedRows`), and :func:`draw_batches` reads each batch from it in a background thread,
  a few batches ahead of the step, into pinned memory when the device is a GPU, from which
  it is copied without blocking. On the CPU a cached split is always streamed: the page
  cache already holds it once for every process of the machine, and a copy per trial
  would multiply it.

Augmentation runs on the device either way; the order of the images is the same either way,
so a run draws the same batches whichever way its data is fed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import torch

from proxy_train.cache.rows import CachedRows

RESIDENT_SHARE = 1 / 3
"""A split goes to GPU memory if it takes less than this share of it."""
AHEAD = 3
"""Batches gathered ahead of the step."""
_COPY_ROWS = 4096


def fits(nbytes: int, device: torch.device) -> bool:
    """Whether a split of ``nbytes`` should live on ``device`` (GPUs only)."""
    if device.type != "cuda":
        return False
    free, total = torch.cuda.mem_get_info(device)
    return nbytes < min(total * RESIDENT_SHARE, free / 2)


def place(images: CachedRows, device: torch.device) -> torch.Tensor | CachedRows:
    """The split's images for ``device``: a resident tensor, or the cached rows."""
    if not fits(images.nbytes, device):
        return images
    out = torch.empty(images.shape, dtype=torch.uint8, device=device)
    for start in range(0, len(images), _COPY_ROWS):
        part = slice(start, min(start + _COPY_ROWS, len(images)))
        staged = images.gather(part).pin_memory()
        out[part].copy_(staged, non_blocking=True)
        torch.cuda.current_stream(device).synchronize()  # before the pinned slice is freed
    return out


def draw_batches(images: torch.Tensor | CachedRows, labels: torch.Tensor,
                 order: torch.Tensor, batch: int,
                 steps: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, labels)`` of the ``steps`` batches ``order[i * batch:(i + 1) * batch]``, on
    the labels' device."""
    if isinstance(images, torch.Tensor):
        for i in range(steps):
            index = order[i * batch:(i + 1) * batch]
            yield images[index], labels[index]
        return
    yield from _Prefetch(images, labels, order.cpu(), batch, steps)


class _Prefetch:
    """Reads batches of cached rows in a background thread, ``AHEAD`` at most."""

    def __init__(self, images: CachedRows, labels: torch.Tensor, order: torch.Tensor,
                 batch: int, steps: int) -> None:
        self.images = images
        self.labels = labels
        self.order = order
        self.batch = batch
        self.steps = steps
        self.device = labels.device
        self.pin = self.device.type == "cuda"
        self.ready: queue.Queue[tuple[int, torch.Tensor] | BaseException] = queue.Queue(AHEAD)
        self.stop = threading.Event()

    def _work(self) -> None:
        try:
            for i in range(self.steps):
                index = self.order[i * self.batch:(i + 1) * self.batch]
                out = torch.empty((len(index), *self.images.shape[1:]), dtype=torch.uint8,
                                  pin_memory=self.pin)
                self.images.gather(index, out=out)
                if not self._put((i, out)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)

    def _put(self, item: tuple[int, torch.Tensor] | BaseException) -> bool:
        while not self.stop.is_set():
            try:
                self.ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        worker = threading.Thread(target=self._work, name="batch-prefetch", daemon=True)
        worker.start()
        try:
            for _ in range(self.steps):
                item = self.ready.get()
                if isinstance(item, BaseException):
                    raise item
                i, images = item
                index = self.order[i * self.batch:(i + 1) * self.batch].to(self.device)
                yield images.to(self.device, non_blocking=self.pin), self.labels[index]
        finally:
            self.stop.set()
            worker.join()


__all__ = ["AHEAD", "RESIDENT_SHARE", "draw_batches", "fits", "place"]
