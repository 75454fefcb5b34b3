"""A base architecture to scale, and what is known about its image sizes.

Which base a user named (a preset, a file, a string, a search's row, ...) is decided by the
command layer's model reference (``nas.cli.models``); scaling takes the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_space.spec import ArchSpec

# Preset name -> the name its recipe row has in Table 6 / efficientnetv2_params.
RECIPE_NAMES: dict[str, str] = {
    "efficientnetv2-s": "S", "efficientnetv2-m": "M", "efficientnetv2-l": "L",
    "efficientnetv2-xl": "XL",
}


@dataclass(frozen=True, slots=True)
class Base:
    """A base architecture and what is known about its image sizes."""

    spec: ArchSpec
    source: str
    """Human-readable origin, recorded in the output (``preset efficientnetv2-s``, ...)."""
    train_size: int | None = None
    eval_size: int | None = None
    preset: str | None = None
    """The preset whose spec this is, if any (also found for a file or string)."""
    label: str = "base"
    """Short name for tables and the report's ``base.name``."""


__all__ = ["RECIPE_NAMES", "Base"]
