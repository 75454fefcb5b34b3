"""Presets resolve to the official architectures; rounding edge cases; lookup errors."""

from __future__ import annotations

import dataclasses

import pytest

from search_space.cost import count_params
from search_space.errors import NasError, SpecError
from search_space.presets import PRESETS, V2_BASE_BLOCK, Preset, from_official, get_preset
from search_space.rounding import round_filters, round_repeats
from search_space.spec import FUSED, MBCONV

# stem, stage outputs, stage repeats, head (reference notes section 1.4; V1 B4 from timm).
RESOLVED = {
    "efficientnetv2-b0": (32, (16, 32, 48, 96, 112, 192), (1, 2, 2, 3, 5, 8), 1280),
    "efficientnetv2-b1": (32, (16, 32, 48, 96, 112, 192), (2, 3, 3, 4, 6, 9), 1280),
    "efficientnetv2-b2": (32, (16, 32, 56, 104, 120, 208), (2, 3, 3, 4, 6, 10), 1408),
    "efficientnetv2-b3": (40, (16, 40, 56, 112, 136, 232), (2, 3, 3, 5, 7, 12), 1536),
    "efficientnetv2-s": (24, (24, 48, 64, 128, 160, 256), (2, 4, 4, 6, 9, 15), 1280),
    "efficientnetv2-m": (24, (24, 48, 80, 160, 176, 304, 512), (3, 5, 5, 7, 14, 18, 5), 1280),
    "efficientnetv2-l": (32, (32, 64, 96, 192, 224, 384, 640), (4, 7, 7, 10, 19, 25, 7), 1280),
    "efficientnetv2-xl": (32, (32, 64, 96, 192, 256, 512, 640), (4, 8, 8, 16, 24, 32, 8), 1280),
    "efficientnet-b0": (32, (16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1), 1280),
    "efficientnet-b4": (48, (24, 32, 56, 112, 160, 272, 448), (2, 4, 4, 6, 6, 8, 2), 1792),
}

# (train_size, eval_size, dropout, randaug, mixup): efficientnetv2_params; V1 train = eval.
SETTINGS = {
    "efficientnetv2-b0": (192, 224, 0.2, 0, 0.0),
    "efficientnetv2-b1": (192, 240, 0.2, 0, 0.0),
    "efficientnetv2-b2": (208, 260, 0.3, 0, 0.0),
    "efficientnetv2-b3": (240, 300, 0.3, 0, 0.0),
    "efficientnetv2-s": (300, 384, 0.2, 10, 0.0),
    "efficientnetv2-m": (384, 480, 0.3, 15, 0.2),
    "efficientnetv2-l": (384, 480, 0.4, 20, 0.5),
    "efficientnetv2-xl": (384, 512, 0.4, 20, 0.5),
    "efficientnet-b0": (224, 224, 0.2, 0, 0.0),
    "efficientnet-b4": (380, 380, 0.4, 0, 0.0),
}


def test_preset_names() -> None:
    assert set(PRESETS) == set(RESOLVED)
    assert all(p.name == name for name, p in PRESETS.items())


@pytest.mark.parametrize("name", sorted(RESOLVED))
def test_resolved_architecture(name: str) -> None:
    stem, outs, reps, head = RESOLVED[name]
    spec = get_preset(name).spec
    assert spec.stem_channels == stem
    assert tuple(s.out_channels for s in spec.stages) == outs
    assert tuple(s.layers for s in spec.stages) == reps
    assert spec.head_channels == head
    assert spec.num_classes == 1000


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_training_settings(name: str) -> None:
    p = get_preset(name)
    assert (p.train_size, p.eval_size, p.dropout, p.randaug, p.mixup) == SETTINGS[name]


def test_v2s_block_types() -> None:
    stages = get_preset("efficientnetv2-s").spec.stages
    assert [s.block for s in stages] == [FUSED] * 3 + [MBCONV] * 3
    assert [s.expansion for s in stages] == [1, 4, 4, 4, 6, 6]
    assert [s.stride for s in stages] == [1, 2, 2, 2, 1, 2]
    assert [s.se_ratio for s in stages] == [0.0] * 3 + [0.25] * 3
    assert {s.kernel for s in stages} == {3}


