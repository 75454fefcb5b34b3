"""Scaling rules: calibration against the official M/L/XL, the size cap, late-stage depth,
budgets, and the reproducible fit of the constants."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scaling.errors import ScalingError
from scaling.fit import fit_coefficients
from scaling.rules import (
    DEFAULT_RULE,
    TARGET_PHI,
    added_layers,
    eval_size_for,
    late_share,
    scale,
    scale_to_budget,
    scale_to_target,
    train_size_for,
)
from search_space.cost import count_macs, count_params
from search_space.presets import get_preset
from search_space.spec import ArchSpec, StageSpec

S = get_preset("efficientnetv2-s")
OFFICIAL = {  # params, MACs at the official eval size, official eval size
    "M": (54_139_356, 24_582_000_000, 480),
    "L": (118_515_272, 56_080_000_000, 480),
    "XL": (208_119_808, 93_353_000_000, 512),
}
RAISED = replace(DEFAULT_RULE, max_size=512)


def _rel(got: int, want: int) -> float:
    return abs(got / want - 1)


@pytest.mark.parametrize("target", ["M", "L", "XL"])
def test_params_and_macs_within_10_percent_of_official(target: str) -> None:
    params, macs, size = OFFICIAL[target]
    scaled = scale_to_target(S.spec, target, RAISED if target == "XL" else DEFAULT_RULE,
                             base_eval_size=S.eval_size)
    assert scaled.eval_size == size
    assert _rel(count_params(scaled.spec), params) <= 0.10
    assert _rel(count_macs(scaled.spec, size), macs) <= 0.10


def test_official_macs_figures_match_the_cost_model() -> None:
    for target, (params, macs, size) in OFFICIAL.items():
        spec = get_preset(f"efficientnetv2-{target.lower()}").spec
        assert count_params(spec) == params
        assert _rel(count_macs(spec, size), macs) < 0.001


def test_capped_xl_stays_at_480_and_matches_official_xl_at_480() -> None:
    scaled = scale_to_target(S.spec, "XL", base_eval_size=S.eval_size)
    assert (scaled.eval_size, scaled.train_size) == (480, 384)
    official = get_preset("efficientnetv2-xl").spec
    assert _rel(count_macs(scaled.spec, 480), count_macs(official, 480)) <= 0.10


def test_exact_derived_numbers() -> None:
    got = {t: scale_to_target(S.spec, t, base_eval_size=384) for t in TARGET_PHI}
    assert {t: count_params(s.spec) for t, s in got.items()} == {
        "M": 56_234_078, "L": 126_207_994, "XL": 201_798_204}
    assert [(st.layers, st.out_channels) for st in got["L"].spec.stages] == [
        (3, 32), (7, 64), (7, 88), (11, 176), (18, 232), (32, 376), (7, 600)]
    appended = got["L"].spec.stages[-1]
    assert (appended.block, appended.kernel, appended.expansion, appended.stride,
            appended.se_ratio) == ("mbconv", 3, 6, 1, 0.25)
    assert got["L"].coefficients.extra_stage == (7, 600)
    assert got["L"].spec.head_channels == 1280


@pytest.mark.parametrize("target", ["M", "L", "XL"])
def test_eval_size_capped_at_480_by_default(target: str) -> None:
    scaled = scale_to_target(S.spec, target, base_eval_size=384)
    assert scaled.eval_size <= 480
    assert scaled.train_size == 384


def test_raising_the_cap_lifts_the_size() -> None:
    assert scale_to_target(S.spec, "XL", RAISED, base_eval_size=384).eval_size == 512
    big = replace(DEFAULT_RULE, max_size=1024)
    assert scale_to_target(S.spec, "XL", big, base_eval_size=384).eval_size == 768


def test_size_rules() -> None:
    assert [train_size_for(e) for e in (384, 480, 512)] == [288, 384, 384]
    assert eval_size_for(1.0, 384) == 480
    assert eval_size_for(0.0, 300) == 300
    with pytest.raises(ScalingError, match="max size 256 is below the base's eval size 384"):
        scale(S.spec, 1.0, replace(DEFAULT_RULE, max_size=256), base_eval_size=384)
    with pytest.raises(ScalingError, match="base eval size True must be an integer"):
        scale(S.spec, 1.0, base_eval_size=True)
    with pytest.raises(ScalingError, match="phi nan must be a number"):
        scale(S.spec, float("nan"))


@pytest.mark.parametrize("target", ["M", "L", "XL"])
def test_most_added_layers_go_to_the_last_three_stages(target: str) -> None:
    derived = scale_to_target(S.spec, target).spec
    added = added_layers(S.spec, derived)
    assert all(a >= 0 for a in added) and len(added) == 7
    assert late_share(S.spec, derived) >= 0.6


def test_phi_zero_is_identity_and_growth_is_monotone() -> None:
    assert scale(S.spec, 0.0).spec == S.spec
    previous = count_params(S.spec)
    for phi in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0):
        now = count_params(scale(S.spec, phi).spec)
        assert now >= previous
        previous = now


@pytest.mark.parametrize("budget", [40_000_000, 80_000_000, 150_000_000])
def test_params_budget_fits_just_under(budget: int) -> None:
    scaled = scale_to_budget(S.spec, params=budget, base_eval_size=384)
    got = count_params(scaled.spec)
    assert budget * 0.85 <= got <= budget


def test_macs_budget_counts_at_the_eval_size() -> None:
    budget = 30_000_000_000
    scaled = scale_to_budget(S.spec, macs=budget, base_eval_size=384)
    got = count_macs(scaled.spec, scaled.eval_size)
    assert budget * 0.85 <= got <= budget


def test_budget_below_the_base_is_an_error() -> None:
    with pytest.raises(ScalingError, match="smaller than the base"):
        scale_to_budget(S.spec, params=10_000_000)
    with pytest.raises(ScalingError, match="exactly one budget"):
        scale_to_budget(S.spec, params=10, macs=10)


def test_unknown_target() -> None:
    with pytest.raises(ScalingError, match=r"unknown target 'XXL'; expected one of \['M', 'L', 'XL'\]"):
        scale_to_target(S.spec, "XXL")


def test_small_base_scales_with_any_stage_count() -> None:
    tiny = ArchSpec(16, (StageSpec("fused", 1, 3, 1, 16, 1),
                         StageSpec("mbconv", 2, 3, 4, 24, 2, 0.25)), head_channels=64,
                    num_classes=10)
    scaled = scale_to_target(tiny, "M", base_eval_size=64)
    assert len(scaled.spec.stages) == 3 and scaled.spec.num_classes == 10
    assert scaled.eval_size == 96 and scaled.train_size == 64


def test_fit_reproduces_the_constants() -> None:
    fit = fit_coefficients()
    assert fit.rule == DEFAULT_RULE
    assert fit.target_phi == TARGET_PHI
