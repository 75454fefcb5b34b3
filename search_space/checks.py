"""Small value checks shared by every package: one definition each (torch-free, no imports
from the other packages, so anything may use it).

* :func:`is_int`: a Python ``int`` that is not a ``bool`` (``True`` is an ``int`` subclass and
  must not pass for 1).
* :func:`is_number`: a finite real number that is not a ``bool`` (``int``, ``float``, numpy
  scalars, ``Fraction``); NaN and infinities are rejected.
* :func:`check_keys`: the unknown / missing field check of a mapping read from a file or JSON,
  with one wording everywhere::

      stages[2]: unknown field 'bar'; allowed: block, layers, kernel
      stage 1: missing field 'out_channels'; required: out_channels, stride, layers
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import TypeGuard

from search_space.errors import NasError

__all__ = ["check_keys", "is_int", "is_number"]


def is_int(value: object) -> TypeGuard[int]:
    """``True`` for an ``int`` that is not a ``bool`` (type checkers then treat it as ``int``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """``True`` for a finite real number that is not a ``bool``."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def check_keys(
    obj: Mapping[str, object],
    allowed: Iterable[str],
    required: Iterable[str] = (),
    *,
    where: str = "",
    error: type[NasError] = NasError,
) -> None:
    """Raise ``error`` naming the first key of ``obj`` not in ``allowed`` (and the allowed
    keys), else the first key of ``required`` missing from ``obj`` (and the required keys).

    ``where`` (a field path such as ``stages[2]`` or a place such as ``space.toml: stage 1``)
    prefixes the message as ``"{where}: "``. Keys are checked in the mapping's order.
    """
    allowed_keys = tuple(allowed)
    required_keys = tuple(required)
    prefix = f"{where}: " if where else ""
    for key in obj:
        if key not in allowed_keys:
            raise error(f"{prefix}unknown field {key!r}; allowed: {', '.join(allowed_keys)}")
    for key in required_keys:
        if key not in obj:
            raise error(f"{prefix}missing field {key!r}; required: {', '.join(required_keys)}")
