"""Reading and writing search-space files (TOML or JSON, or plain dicts), and the spaces
shipped with the package (``search_space/shipped_spaces/*.toml``).

File schema (TOML shown; JSON uses the same keys)::

    name = "v2b0"                  # optional; defaults to the file name without suffix
    description = "..."            # optional
    reference = "efficientnetv2-b0"  # optional; model that normalizes rewards in a search
    stem_channels = 32
    head_channels = 1280

    [defaults]                     # optional; any stage choice key except layers
    blocks = ["fused", "mbconv"]
    kernels = [3, 5]
    expansions = [1, 4, 6]
    se_fused = [0.0]
    se_mbconv = [0.25]

    [[stages]]                     # one table per stage, in order
    out_channels = 16
    stride = 1
    layers = [1, 2]                # inclusive [min, max]; a single integer fixes it
    optional = false               # only trailing stages may be optional

A stage key overrides ``[defaults]``, which overrides the built-in defaults (the paper's
choices: both block types, kernels 3 and 5, expansions 1, 4 and 6, SE 0.25 on MBConv only).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from search_space.checks import check_keys, is_int
from search_space.errors import SpaceError
from search_space.space import (
    DEFAULT_BLOCKS,
    DEFAULT_EXPANSIONS,
    DEFAULT_KERNELS,
    DEFAULT_SE_FUSED,
    DEFAULT_SE_MBCONV,
    SearchSpace,
    StageChoices,
)

SHIPPED_SPACES: tuple[str, ...] = ("paper", "v2s", "v2b0")
"""Names ``load_space`` accepts without a path (files in ``search_space/shipped_spaces/``)."""

_SHIPPED_FOLDER = "shipped_spaces"
_TOP_KEYS = ("name", "description", "reference", "stem_channels", "head_channels", "defaults", "stages")
_CHOICE_KEYS = ("blocks", "kernels", "expansions", "se_fused", "se_mbconv")
_STAGE_KEYS = ("out_channels", "stride", "layers", *_CHOICE_KEYS, "optional")
_BUILTIN = {"blocks": DEFAULT_BLOCKS, "kernels": DEFAULT_KERNELS,
            "expansions": DEFAULT_EXPANSIONS, "se_fused": DEFAULT_SE_FUSED,
            "se_mbconv": DEFAULT_SE_MBCONV}


def load_space(name_or_path: str | os.PathLike[str]) -> SearchSpace:
    """A shipped space by name (``SHIPPED_SPACES``) or a ``.toml`` / ``.json`` file."""
    text = os.fspath(name_or_path)
    if text in SHIPPED_SPACES:
        return _load_shipped(text)
    path = Path(text)
    if path.suffix.lower() not in (".toml", ".json") and not path.exists() and "/" not in text \
            and os.sep not in text:
        raise SpaceError(f"unknown space {text!r}; shipped spaces: {list(SHIPPED_SPACES)} "
                         "(or give a path to a .toml or .json file)")
    return _load_file(path)


@cache
def _load_shipped(name: str) -> SearchSpace:
    res = resources.files("search_space").joinpath(_SHIPPED_FOLDER).joinpath(f"{name}.toml")
    where = f"shipped space {name!r}"
    return space_from_dict(_parse(res.read_text(encoding="utf-8"), ".toml", where), where=where,
                           default_name=name)


def _load_file(path: Path) -> SearchSpace:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise SpaceError(f"space file {str(path)!r} must end in .toml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceError(f"space file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpaceError(f"cannot read space file {str(path)!r}: {err}") from None
    return space_from_dict(_parse(text, suffix, str(path)), where=str(path),
                           default_name=path.stem)


def _parse(text: str, suffix: str, where: str) -> Any:
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise SpaceError(f"{where}: invalid TOML: {err}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SpaceError(f"{where}: invalid JSON: {err.msg} (at line {err.lineno}, "
                         f"column {err.colno})") from None


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """A JSON-able dict of the whole space (every stage field explicit), for run metadata."""
    return {
        "name": space.name,
        "description": space.description,
        "reference": space.reference,
        "stem_channels": space.stem_channels,
        "head_channels": space.head_channels,
        "stages": [
            {"out_channels": s.out_channels, "stride": s.stride, "layers": list(s.layers),
             "blocks": list(s.blocks), "kernels": list(s.kernels),
             "expansions": list(s.expansions), "se_fused": list(s.se_fused),
             "se_mbconv": list(s.se_mbconv), "optional": s.optional}
            for s in space.stages
        ],
    }


def space_from_dict(
    obj: object, *, where: str = "space", default_name: str | None = None
) -> SearchSpace:
    """Build a ``SearchSpace`` from the file schema; ``SpaceError`` names the bad field."""
    if not isinstance(obj, Mapping):
        raise SpaceError(f"{where}: expected a table/object at the top, got {type(obj).__name__}")
    check_keys(obj, _TOP_KEYS, ("stem_channels", "head_channels", "stages"), where=where,
               error=SpaceError)
    if "name" not in obj and default_name is None:
        raise SpaceError(f"{where}: missing field 'name'")
    defaults = obj.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise SpaceError(f"{where}: defaults must be a table, got {type(defaults).__name__}")
    check_keys(defaults, _CHOICE_KEYS, where=f"{where}: defaults", error=SpaceError)
    stages = obj["stages"]
    if not isinstance(stages, list) or not stages:
        raise SpaceError(f"{where}: stages must be a non-empty list of tables")
    built = tuple(_stage(s, i, defaults, where) for i, s in enumerate(stages, start=1))
    try:
        return SearchSpace(
            name=obj.get("name", default_name), description=obj.get("description", ""),
            stem_channels=obj["stem_channels"], head_channels=obj["head_channels"],
            stages=built, reference=obj.get("reference"),
        )
    except SpaceError as err:
        raise SpaceError(f"{where}: {err}") from None


def _stage(obj: object, i: int, defaults: Mapping[str, Any], where: str) -> StageChoices:
    here = f"{where}: stage {i}"
    if not isinstance(obj, Mapping):
        raise SpaceError(f"{here}: expected a table/object, got {type(obj).__name__}")
    check_keys(obj, _STAGE_KEYS, ("out_channels", "stride", "layers"), where=here,
               error=SpaceError)
    fields: dict[str, Any] = {}
    for key in _CHOICE_KEYS:
        value = obj.get(key, defaults.get(key, _BUILTIN[key]))
        if isinstance(value, list):
            value = tuple(value)
        elif not isinstance(value, tuple):
            raise SpaceError(f"{here}: {key} {value!r} must be a list")
        fields[key] = value
    layers = obj["layers"]
    if is_int(layers):
        layers = (layers, layers)
    elif isinstance(layers, list):
        layers = tuple(layers)
    try:
        return StageChoices(out_channels=obj["out_channels"], stride=obj["stride"], layers=layers,
                            optional=obj.get("optional", False), **fields)
    except SpaceError as err:
        raise SpaceError(f"{here}: {err}") from None
