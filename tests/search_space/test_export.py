"""timm export: the presets give timm's own arch_def strings, verbatim, and every exported
spec builds in timm with exactly our widths (timm's builder rules re-implemented below)."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from search_space.codec import decode
from search_space.errors import SpecError
from search_space.export import timm_kwargs, to_timm
from search_space.presets import PRESETS, get_preset
from search_space.sampling import sample
from search_space.space_files import SHIPPED_SPACES, load_space
from search_space.spec import ArchSpec

# Reference notes §4.1 (timm efficientnet.py), verbatim.
TIMM_ARCH_DEFS = {
    "efficientnetv2-b0": [
        ["cn_r1_k3_s1_e1_c16_skip"],
        ["er_r2_k3_s2_e4_c32"],
        ["er_r2_k3_s2_e4_c48"],
        ["ir_r3_k3_s2_e4_c96_se0.25"],
        ["ir_r5_k3_s1_e6_c112_se0.25"],
        ["ir_r8_k3_s2_e6_c192_se0.25"],
    ],
    "efficientnetv2-s": [
        ["cn_r2_k3_s1_e1_c24_skip"],
        ["er_r4_k3_s2_e4_c48"],
        ["er_r4_k3_s2_e4_c64"],
        ["ir_r6_k3_s2_e4_c128_se0.25"],
        ["ir_r9_k3_s1_e6_c160_se0.25"],
        ["ir_r15_k3_s2_e6_c256_se0.25"],
    ],
    "efficientnetv2-m": [
        ["cn_r3_k3_s1_e1_c24_skip"],
        ["er_r5_k3_s2_e4_c48"],
        ["er_r5_k3_s2_e4_c80"],
        ["ir_r7_k3_s2_e4_c160_se0.25"],
        ["ir_r14_k3_s1_e6_c176_se0.25"],
        ["ir_r18_k3_s2_e6_c304_se0.25"],
        ["ir_r5_k3_s1_e6_c512_se0.25"],
    ],
    "efficientnetv2-l": [
        ["cn_r4_k3_s1_e1_c32_skip"],
        ["er_r7_k3_s2_e4_c64"],
        ["er_r7_k3_s2_e4_c96"],
        ["ir_r10_k3_s2_e4_c192_se0.25"],
        ["ir_r19_k3_s1_e6_c224_se0.25"],
        ["ir_r25_k3_s2_e6_c384_se0.25"],
        ["ir_r7_k3_s1_e6_c640_se0.25"],
    ],
    "efficientnetv2-xl": [
        ["cn_r4_k3_s1_e1_c32_skip"],
        ["er_r8_k3_s2_e4_c64"],
        ["er_r8_k3_s2_e4_c96"],
        ["ir_r16_k3_s2_e4_c192_se0.25"],
        ["ir_r24_k3_s1_e6_c256_se0.25"],
        ["ir_r32_k3_s2_e6_c512_se0.25"],
        ["ir_r8_k3_s1_e6_c640_se0.25"],
    ],
    # timm _gen_efficientnet (V1 B0).
    "efficientnet-b0": [
        ["ds_r1_k3_s1_e1_c16_se0.25"],
        ["ir_r2_k3_s2_e6_c24_se0.25"],
        ["ir_r2_k5_s2_e6_c40_se0.25"],
        ["ir_r3_k3_s2_e6_c80_se0.25"],
        ["ir_r3_k5_s1_e6_c112_se0.25"],
        ["ir_r4_k5_s2_e6_c192_se0.25"],
        ["ir_r1_k3_s1_e6_c320_se0.25"],
    ],
}

# (stem_size, num_features) timm passes for the same models.
TIMM_STEM_HEAD = {
    "efficientnetv2-b0": (32, 1280),
    "efficientnetv2-s": (24, 1280),
    "efficientnetv2-m": (24, 1280),
    "efficientnetv2-l": (32, 1280),
    "efficientnetv2-xl": (32, 1280),
    "efficientnet-b0": (32, 1280),
}


@pytest.mark.parametrize("name", sorted(TIMM_ARCH_DEFS))
def test_presets_match_timm_arch_def(name: str) -> None:
    assert to_timm(get_preset(name).spec) == TIMM_ARCH_DEFS[name]


@pytest.mark.parametrize("name", sorted(TIMM_STEM_HEAD))
def test_timm_kwargs(name: str) -> None:
    stem, head = TIMM_STEM_HEAD[name]
    assert timm_kwargs(get_preset(name).spec) == {
        "stem_size": stem,
        "fix_stem": True,
        "round_chs_fn": int,
        "num_features": head,
        "num_classes": 1000,
    }


def test_block_mapping_and_float_format() -> None:
    spec = decode(
        "stem8-fused_r1_k3_s1_e1_c8-fused_r2_k5_s2_e3_c16_se0.5-"
        "mbconv_r1_k7_s1_e1_c17_se0.3333333333333333-mbconv_r3_k3_s2_e8_c24_se0.25-head32-cls7"
    )
    assert to_timm(spec) == [
        ["cn_r1_k3_s1_e1_c8_skip"],
        ["er_r2_k5_s2_e3_c16_se0.5"],
        ["ds_r1_k7_s1_e1_c17_se0.3333333333333333"],
        ["ir_r3_k3_s2_e8_c24_se0.25"],
    ]
    assert _timm_blocks(to_timm(spec), timm_kwargs(spec)) == _our_blocks(spec)
    assert timm_kwargs(spec) == {"stem_size": 8, "fix_stem": True, "round_chs_fn": int,
                                 "num_features": 32, "num_classes": 7}


def test_fused_e1_with_se_is_not_expressible() -> None:
    spec = decode("stem8-fused_r1_k3_s1_e1_c8-fused_r1_k3_s1_e1_c8_se0.25-head32-cls7")
    with pytest.raises(SpecError, match=r"stage 2: fused e1 with se_ratio 0.25 is not expressible in timm"):
        to_timm(spec)


def test_num_classes_follows_spec() -> None:
    spec = dataclasses.replace(get_preset("efficientnetv2-s").spec, num_classes=10)
    assert timm_kwargs(spec)["num_classes"] == 10


# --------------------------------------------------------------------------- timm's builder rules
# timm 1.0.31, timm/layers/helpers.py, timm/models/_efficientnet_builder.py and
# _efficientnet_blocks.py, re-implemented so that the test needs no timm:
#   make_divisible(v, divisor=8, min_value=None, round_limit=0.9)
#   EfficientNet: stem = stem_size if fix_stem else round_chs_fn(stem_size); the default
#     round_chs_fn is round_channels = make_divisible(c * 1.0)
#   builder: out_chs = round_chs_fn(c) for every block; se_ratio /= exp_ratio (1.0 for ds)
#   ir / er: mid = make_divisible(in * e); SE on mid;  ds: SE on in;  cn: no mid, no SE
#   SqueezeExcite: rd_channels = round(chs * rd_ratio)


def _make_divisible(v: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def _round_channels(channels: int) -> int:
    return _make_divisible(channels * 1.0)


def _timm_blocks(arch_def: list[list[str]], kwargs: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(type, in, mid, out, stride, kernel, se) of every block timm builds."""
    round_chs: Callable[[int], int] = kwargs.get("round_chs_fn", _round_channels)
    chs = kwargs["stem_size"] if kwargs.get("fix_stem") else round_chs(kwargs["stem_size"])
    blocks = []
    for (row,) in arch_def:
        kind, *ops = row.split("_")
        opts = dict(re.match(r"([a-z]+)(.*)", op).groups() for op in ops if op != "skip")
        e = float(opts["e"])
        se = float(opts.get("se", 0.0))
        for j in range(int(opts["r"])):
            out = round_chs(int(opts["c"]))
            mid = _make_divisible(chs * e) if kind in ("ir", "er") else None
            if kind == "cn" or not se:
                se_chs = 0
            else:
                se_chs = round((mid or chs) * (se / (e if kind in ("ir", "er") else 1.0)))
            stride = int(opts["s"]) if j == 0 else 1
            blocks.append((kind, chs, mid, out, stride, int(opts["k"]), se_chs))
            chs = out
    return blocks


