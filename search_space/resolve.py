"""Turn whatever a user typed for an architecture into an :class:`ArchSpec`.

Accepted, tried in this order:

1. a preset name (``efficientnetv2-s``; the aliases ``get_preset`` accepts, such as ``v2-s``);
2. a path to a JSON file holding a spec (as written by ``to_json``), or any JSON object with a
   ``"spec"`` dict or an ``"arch"`` canonical string (a search's ``best.json``, a result row);
3. a canonical architecture string (``stem24-fused_r2_k3_s1_e1_c24-...-head1280-cls1000``).

A spec beyond the sizes any command takes is refused (``search_space.limits``).
"""

from __future__ import annotations

import json
from pathlib import Path

from search_space.codec import decode, from_dict
from search_space.errors import SpecError
from search_space.limits import check_size
from search_space.messages import shown
from search_space.presets import PRESETS, Preset, get_preset
from search_space.spec import ArchSpec


def find_preset(ref: str) -> Preset | None:
    """The preset ``ref`` names, or ``None`` if it names none."""
    try:
        return get_preset(ref)
    except SpecError:
        return None


def resolve_arch(ref: str) -> ArchSpec:
    """A preset name, a JSON file path or a canonical string, as an :class:`ArchSpec`."""
    if not isinstance(ref, str):
        raise SpecError(f"an architecture reference must be a str, got {type(ref).__name__}")
    text = ref.strip()
    if not text:
        raise SpecError("empty architecture reference; give a preset name, a JSON file or a string")
    preset = find_preset(text)
    if preset is not None:
        return preset.spec
    path = Path(text)
    if _looks_like_path(text) or _exists(path):
        return check_size(load_arch_file(path))
    if text.startswith("stem"):
        return check_size(decode(text))
    raise SpecError(
        f"{shown(ref)} is not a preset, a file or an architecture string; presets: "
        f"{sorted(PRESETS)}"
    )


def load_arch_file(path: str | Path) -> ArchSpec:
    """Read a spec from a JSON file: a spec dict, or an object with ``"spec"`` or ``"arch"``."""
    path = Path(path)
    if not _exists(path):
        raise SpecError(f"architecture file {str(path)!r} not found")
    if not path.is_file():
        raise SpecError(f"architecture file {str(path)!r} is not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read architecture file {str(path)!r}: {exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"{str(path)!r}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise SpecError(f"{str(path)!r}: invalid JSON: nested too deeply") from None
    try:
        return _spec_from_object(obj)
    except SpecError as exc:
        raise SpecError(f"{str(path)!r}: {exc}") from None


def _spec_from_object(obj: object) -> ArchSpec:
    if not isinstance(obj, dict):
        raise SpecError(f"expected a JSON object, got {type(obj).__name__}")
    if "stages" in obj:
        return from_dict(obj)
    if "spec" in obj:
        if not isinstance(obj["spec"], dict):
            raise SpecError(f"field 'spec' must be a spec object, got {type(obj['spec']).__name__}")
        spec = from_dict(obj["spec"])
        if isinstance(obj.get("arch"), str) and decode(obj["arch"]) != spec:
            raise SpecError("fields 'spec' and 'arch' describe different architectures")
        return spec
    if "arch" in obj:
        if not isinstance(obj["arch"], str):
            raise SpecError(f"field 'arch' must be a string, got {type(obj['arch']).__name__}")
        return decode(obj["arch"])
    raise SpecError("JSON object has no architecture: expected a spec ('stages', ...), "
                    "a 'spec' object or an 'arch' string")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system, or a NUL byte
        return False


def _looks_like_path(text: str) -> bool:
    return text.endswith(".json") or "/" in text or "\\" in text


def preset_of(spec: ArchSpec) -> Preset | None:
    """The preset whose spec ``spec`` is, or ``None``."""
    return next((preset for preset in PRESETS.values() if preset.spec == spec), None)
