"""A proxy recipe file (``--proxy FILE``): a JSON object of ``proxy_train.recipe.Recipe`` fields.

The fields a file names replace those of the proxy the command would otherwise use (the
hardware's default proxy for ``nas-search``, the search's own proxy for ``nas-validate``), so
``{"epochs": 4, "max_train_batches_per_epoch": null, "crop_area": 1.0, "ema_decay": 0.99}`` is a
whole file, and a recipe written by ``Recipe.to_dict()`` names every field and replaces all
of them. A file is read and checked once, before any work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from proxy_train.errors import RecipeError
from proxy_train.recipe import Recipe


def read_proxy_fields(path: str, flag: str = "--proxy") -> dict[str, Any]:
    """The recipe fields the file at ``path`` names, each checked: over the CPU and the GPU
    default proxy alike they make a valid recipe. ``RecipeError`` names the file and the
    fault."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RecipeError(f"{flag} {path!r} is not a readable recipe JSON file: {err}") from None
    if not isinstance(obj, dict) or not obj:
        raise RecipeError(f"{flag} {path!r} must hold a JSON object of recipe fields, e.g. "
                          '{"epochs": 4}')
    check_proxy_fields(obj, f"{flag} {path!r}")
    return obj


def check_proxy_fields(fields: dict[str, Any], where: str) -> None:
    """Raise ``RecipeError`` (prefixed with ``where``) unless ``fields`` make a valid recipe
    over both default proxies."""
    for base in (Recipe.cpu_quick(), Recipe()):
        try:
            apply_proxy_fields(base, fields)
        except RecipeError as err:
            raise RecipeError(f"{where}: {err}") from None


def apply_proxy_fields(base: Recipe, fields: dict[str, Any] | None) -> Recipe:
    """``base`` with the fields a proxy file names (``base`` itself for None)."""
    return base if not fields else base.replace(**fields)


__all__ = ["apply_proxy_fields", "check_proxy_fields", "read_proxy_fields"]
