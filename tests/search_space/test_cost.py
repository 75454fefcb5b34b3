"""Golden numbers for the torch-free cost model (params, MACs, activation memory)."""

from __future__ import annotations

import pytest

from search_space.cost import (
    Cost,
    activation_memory,
    cost,
    count_macs,
    count_params,
    stage_costs,
)
from search_space.errors import NasError, SpecError
from search_space.presets import get_preset

# PyTorch-convention parameter counts at 1000 classes (torchvision / mmpretrain / timm).
GOLDEN_PARAMS = {
    "efficientnetv2-b0": 7_139_704,
    "efficientnetv2-b1": 8_141_052,
    "efficientnetv2-b2": 10_096_086,
    "efficientnetv2-b3": 14_358_406,
    "efficientnetv2-s": 21_458_488,
    "efficientnetv2-m": 54_139_356,
    "efficientnetv2-l": 118_515_272,
    "efficientnetv2-xl": 208_119_808,
    "efficientnet-b0": 5_288_548,
    "efficientnet-b4": 19_341_616,
}

# Conv + FC multiply-adds in GMACs (reference notes section 7.2, "[derived]" column).
GOLDEN_GMACS = [
    ("efficientnetv2-b0", 192, 0.528),
    ("efficientnetv2-b0", 224, 0.718),
    ("efficientnetv2-b1", 192, 0.747),
    ("efficientnetv2-b1", 240, 1.197),
    ("efficientnetv2-b2", 208, 1.043),
    ("efficientnetv2-b2", 260, 1.698),
    ("efficientnetv2-b3", 240, 1.908),
    ("efficientnetv2-b3", 300, 3.011),
    ("efficientnetv2-s", 224, 2.850),
    ("efficientnetv2-s", 300, 5.308),
    ("efficientnetv2-s", 384, 8.366),
    ("efficientnetv2-m", 384, 15.737),
    ("efficientnetv2-m", 480, 24.582),
    ("efficientnetv2-l", 384, 35.899),
    ("efficientnetv2-l", 480, 56.080),
    ("efficientnetv2-xl", 384, 52.529),
    ("efficientnetv2-xl", 512, 93.353),
]


@pytest.mark.parametrize("name, expected", sorted(GOLDEN_PARAMS.items()))
def test_preset_params_exact(name: str, expected: int) -> None:
    assert count_params(get_preset(name).spec) == expected


@pytest.mark.parametrize("name, resolution, gmacs", GOLDEN_GMACS)
def test_preset_macs_within_half_percent(name: str, resolution: int, gmacs: float) -> None:
    macs = count_macs(get_preset(name).spec, resolution)
    assert abs(macs / 1e9 - gmacs) <= 0.005 * gmacs


def test_v2s_stage_breakdown() -> None:
    rows = stage_costs(get_preset("efficientnetv2-s").spec, 224)
    assert [r.name for r in rows] == ["stem"] + [f"stage{i}" for i in range(1, 7)] + [
        "head",
        "classifier",
    ]
    assert [r.index for r in rows] == list(range(9))
    assert rows[0].params == 696
    stages = [10_464, 303_552, 589_184, 917_680, 3_463_840, 14_561_832]
    assert [r.params for r in rows[1:7]] == stages
    assert rows[7].params == 330_240
    assert rows[8].params == 1_281_000
    assert [r.resolution for r in rows] == [112, 112, 56, 28, 14, 14, 7, 7, 1]


def test_v2s_exact_macs_at_224() -> None:
    spec = get_preset("efficientnetv2-s").spec
    rows = stage_costs(spec, 224)
    # stem: 3*3*3*24 weights at 112x112; classifier: 1280*1000.
    assert rows[0].macs == 27 * 24 * 112 * 112
    assert rows[-1].macs == 1_280_000
    assert rows[-2].macs == 256 * 1280 * 7 * 7
    assert sum(r.macs for r in rows) == count_macs(spec, 224)


def test_stage_costs_sum_to_totals(random_specs) -> None:
    for spec in random_specs(30, seed=1):
        for res in (32, 33, 65):
            rows = stage_costs(spec, res)
            total = cost(spec, res, batch_size=3, bytes_per_element=4)
            assert sum(r.params for r in rows) == count_params(spec) == total.params
            assert sum(r.macs for r in rows) == count_macs(spec, res) == total.macs
            assert sum(r.activations for r in rows) * 12 == total.activation_bytes
            assert activation_memory(spec, res, 3, 4) == total.activation_bytes


def test_cost_returns_dataclass() -> None:
    spec = get_preset("efficientnetv2-b0").spec
    c = cost(spec, 224)
    assert isinstance(c, Cost)
    assert c == Cost(count_params(spec), count_macs(spec, 224), activation_memory(spec, 224))


def test_same_padding_output_sizes() -> None:
    # ceil(H / stride) at every stride-2 stage: 225 -> 113 -> 57 -> 29 -> 15 -> 8.
    rows = stage_costs(get_preset("efficientnetv2-b0").spec, 225)
    assert [r.resolution for r in rows[:7]] == [113, 113, 57, 29, 15, 15, 8]


def test_activation_memory_monotone_and_linear() -> None:
    spec = get_preset("efficientnetv2-s").spec
    values = [activation_memory(spec, r) for r in range(32, 400, 17)]
    assert all(a < b for a, b in zip(values, values[1:]))
    one = activation_memory(spec, 224, batch_size=1, bytes_per_element=2)
    assert activation_memory(spec, 224, batch_size=8, bytes_per_element=2) == 8 * one
    assert activation_memory(spec, 224, batch_size=1, bytes_per_element=4) == 2 * one
    # Bigger networks keep more activations.
    assert activation_memory(get_preset("efficientnetv2-m").spec, 224) > one


def test_activation_memory_counts_documented_tensors() -> None:
    spec = get_preset("efficientnetv2-s").spec
    rows = stage_costs(spec, 224)
    # stem: input image + conv, BN and SiLU outputs at 112x112.
    assert rows[0].activations == 3 * 224 * 224 + 3 * 24 * 112 * 112
    # stage 1: two fused e1 blocks (conv, BN, SiLU) with a residual add each.
    assert rows[1].activations == 2 * (3 + 1) * 24 * 112 * 112
    # classifier: pooled features, dropout output, logits.
    assert rows[-1].activations == 2 * 1280 + 1000


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "224"])
def test_bad_resolution_is_a_spec_error(bad: object) -> None:
    spec = get_preset("efficientnetv2-b0").spec
    with pytest.raises(SpecError, match="resolution"):
        count_macs(spec, bad)  # type: ignore[arg-type]
    with pytest.raises(NasError):
        cost(spec, bad)  # type: ignore[arg-type]


def test_bad_batch_size_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="batch_size 0"):
        activation_memory(get_preset("efficientnetv2-b0").spec, 224, batch_size=0)


def test_cost_module_is_torch_free() -> None:
    import subprocess
    import sys

    code = (
        "import sys, search_space.cost, search_space.presets, search_space.rounding;"
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
