"""Hand the memory a finished training freed back to the operating system.

A process that trains one candidate after another (a reused Ray trial worker, the inline
executor) frees every tensor of a candidate when it ends, but glibc's allocator keeps most of
those pages: tensors of a few MB come from its heaps once its dynamic mmap threshold has risen
(it does after the first large block is freed), and free pages inside a heap are not returned
on their own. The process's resident memory then follows the largest candidate seen so far,
plus fragmentation (measured in ``bench/worker_memory.py``). ``malloc_trim(0)`` returns every
free page of every heap; :func:`release_free_memory` calls it after a garbage collection,
between candidates, never inside a training step (where it would only cost time). Where the
C library is not glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache
from typing import Any

__all__ = ["release_free_memory"]


@cache
def _malloc_trim() -> Any | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc: no malloc_trim
        return None


def release_free_memory() -> bool:
    """Collect garbage, then return the allocator's free pages to the OS. Returns whether
    ``malloc_trim`` ran and released memory."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
