from __future__ import annotations

import dataclasses
import math

import pytest

from nas.search.reward import RewardConfig, RewardError, likelihood, normalize, reward
from search_space.errors import NasError


def test_reward_exact_numbers() -> None:
    got = reward(0.8, 20.0, 1_000_000, ref_step_time=10.0, ref_params=2_000_000)
    assert got == pytest.approx(0.8 * 2 ** -0.07 * 0.5 ** -0.05, rel=1e-15)
    assert got == pytest.approx(0.7889862, abs=1e-7)


def test_reference_scores_its_accuracy() -> None:
    assert reward(0.75, 12.5, 19_341_616, ref_step_time=12.5, ref_params=19_341_616) == 0.75


def test_custom_exponents() -> None:
    got = reward(0.5, 4.0, 9.0, ref_step_time=1.0, ref_params=1.0, w=-0.5, v=0.5)
    assert got == pytest.approx(0.5 * 0.5 * 3.0)


def test_zero_accuracy_is_zero_reward() -> None:
    assert reward(0.0, 3.0, 3.0, ref_step_time=1.0, ref_params=1.0) == 0.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(accuracy=1.2), "accuracy 1.2 must be in [0, 1]"),
    (dict(accuracy=-0.1), "accuracy -0.1 must be in [0, 1]"),
    (dict(accuracy=None), "accuracy None must be a number"),
    (dict(accuracy=float("nan")), "accuracy nan must be finite"),
    (dict(step_time=0.0), "step_time 0.0 must be > 0"),
    (dict(params=-5), "params -5 must be > 0"),
    (dict(ref_step_time=0), "ref_step_time 0 must be > 0"),
    (dict(ref_params=None), "ref_params None must be a number"),
    (dict(step_time=True), "step_time True must be a number"),
])
def test_invalid_inputs_name_the_value(kwargs: dict, message: str) -> None:
    args = dict(accuracy=0.5, step_time=1.0, params=10, ref_step_time=1.0, ref_params=10)
    args.update(kwargs)
    with pytest.raises(RewardError) as info:
        reward(args.pop("accuracy"), args.pop("step_time"), args.pop("params"), **args)
    assert str(info.value) == message
    assert isinstance(info.value, NasError) and isinstance(info.value, ValueError)


def test_config_is_frozen_and_computes_the_same() -> None:
    config = RewardConfig(ref_step_time=10.0, ref_params=2_000_000,
                          reference_arch="efficientnet-b4")
    assert (config.w, config.v) == (-0.07, -0.05)
    assert config(0.8, 20.0, 1_000_000) == reward(0.8, 20.0, 1_000_000, ref_step_time=10.0,
                                                 ref_params=2_000_000)
    assert config.normalize(20.0, 1_000_000) == (2.0, 0.5)
    assert normalize(5.0, 4, ref_step_time=10.0, ref_params=2) == (0.5, 2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.w = 0.0  # type: ignore[misc]
    assert RewardConfig.from_dict(config.to_dict()) == config


def test_config_validates() -> None:
    with pytest.raises(RewardError, match="ref_params 0 must be > 0"):
        RewardConfig(ref_step_time=1.0, ref_params=0)
    with pytest.raises(RewardError, match="unknown reward field 'alpha'"):
        RewardConfig.from_dict({"alpha": 1, "ref_step_time": 1.0, "ref_params": 1})


def test_a_candidate_without_accuracy_scores_none() -> None:
    config = RewardConfig(ref_step_time=10.0, ref_params=2_000_000)
    assert config(None, 20.0, 1_000_000) is None
    assert config(0.5, 10.0, 2_000_000) == 0.5  # the reference's reward is its accuracy


def test_a_proxy_run_is_scored_by_its_minival_likelihood_or_its_top1() -> None:
    likely = RewardConfig(ref_step_time=10.0, ref_params=2_000_000)
    assert likely.estimate == "likelihood"  # the default
    # exp(-loss): a loss of ln 4 is a geometric mean probability of 1/4 for the true class.
    assert likelihood(math.log(4)) == pytest.approx(0.25, rel=1e-15)
    assert likelihood(0.0) == 1.0
    assert likely.accuracy_of(0.9, math.log(4)) == pytest.approx(0.25)
    assert likely.proxy(0.9, math.log(4), 20.0, 1_000_000) == pytest.approx(
        reward(0.25, 20.0, 1_000_000, ref_step_time=10.0, ref_params=2_000_000))
    assert likely.proxy(0.9, None, 10.0, 2_000_000) == 0.9  # no loss (a surrogate): top-1
    assert likely.proxy(None, None, 10.0, 2_000_000) is None
    top1 = dataclasses.replace(likely, estimate="top1")
    assert top1.proxy(0.9, math.log(4), 10.0, 2_000_000) == 0.9
    assert RewardConfig.from_dict(top1.to_dict()) == top1
    with pytest.raises(RewardError, match=r"unknown accuracy estimate 'top5'; expected one of "
                                          r"\['likelihood', 'top1'\]"):
        RewardConfig(ref_step_time=1.0, ref_params=1, estimate="top5")
    with pytest.raises(RewardError, match="minival_loss -0.1 must be >= 0"):
        likelihood(-0.1)
