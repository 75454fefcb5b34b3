"""timm export: the presets give timm's own arch_def strings, verbatim."""

from __future__ import annotations

import dataclasses

import pytest

from search_space.codec import decode
from search_space.errors import SpecError
from search_space.export import timm_kwargs, to_timm
from search_space.presets import get_preset

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
        "num_features": head,
        "num_classes": 1000,
    }


def test_block_mapping_and_float_format() -> None:
    spec = decode(
        "stem8-fused_r1_k3_s1_e1_c8-fused_r2_k5_s2_e3_c16_se0.5-mbconv_r1_k7_s1_e1_c17"
        "-mbconv_r3_k3_s2_e6_c24_se0.3333333333333333-head32-cls7"
    )
    assert to_timm(spec) == [
        ["cn_r1_k3_s1_e1_c8_skip"],
        ["er_r2_k5_s2_e3_c16_se0.5"],
        ["ds_r1_k7_s1_e1_c17"],
        ["ir_r3_k3_s2_e6_c24_se0.3333333333333333"],
    ]
    assert timm_kwargs(spec) == {"stem_size": 8, "fix_stem": True, "num_features": 32, "num_classes": 7}


def test_fused_e1_with_se_is_not_expressible() -> None:
    spec = decode("stem8-fused_r1_k3_s1_e1_c8-fused_r1_k3_s1_e1_c8_se0.25-head32-cls7")
    with pytest.raises(SpecError, match=r"stage 2: fused e1 with se_ratio 0.25 is not expressible in timm"):
        to_timm(spec)


def test_num_classes_follows_spec() -> None:
    spec = dataclasses.replace(get_preset("efficientnetv2-s").spec, num_classes=10)
    assert timm_kwargs(spec)["num_classes"] == 10
