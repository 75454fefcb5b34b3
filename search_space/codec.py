"""The canonical architecture string and the JSON form of an :class:`ArchSpec`, both ways.

Every spec has exactly one canonical string, ``encode(spec)``, and ``decode(encode(spec)) ==
spec`` for every valid spec. The string (and its short hash, :func:`spec_hash`) is the
identity of a candidate in logs, trial configs, leaderboard rows and file names.

Grammar
-------
The string is a sequence of parts joined by ``-``::

    arch   := stem "-" stage ("-" stage)* "-" head "-" cls
    stem   := "stem" INT                      stem conv width
    head   := "head" INT                      head 1x1 conv width
    cls    := "cls" INT                       number of classes
    stage  := block ("_" token)+
    block  := "fused" | "mbconv"
    token  := "r" INT                         layers (blocks in the stage), >= 1
            | "k" INT                         kernel size, odd, >= 1
            | "s" INT                         stride of the first block, 1 or 2
            | "e" INT                         expansion ratio, >= 1
            | "c" INT                         output channels, >= 1
            | "se" FLOAT                      SE ratio in [0, 1]; absent means no SE
    INT    := "0" | [1-9][0-9]*               plain decimal, no sign, no leading zeros
    FLOAT  := INT ("." [0-9]+)? ("e" [+-]? [0-9]+)?

Example (EfficientNetV2-S)::

    stem24-fused_r2_k3_s1_e1_c24-fused_r4_k3_s2_e4_c48-fused_r4_k3_s2_e4_c64-
    mbconv_r6_k3_s2_e4_c128_se0.25-mbconv_r9_k3_s1_e6_c160_se0.25-
    mbconv_r15_k3_s2_e6_c256_se0.25-head1280-cls1000

(one line, no spaces). The encoder writes stage tokens in the order ``r k s e c se``, omits
``se`` when the ratio is 0 and writes it with ``repr(float)`` (``0.25``,
``0.3333333333333333``, ``6.25e-05``), which round-trips every float exactly. A ``-`` that
sits inside a number's exponent (``se6.25e-05``) belongs to the number, not to the separator.

The decoder accepts surrounding whitespace and stage tokens in any order, each at most once
(``r k s e c`` required); anything else raises :class:`SpecError` naming the offending part and
the rule, e.g. ``stage 2: unknown token 'q5'; expected keys r, k, s, e, c, se``.

JSON
----
``to_dict`` gives ``{"schema_version": 1, "stem_channels", "stages": [{"block", "layers",
"kernel", "expansion", "out_channels", "stride", "se_ratio"}, ...], "head_channels",
"num_classes"}``. ``from_dict`` requires every field (a stage's ``se_ratio`` may be left out,
meaning 0) and names the field path of any problem, e.g. ``stages[2].kernel: 4 must be an odd
integer >= 1`` or ``stages[2]: unknown field 'bar'; allowed: block, layers, ...`` (stage
indices are 0-based in JSON, 1-based in string messages).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from search_space.checks import check_keys, is_int, is_number
from search_space.errors import SpecError
from search_space.spec import BLOCK_TYPES, ArchSpec, StageSpec

SCHEMA_VERSION = 1
HASH_CHARS = 12

# (string key, StageSpec field) in canonical order.
_STAGE_KEYS: tuple[tuple[str, str], ...] = (
    ("r", "layers"),
    ("k", "kernel"),
    ("s", "stride"),
    ("e", "expansion"),
    ("c", "out_channels"),
    ("se", "se_ratio"),
)
_KEY_TO_FIELD = dict(_STAGE_KEYS)
_REQUIRED_KEYS = ("r", "k", "s", "e", "c")
_EXPECTED_KEYS = ", ".join(key for key, _ in _STAGE_KEYS)

_INT = r"(?:0|[1-9][0-9]*)"
_INT_RE = re.compile(_INT)
_FLOAT_RE = re.compile(_INT + r"(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?")
_TOKEN_RE = re.compile(r"([a-z]+)(.*)", re.DOTALL)
# Split on '-' except the one in a float exponent such as "6.25e-05".
_PART_SPLIT_RE = re.compile(r"-(?![0-9])|(?<![0-9]e)-")

_STAGE_FIELDS = ("block", "layers", "kernel", "expansion", "out_channels", "stride", "se_ratio")
_SPEC_FIELDS = ("schema_version", "stem_channels", "stages", "head_channels", "num_classes")
_INT_STAGE_FIELDS = ("layers", "kernel", "expansion", "out_channels", "stride")


# --------------------------------------------------------------------------- string form


def encode(spec: ArchSpec) -> str:
    """The canonical string of ``spec`` (see the module docstring for the grammar)."""
    parts = [f"stem{spec.stem_channels}"]
    for stage in spec.stages:
        tokens = [
            stage.block,
            f"r{stage.layers}",
            f"k{stage.kernel}",
            f"s{stage.stride}",
            f"e{stage.expansion}",
            f"c{stage.out_channels}",
        ]
        if stage.se_ratio != 0:
            tokens.append(f"se{format_ratio(stage.se_ratio)}")
        parts.append("_".join(tokens))
    parts.append(f"head{spec.head_channels}")
    parts.append(f"cls{spec.num_classes}")
    return "-".join(parts)


def format_ratio(value: float) -> str:
    """A ratio as written in strings: ``repr`` of the float (``0.25``, ``1.0``)."""
    return repr(float(value))


def decode(text: str) -> ArchSpec:
    """Parse an architecture string; :class:`SpecError` names the bad part and the rule."""
    if not isinstance(text, str):
        raise SpecError(f"an architecture string must be a str, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise SpecError("empty architecture string; expected 'stem<N>-<stage>-...-head<N>-cls<N>'")
    parts = _PART_SPLIT_RE.split(text)
    for i, part in enumerate(parts):
        if not part:
            raise SpecError(f"empty part at position {i + 1} of {text!r} (doubled or stray '-')")

    stem = _parse_int_part(parts[0], "stem")
    if stem is None:
        raise SpecError(f"missing 'stem<N>' at the start; got {parts[0]!r}")
    num_classes = _parse_int_part(parts[-1], "cls") if len(parts) >= 2 else None
    if num_classes is None:
        raise SpecError(f"missing 'cls<N>' at the end; got {parts[-1]!r}")
    head = _parse_int_part(parts[-2], "head") if len(parts) >= 3 else None
    if head is None:
        raise SpecError(f"missing 'head<N>' before 'cls<N>'; got {parts[-2]!r}")
    if len(parts) < 4:
        raise SpecError("no stages between 'stem<N>' and 'head<N>'; a spec needs at least one")

    stages = tuple(_decode_stage(part, n) for n, part in enumerate(parts[1:-2], start=1))
    return ArchSpec(
        stem_channels=_at_least_one("stem", stem),
        stages=stages,
        head_channels=_at_least_one("head", head),
        num_classes=_at_least_one("cls", num_classes),
    )


def spec_hash(spec: ArchSpec) -> str:
    """First 12 hex characters of the SHA-256 of ``encode(spec)``: a short, stable id."""
    return hashlib.sha256(encode(spec).encode("utf-8")).hexdigest()[:HASH_CHARS]


def _parse_int_part(part: str, prefix: str) -> int | None:
    """``int`` of ``part`` if it is ``<prefix><INT>``, ``None`` if it has another shape."""
    if not part.startswith(prefix):
        return None
    digits = part[len(prefix) :]
    if not _INT_RE.fullmatch(digits):
        if re.fullmatch(r"[0-9]+", digits):
            raise SpecError(f"{part!r}: leading zeros are not allowed")
        return None
    return _to_int(digits, part)


def _to_int(digits: str, where: str) -> int:
    try:
        return int(digits)
    except ValueError:  # more digits than Python converts
        raise SpecError(f"{where!r}: number too long") from None


def _at_least_one(name: str, value: int) -> int:
    if value < 1:
        raise SpecError(f"'{name}{value}': {name} must be >= 1")
    return value


def _decode_stage(part: str, n: int) -> StageSpec:
    block, _, rest = part.partition("_")
    if block not in BLOCK_TYPES:
        raise SpecError(
            f"stage {n}: unknown block type {block!r} in {part!r}; expected one of {list(BLOCK_TYPES)}"
        )
    if not rest:
        raise SpecError(f"stage {n}: no tokens after {block!r}; expected keys {_EXPECTED_KEYS}")
    values: dict[str, int] = {}
    se_ratio: float | None = None
    for token in rest.split("_"):
        if not token:
            raise SpecError(f"stage {n}: empty token in {part!r} (doubled or trailing '_')")
        match = _TOKEN_RE.fullmatch(token)
        key = match.group(1) if match else ""
        if key not in _KEY_TO_FIELD:
            raise SpecError(f"stage {n}: unknown token {token!r}; expected keys {_EXPECTED_KEYS}")
        if key in values or (key == "se" and se_ratio is not None):
            raise SpecError(f"stage {n}: token {key!r} given twice in {part!r}")
        raw = match.group(2) if match else ""
        if key == "se":
            if not _FLOAT_RE.fullmatch(raw):
                raise SpecError(f"stage {n}: {token!r}: se needs a decimal number such as se0.25")
            se_ratio = float(raw)
        else:
            if not _INT_RE.fullmatch(raw):
                raise SpecError(
                    f"stage {n}: {token!r}: {key} needs a plain integer (no sign, no leading zeros)"
                )
            values[key] = _to_int(raw, token)
    missing = [key for key in _REQUIRED_KEYS if key not in values]
    if missing:
        raise SpecError(f"stage {n}: missing {', '.join(missing)} in {part!r}; "
                        f"required keys {', '.join(_REQUIRED_KEYS)}")
    try:
        return StageSpec(block=block, layers=values["r"], kernel=values["k"],
                         expansion=values["e"], out_channels=values["c"], stride=values["s"],
                         se_ratio=0.0 if se_ratio is None else se_ratio)
    except SpecError as exc:
        raise SpecError(f"stage {n}: {exc}") from None


# --------------------------------------------------------------------------- JSON form


def to_dict(spec: ArchSpec) -> dict[str, Any]:
    """A JSON-able dict of ``spec`` with ``"schema_version": 1``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "stem_channels": spec.stem_channels,
        "stages": [
            {
                "block": s.block,
                "layers": s.layers,
                "kernel": s.kernel,
                "expansion": s.expansion,
                "out_channels": s.out_channels,
                "stride": s.stride,
                "se_ratio": float(s.se_ratio),
            }
            for s in spec.stages
        ],
        "head_channels": spec.head_channels,
        "num_classes": spec.num_classes,
    }


