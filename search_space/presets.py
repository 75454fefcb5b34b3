"""Reference architectures: EfficientNetV2 B0-B3, S, M, L, XL and EfficientNet V1 B0, B4.

Where the numbers come from:

* V2 block lists: ``google/automl`` ``efficientnetv2/effnetv2_configs.py`` (``v2_base_block``,
  ``v2_s_block``, ``v2_m_block``, ``v2_l_block``, ``v2_xl_block``), copied verbatim below in
  the official block-string grammar (``r`` repeats, ``k`` kernel, ``s`` stride, ``e``
  expansion, ``i``/``o`` input/output filters, ``se`` SE ratio, ``c1`` Fused-MBConv).
* V2 width/depth multipliers, train/eval sizes, dropout, RandAugment magnitude and mixup
  alpha: ``efficientnetv2_params`` in the same file (the released code's values, not the
  paper's Table 6). Scaling uses the official ``round_filters`` (no 0.9 rule) and
  ``round_repeats``; the head is ``round_filters(1280, width)``.
* V1 block list and B0/B4 coefficients: ``efficientnet/efficientnet_builder.py`` of the same
  repository (B0: width 1.0, depth 1.0, 224 px, dropout 0.2; B4: width 1.4, depth 1.8,
  380 px, dropout 0.4), with V1's 0.9 rounding rule (``round_limit=0.9``) for stem, blocks
  and head. V1 presets train at their eval size with neither RandAugment nor mixup.

Parameter counts at 1000 classes (PyTorch convention, checked in the tests): V2 B0 7,139,704,
B1 8,141,052, B2 10,096,086, B3 14,358,406, S 21,458,488, M 54,139,356, L 118,515,272,
XL 208,119,808; V1 B0 5,288,548, B4 19,341,616 (timm/torchvision counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search_space.errors import SpecError
from search_space.rounding import round_filters, round_repeats
from search_space.spec import FUSED, MBCONV, ArchSpec, StageSpec


@dataclass(frozen=True, slots=True)
class Preset:
    """A named reference architecture with its official training and eval settings."""

    name: str
    spec: ArchSpec
    train_size: int
    eval_size: int
    dropout: float
    randaug: int
    """RandAugment magnitude (0: none)."""
    mixup: float
    """Mixup (= CutMix) alpha (0: none)."""


V2_BASE_BLOCK: tuple[str, ...] = (
    "r1_k3_s1_e1_i32_o16_c1",
    "r2_k3_s2_e4_i16_o32_c1",
    "r2_k3_s2_e4_i32_o48_c1",
    "r3_k3_s2_e4_i48_o96_se0.25",
    "r5_k3_s1_e6_i96_o112_se0.25",
    "r8_k3_s2_e6_i112_o192_se0.25",
)
V2_S_BLOCK: tuple[str, ...] = (
    "r2_k3_s1_e1_i24_o24_c1",
    "r4_k3_s2_e4_i24_o48_c1",
    "r4_k3_s2_e4_i48_o64_c1",
    "r6_k3_s2_e4_i64_o128_se0.25",
    "r9_k3_s1_e6_i128_o160_se0.25",
    "r15_k3_s2_e6_i160_o256_se0.25",
)
V2_M_BLOCK: tuple[str, ...] = (
    "r3_k3_s1_e1_i24_o24_c1",
    "r5_k3_s2_e4_i24_o48_c1",
    "r5_k3_s2_e4_i48_o80_c1",
    "r7_k3_s2_e4_i80_o160_se0.25",
    "r14_k3_s1_e6_i160_o176_se0.25",
    "r18_k3_s2_e6_i176_o304_se0.25",
    "r5_k3_s1_e6_i304_o512_se0.25",
)
V2_L_BLOCK: tuple[str, ...] = (
    "r4_k3_s1_e1_i32_o32_c1",
    "r7_k3_s2_e4_i32_o64_c1",
    "r7_k3_s2_e4_i64_o96_c1",
    "r10_k3_s2_e4_i96_o192_se0.25",
    "r19_k3_s1_e6_i192_o224_se0.25",
    "r25_k3_s2_e6_i224_o384_se0.25",
    "r7_k3_s1_e6_i384_o640_se0.25",
)
V2_XL_BLOCK: tuple[str, ...] = (
    "r4_k3_s1_e1_i32_o32_c1",
    "r8_k3_s2_e4_i32_o64_c1",
    "r8_k3_s2_e4_i64_o96_c1",
    "r16_k3_s2_e4_i96_o192_se0.25",
    "r24_k3_s1_e6_i192_o256_se0.25",
    "r32_k3_s2_e6_i256_o512_se0.25",
    "r8_k3_s1_e6_i512_o640_se0.25",
)
V1_BLOCK: tuple[str, ...] = (
    "r1_k3_s1_e1_i32_o16_se0.25",
    "r2_k3_s2_e6_i16_o24_se0.25",
    "r2_k5_s2_e6_i24_o40_se0.25",
    "r3_k3_s2_e6_i40_o80_se0.25",
    "r3_k5_s1_e6_i80_o112_se0.25",
    "r4_k5_s2_e6_i112_o192_se0.25",
    "r1_k3_s1_e6_i192_o320_se0.25",
)


def _parse_official(text: str) -> dict[str, float]:
    """Decode one official block string, e.g. ``r2_k3_s1_e1_i24_o24_c1``, into its fields."""
    fields: dict[str, float] = {}
    for token in text.split("_"):
        key = "".join(ch for ch in token if ch.isalpha())
        value = token[len(key):]
        if key not in ("r", "k", "s", "e", "i", "o", "se", "c") or not value:
            raise SpecError(f"official block string {text!r}: bad token {token!r}")
        fields[key] = float(value)
    missing = [key for key in ("r", "k", "s", "e", "i", "o") if key not in fields]
    if missing:
        raise SpecError(f"official block string {text!r}: missing {missing}")
    return fields


def from_official(
    blocks: Sequence[str],
    width: float,
    depth: float,
    head: int = 1280,
    round_limit: float = 0.0,
    num_classes: int = 1000,
) -> ArchSpec:
    """Build an ``ArchSpec`` from official block strings scaled by width and depth.

    The stem width is the first block's rounded input filters, every stage's output is
    rounded with ``round_filters(o, width, round_limit=round_limit)``, repeats with
    ``round_repeats(r, depth)``, and the head is ``round_filters(head, width, ...)``.
    """
    parsed = [_parse_official(text) for text in blocks]
    if not parsed:
        raise SpecError("official block list is empty")
    stem = round_filters(int(parsed[0]["i"]), width, round_limit=round_limit)
    stages = []
    cin = stem
    for text, f in zip(blocks, parsed):
        declared_in = round_filters(int(f["i"]), width, round_limit=round_limit)
        if declared_in != cin:
            raise SpecError(
                f"official block string {text!r}: input {declared_in} != previous output {cin}"
            )
        cout = round_filters(int(f["o"]), width, round_limit=round_limit)
        stages.append(
            StageSpec(
                block=FUSED if f.get("c", 0) == 1 else MBCONV,
                layers=round_repeats(int(f["r"]), depth),
                kernel=int(f["k"]),
                expansion=int(f["e"]),
                out_channels=cout,
                stride=int(f["s"]),
                se_ratio=f.get("se", 0.0),
            )
        )
        cin = cout
    return ArchSpec(
        stem_channels=stem,
        stages=tuple(stages),
        head_channels=round_filters(head, width, round_limit=round_limit),
        num_classes=num_classes,
    )


def _v2(name: str, blocks: tuple[str, ...], width: float, depth: float, train: int,
        evaluate: int, dropout: float, randaug: int, mixup: float) -> Preset:
    spec = from_official(blocks, width, depth, round_limit=0.0)
    return Preset(name, spec, train, evaluate, dropout, randaug, mixup)


def _v1(name: str, width: float, depth: float, size: int, dropout: float) -> Preset:
    spec = from_official(V1_BLOCK, width, depth, round_limit=0.9)
    return Preset(name, spec, size, size, dropout, 0, 0.0)


# (block, width, depth, train_size, eval_size, dropout, randaug, mixup) as in
# efficientnetv2_params; V1 as (width, depth, resolution, dropout).
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _v2("efficientnetv2-b0", V2_BASE_BLOCK, 1.0, 1.0, 192, 224, 0.2, 0, 0.0),
        _v2("efficientnetv2-b1", V2_BASE_BLOCK, 1.0, 1.1, 192, 240, 0.2, 0, 0.0),
        _v2("efficientnetv2-b2", V2_BASE_BLOCK, 1.1, 1.2, 208, 260, 0.3, 0, 0.0),
        _v2("efficientnetv2-b3", V2_BASE_BLOCK, 1.2, 1.4, 240, 300, 0.3, 0, 0.0),
        _v2("efficientnetv2-s", V2_S_BLOCK, 1.0, 1.0, 300, 384, 0.2, 10, 0.0),
        _v2("efficientnetv2-m", V2_M_BLOCK, 1.0, 1.0, 384, 480, 0.3, 15, 0.2),
        _v2("efficientnetv2-l", V2_L_BLOCK, 1.0, 1.0, 384, 480, 0.4, 20, 0.5),
        _v2("efficientnetv2-xl", V2_XL_BLOCK, 1.0, 1.0, 384, 512, 0.4, 20, 0.5),
        _v1("efficientnet-b0", 1.0, 1.0, 224, 0.2),
        _v1("efficientnet-b4", 1.4, 1.8, 380, 0.4),
    )
}


def get_preset(name: str) -> Preset:
    """Look up a preset by name, case-insensitively; ``v2-s`` / ``v1-b4`` are accepted too."""
    key = name.strip().lower().replace("_", "-")
    if key.startswith("efficientnet-v2-"):
        key = "efficientnetv2-" + key[len("efficientnet-v2-"):]
    elif key.startswith("v2-"):
        key = "efficientnetv2-" + key[3:]
    elif key.startswith("v1-"):
        key = "efficientnet-" + key[3:]
    try:
        return PRESETS[key]
    except KeyError:
        raise SpecError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}") from None