def test_v1_b4_blocks() -> None:
    stages = get_preset("efficientnet-b4").spec.stages
    assert {s.block for s in stages} == {MBCONV}
    assert [s.kernel for s in stages] == [3, 3, 5, 3, 5, 5, 3]
    assert [s.expansion for s in stages] == [1, 6, 6, 6, 6, 6, 6]
    assert all(s.se_ratio == 0.25 for s in stages)


def test_presets_are_frozen() -> None:
    p = get_preset("efficientnetv2-s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.eval_size = 1  # type: ignore[misc]
    assert dataclasses.replace(p, eval_size=256).spec is p.spec
    assert isinstance(p, Preset)


def test_round_filters_official_rule() -> None:
    assert round_filters(32, 1.0) == 32
    assert round_filters(1280, 1.1) == 1408
    assert round_filters(1280, 1.2) == 1536
    assert round_filters(32, 1.2) == 40
    assert round_filters(16, 1.2) == 16  # 19.2 -> 16: no 0.9 bump in V2
    assert round_filters(16, 1.2, round_limit=0.9) == 24  # 16 < 0.9 * 19.2 -> bump
    assert round_filters(32, 1.4, round_limit=0.9) == 48
    assert round_filters(16, 1.4, round_limit=0.9) == 24
    assert round_filters(1280, 1.4, round_limit=0.9) == 1792
    assert round_filters(2, 1.0) == 8  # min_depth defaults to the divisor
    assert round_filters(2, 1.0, min_depth=4) == 4
    assert round_filters(37, 0.0) == 37  # falsy multiplier: unchanged
    assert round_filters(100, 1.0, divisor=1) == 100


def test_round_repeats_ceil_boundaries() -> None:
    assert round_repeats(5, 1.2) == 6  # 6.0 exactly, not 7
    assert round_repeats(5, 1.4) == 7  # 7.0 exactly, not 8
    assert round_repeats(1, 1.1) == 2
    assert round_repeats(8, 1.4) == 12
    assert round_repeats(3, 1.0) == 3


def test_b3_with_the_09_rule_differs() -> None:
    spec = from_official(V2_BASE_BLOCK, 1.2, 1.4, round_limit=0.9)
    assert spec.stages[0].out_channels == 24
    assert count_params(spec) == 14_377_062
    assert count_params(from_official(V2_BASE_BLOCK, 1.2, 1.4)) == 14_358_406


def test_from_official_num_classes() -> None:
    spec = from_official(V2_BASE_BLOCK, 1.0, 1.0, num_classes=10)
    assert spec.num_classes == 10
    assert count_params(spec) == 7_139_704 - 1280 * 990 - 990


@pytest.mark.parametrize(
    "blocks, match",
    [
        (["r1_k3_s1_e1_i32_o16_x1"], "bad token 'x1'"),
        (["r1_k3_s1_e1_o16"], "missing \\['i'\\]"),
        (["r1_k3_s1_e1_i32_o16", "r1_k3_s1_e1_i24_o16"], "input 24 != previous output 16"),
        ([], "empty"),
    ],
)
def test_from_official_errors(blocks: list[str], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        from_official(blocks, 1.0, 1.0)


@pytest.mark.parametrize(
    "alias, name",
    [
        ("EfficientNetV2-S", "efficientnetv2-s"),
        ("efficientnetv2_m", "efficientnetv2-m"),
        ("v2-s", "efficientnetv2-s"),
        ("V2-XL", "efficientnetv2-xl"),
        ("efficientnet_v2_l", "efficientnetv2-l"),
        ("v1-b4", "efficientnet-b4"),
        (" efficientnet-b0 ", "efficientnet-b0"),
    ],
)
def test_get_preset_aliases(alias: str, name: str) -> None:
    assert get_preset(alias) is PRESETS[name]


def test_get_preset_unknown_names_the_value_and_the_choices() -> None:
    with pytest.raises(SpecError) as info:
        get_preset("efficientnetv2-q")
    message = str(info.value)
    assert "'efficientnetv2-q'" in message
    for name in PRESETS:
        assert name in message
    assert isinstance(info.value, NasError)
