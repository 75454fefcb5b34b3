"""Below the trial boundary a candidate is a spec: evaluation never decodes a string."""

from __future__ import annotations

import math

import pytest

import nas.search.driver
import nas.search.trial
from nas.search.reward import RewardConfig
from nas.search.trial import Job, TrialContext, evaluate, time_reference
from proxy_train.data import load_data
from proxy_train.recipe import Recipe
from results.rows import Outcome
from search_space.codec import decode, encode
from search_space.cost import count_params

SPEC = decode("stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls3")
CONTEXT = TrialContext(
    recipe=Recipe(epochs=2, resolution=16, batch_size=8, max_train_batches_per_epoch=2,
                  randaug_magnitude=0, optimizer="adamw"),
    hardware="cpu", timing_batch=2, timing_resolution=16, 
    reward=RewardConfig(ref_step_time=5.0, ref_params=10_000), threads=1, timing_min_steps=3,
    timing_budget_s=0.5, timing_threads=1)


@pytest.fixture(scope="module")
def data():
    return load_data("synthetic:classes=3,per_class=12,test_per_class=2,resolution=16")


def test_job_config_round_trip() -> None:
    job = Job(4, SPEC, 99)
    config = job.to_config()
    assert config == {"number": 4, "arch": encode(SPEC), "seed": 99}
    assert Job.from_config(config) == job


def test_evaluation_never_decodes(data, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> None:
        raise AssertionError(f"decoded {text!r} below the trial boundary")

    for module in (nas.search.trial, nas.search.driver):
        monkeypatch.setattr(module, "decode", refuse)
    outcome = evaluate(Job(0, SPEC, 1), CONTEXT, data)
    assert isinstance(outcome, Outcome)
    assert outcome.status == "ok", outcome.reason
    assert outcome.spec is SPEC
    assert outcome.timing is not None and outcome.timing.ok
    assert outcome.training is not None and outcome.training.epochs_run == 2
    # A is the minival likelihood of the last epoch (the default estimate), not the top-1.
    loss = outcome.training.history[-1].minival_loss
    assert loss is not None
    assert outcome.reward == pytest.approx(CONTEXT.reward(
        math.exp(-loss), outcome.timing.median_ms, count_params(SPEC)))
    # the timed step is the trained step: same optimizer class, precision, memory format
    for key in ("optimizer_class", "precision", "weight_memory_format"):
        assert outcome.timing.policy[key] == outcome.training.policy[key]


def test_interim_outcomes_and_failures(data, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, Outcome]] = []
    outcome = evaluate(Job(1, SPEC, 2), CONTEXT, data,
                       report=lambda epoch, interim: seen.append((epoch, interim)) or False)
    assert [e for e, _ in seen] == [1, 2]
    first, last = seen[0][1], seen[1][1]
    assert (first.status, first.reason) == ("stopped", "stopped early after epoch 1")
    assert last.status == "ok" and last.reward is not None
    assert outcome.status == "ok"
    # Each interim reward is scored like the final one, with that epoch's minival loss.
    assert first.training is not None and first.timing is not None
    first_loss = first.training.history[-1].minival_loss
    assert first_loss is not None and len(first.training.history) == 1
    assert first.reward == pytest.approx(CONTEXT.reward(
        math.exp(-first_loss), first.timing.median_ms, count_params(SPEC)))

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(nas.search.trial, "train", explode)
    failed = evaluate(Job(2, SPEC, 3), CONTEXT, data)
    assert failed.status == "failed"
    assert failed.reason == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert failed.timing is not None and failed.timing.ok and failed.reward is None


def test_reference_is_timed_like_candidates() -> None:
    timing = time_reference(SPEC, CONTEXT)
    assert timing.ok and timing.batch_size == 2 and timing.resolution == 16
    assert timing.policy["optimizer_class"] == "AdamW"