def _our_blocks(spec: ArchSpec) -> list[tuple[Any, ...]]:
    kinds = {("fused", True): "cn", ("fused", False): "er", ("mbconv", True): "ds",
             ("mbconv", False): "ir"}
    return [
        (kinds[b.block, b.expansion == 1], b.in_channels,
         None if b.expansion == 1 else b.mid_channels, b.out_channels, b.stride, b.kernel,
         b.se_channels)
        for b in spec.blocks()
    ]


def _exported_specs() -> list[ArchSpec]:
    rng = random.Random(0)
    specs = [preset.spec for preset in PRESETS.values()]
    for name in SHIPPED_SPACES:
        space = load_space(name)
        specs += [sample(space, rng, num_classes=10) for _ in range(10)]
    # widths that are not multiples of 8, yet every mid and SE width agrees with timm's rules
    specs.append(decode("stem12-fused_r1_k3_s1_e1_c12-fused_r2_k3_s2_e2_c20-"
                        "mbconv_r2_k3_s2_e2_c36_se0.25-mbconv_r1_k5_s1_e1_c44_se0.25-head100-cls10"))
    return specs


@pytest.mark.parametrize("spec", _exported_specs())
def test_timm_builds_exactly_our_widths(spec: ArchSpec) -> None:
    assert _timm_blocks(to_timm(spec), timm_kwargs(spec)) == _our_blocks(spec)