def from_dict(obj: Mapping[str, Any]) -> ArchSpec:
    """Validate and convert a dict from :func:`to_dict`; errors name the field path."""
    if not isinstance(obj, Mapping):
        raise SpecError(f"a spec must be a JSON object, got {type(obj).__name__}")
    check_keys(obj, _SPEC_FIELDS, _SPEC_FIELDS, error=SpecError)
    version = obj["schema_version"]
    if version != SCHEMA_VERSION or not is_int(version):
        raise SpecError(f"schema_version {version!r} not supported; expected {SCHEMA_VERSION}")
    ints = {}
    for name in ("stem_channels", "head_channels", "num_classes"):
        value = obj[name]
        if not is_int(value) or value < 1:
            raise SpecError(f"{name}: {value!r} must be an integer >= 1")
        ints[name] = value
    stages = obj["stages"]
    if not isinstance(stages, list):
        raise SpecError(f"stages: expected a list of stage objects, got {type(stages).__name__}")
    if not stages:
        raise SpecError("stages: a spec needs at least one stage")
    return ArchSpec(stages=tuple(_stage_from_dict(s, i) for i, s in enumerate(stages)), **ints)


def _stage_from_dict(obj: object, i: int) -> StageSpec:
    where = f"stages[{i}]"
    if not isinstance(obj, Mapping):
        raise SpecError(f"{where}: expected an object, got {type(obj).__name__}")
    check_keys(obj, _STAGE_FIELDS, _STAGE_FIELDS[:-1], where=where, error=SpecError)
    block = obj["block"]
    if not isinstance(block, str):
        raise SpecError(f"{where}.block: {block!r} must be a string, one of {list(BLOCK_TYPES)}")
    for name in _INT_STAGE_FIELDS:
        if not is_int(obj[name]):
            raise SpecError(f"{where}.{name}: {obj[name]!r} must be an integer")
    se = obj.get("se_ratio", 0.0)
    if not is_number(se):
        raise SpecError(f"{where}.se_ratio: {se!r} must be a number in [0, 1]")
    try:
        return StageSpec(**{name: obj[name] for name in _STAGE_FIELDS[:-1]}, se_ratio=float(se))
    except SpecError as exc:
        raise SpecError(_with_field_path(str(exc), where)) from None


def _with_field_path(message: str, where: str) -> str:
    """Turn ``kernel 4 must be ...`` into ``stages[2].kernel: 4 must be ...``."""
    if message.startswith("unknown block type"):
        return f"{where}.block: {message}"
    for name in _STAGE_FIELDS:
        if message.startswith(name + " "):
            return f"{where}.{name}: {message[len(name) + 1:]}"
    return f"{where}: {message}"


def to_json(spec: ArchSpec) -> str:
    """``to_dict(spec)`` as indented JSON text."""
    return json.dumps(to_dict(spec), indent=2)


def from_json(text: str) -> ArchSpec:
    """Parse spec JSON text; invalid JSON is a :class:`SpecError` giving the position."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise SpecError("invalid JSON: nested too deeply") from None
    return from_dict(obj)
