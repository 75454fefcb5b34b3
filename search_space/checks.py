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

* :func:`parse_count`: a count as people write it on a command line (``80M``, ``1.5G``,
  ``30000``), for every option that takes parameters or MACs.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TypeGuard

from search_space.errors import NasError

__all__ = ["check_keys", "is_int", "is_number", "parse_count"]


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


_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}
_COUNT_RE = re.compile(r"([0-9][0-9_,]*(?:\.[0-9]+)?)([KMG]?)")


def parse_count(text: str, what: str = "count", error: type[NasError] = NasError) -> int:
    """``'80M' -> 80_000_000``, ``'1.5G'``, ``'30000'``; suffixes K, M, G (case-insensitive).
    Anything else raises ``error`` naming ``what``."""
    match = _COUNT_RE.fullmatch(text.strip().upper())
    if not match:
        raise error(f"{what} {text!r}: expected an integer with an optional K/M/G suffix "
                    "(e.g. 80M, 30G, 5000000)")
    digits, suffix = match.groups()
    try:
        value = Decimal(digits.replace("_", "").replace(",", "")) * _SUFFIXES[suffix]
    except InvalidOperation:
        raise error(f"{what} {text!r}: not a number") from None
    if value != value.to_integral_value() or value < 1:
        raise error(f"{what} {text!r} must be a whole number >= 1")
    return int(value)