@pytest.mark.parametrize("arch, message", [
    # timm would build 269,988 parameters for our 225,687 (SE width 8 against 7).
    ("stem30-fused_r1_k3_s1_e1_c18-mbconv_r2_k3_s2_e4_c30_se0.25-fused_r2_k3_s2_e6_c36-"
     "mbconv_r2_k5_s2_e6_c44_se0.25-head100-cls10",
     r"^stage 2: not expressible in timm: timm's SE width round\(120 \* 0.25 / 4\) = 8 "
     r"differs from this spec's max\(1, int\(30 \* 0.25\)\) = 7$"),
    # timm would build 27,588 parameters for our 21,123 (mid width 112 against 108).
    ("stem32-mbconv_r2_k3_s1_e1_c18_se0.25-mbconv_r2_k3_s2_e6_c22_se0.25-head64-cls10",
     r"^stage 2: not expressible in timm: timm rounds a block's mid width to a multiple of 8, "
     r"and in_channels 18 x expansion 6 = 108 would become 112$"),
    # the first block of stage 2 is fine (16 x 6 = 96), the second is not (22 x 6 = 132)
    ("stem16-fused_r1_k3_s1_e1_c16-fused_r2_k3_s2_e6_c22-head64-cls10",
     r"^stage 2: .* in_channels 22 x expansion 6 = 132 would become 136$"),
    # a depthwise-separable stage (mbconv e1) has no mid width, but its SE is rounded
    ("stem16-fused_r1_k3_s1_e1_c30-mbconv_r1_k3_s1_e1_c32_se0.25-head64-cls10",
     r"^stage 2: .* round\(30 \* 0.25 / 1\) = 8 differs from this spec's max\(1, "
     r"int\(30 \* 0.25\)\) = 7$"),
])
def test_specs_timm_cannot_build_exactly_are_refused(arch: str, message: str) -> None:
    spec = decode(arch)
    with pytest.raises(SpecError, match=message):
        to_timm(spec)
    # and the refusal is right: under timm's rules the widths would differ
    from search_space.export import _stage_string

    rows = [[_stage_string(stage)] for stage in spec.stages]
    assert _timm_blocks(rows, timm_kwargs(spec)) != _our_blocks(spec)
