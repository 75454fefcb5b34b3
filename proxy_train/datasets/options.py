"""Source strings with options: ``KIND:PATH`` followed by ``:key=value,key=value``.

``folder:/data/imagenet:resolution=64,per_class=50,minival=0.02`` reads as the kind
``folder``, the path ``/data/imagenet`` and three options. The path may itself hold ``:`` and
``,``: the options are the *last* part that is a list of ``key=value`` pairs (keys are words,
values hold no ``:``), and when several splits are possible the one whose path exists wins, so
``folder:/data/run,lr=0.1`` is that folder when it exists. ``?key=value&key=value`` is accepted
too (the older Parquet form). A bare existing path takes options the same way
(``/data/imagenet:resolution=64``).

Options every image source takes (folder, Parquet, CIFAR):

* ``resolution``: the square size images are stored (and cached) at;
* ``classes``: the first N classes (``classes=100``) or a list of names or ids joined by ``+``
  (``classes=cat+dog``);
* ``per_class``: at most this many training images per class;
* ``minival``: the minival share of the training images, a fraction (``0.05``) or a count
  (``500``);
* ``cache``: the folder that holds decoded caches (folder and Parquet sources; default
  ``$EFFNAS_CACHE``, else ``$XDG_CACHE_HOME/effnas``, else ``~/.cache/effnas``).

Parquet sources also take ``image`` and ``label`` (column names).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from proxy_train.errors import DataError

COMMON_OPTIONS: tuple[str, ...] = ("resolution", "classes", "per_class", "minival", "cache")
PARQUET_OPTIONS: tuple[str, ...] = (*COMMON_OPTIONS, "image", "label")
_PAIR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^:=]*?)\s*$")


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """What the options of a source string ask for (None: not given)."""

    resolution: int | None = None
    classes: int | tuple[int | str, ...] | None = None
    per_class: int | None = None
    minival: float | int | None = None
    """A fraction in (0, 1), or a number of images (>= 1)."""
    cache: str | None = None
    image: str | None = None
    label: str | None = None


def split_path(rest: str, where: str, allowed: Sequence[str]) -> tuple[str, dict[str, str]]:
    """Split ``PATH[:OPTIONS]`` (or ``PATH?OPTIONS``) into the path and its raw options."""
    candidates = []
    for at, char in enumerate(rest):
        if char in ":?" and at > 0 and _looks_like_options(rest[at + 1:]):
            candidates.append(at)
    if not candidates or Path(rest).expanduser().exists():
        return rest, {}
    chosen = next((at for at in candidates if Path(rest[:at]).expanduser().exists()),
                  candidates[-1])
    return rest[:chosen], parse_pairs(rest[chosen + 1:], where, allowed)


def parse_pairs(text: str, where: str, allowed: Sequence[str]) -> dict[str, str]:
    """``key=value`` pairs separated by ``,`` or ``&``; keys must be in ``allowed``."""
    options: dict[str, str] = {}
    for part in text.replace("&", ",").split(","):
        if not part.strip():
            continue
        match = _PAIR.match(part)
        if match is None or not match.group(2):
            raise DataError(f"{where}: option {part.strip()!r} must look like key=value")
        key, value = match.group(1), match.group(2)
        if key not in allowed:
            raise DataError(f"{where}: unknown option {key!r}; expected one of {list(allowed)}")
        if key in options:
            raise DataError(f"{where}: option {key!r} given twice")
        options[key] = value
    return options


def _looks_like_options(text: str) -> bool:
    parts = [p for p in text.replace("&", ",").split(",") if p.strip()]
    return bool(parts) and all(_PAIR.match(p) for p in parts)


def read_options(raw: dict[str, str], where: str) -> SourceOptions:
    """Check and convert raw options (see the module docstring)."""
    return SourceOptions(
        resolution=_int(raw, "resolution", where, low=8),
        classes=_classes(raw.get("classes"), where),
        per_class=_int(raw, "per_class", where, low=2),
        minival=_minival(raw.get("minival"), where),
        cache=raw.get("cache"),
        image=raw.get("image"),
        label=raw.get("label"),
    )


def _int(raw: dict[str, str], key: str, where: str, *, low: int) -> int | None:
    if key not in raw:
        return None
    try:
        value = int(raw[key])
    except ValueError:
        raise DataError(f"{where}: option {key}={raw[key]!r} must be an integer") from None
    if value < low:
        raise DataError(f"{where}: option {key}={value} must be >= {low}")
    return value


def _classes(text: str | None, where: str) -> int | tuple[int | str, ...] | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    items = [item.strip() for item in text.split("+")]
    if not all(items):
        raise DataError(f"{where}: option classes={text!r} must be a count (classes=10) or "
                        "names or ids joined by + (classes=cat+dog)")
    return tuple(items)


def _minival(text: str | None, where: str) -> float | int | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if text.isdigit() and value >= 1:
        return int(text)
    if not 0.0 < value < 1.0:
        raise DataError(f"{where}: option minival={text!r} must be a fraction in (0, 1) "
                        "(minival=0.05) or a number of images (minival=500)")
    return value


__all__ = ["COMMON_OPTIONS", "PARQUET_OPTIONS", "SourceOptions", "parse_pairs", "read_options",
           "split_path"]
