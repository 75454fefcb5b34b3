"""The step we time is the step we train: one policy, one step function."""

from __future__ import annotations

import pytest
import torch

import proxy_train.step as step_module
from proxy_train.data import DataSplits, load_data
from proxy_train.errors import RecipeError
from proxy_train.loop import train
from proxy_train.recipe import Recipe
from proxy_train.records import FailureKind
from proxy_train.step import (
    StepPolicy,
    TrainStep,
    describe_failure,
    failure_kind,
    runtime_settings,
)
from proxy_train.timing import time_training_step
from search_space.codec import decode
from search_space.model import build_model

TINY = decode("stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls3")
SMOKE = Recipe(epochs=1, resolution=16, batch_size=8, max_train_batches_per_epoch=2,
               randaug_magnitude=0, eval_batch_size=64)
SAME = ("optimizer", "optimizer_class", "precision", "memory_format", "weight_memory_format",
        "lr", "weight_decay", "label_smoothing")


@pytest.fixture(scope="module")
def tiny_data() -> DataSplits:
    return load_data("synthetic:classes=3,per_class=12,test_per_class=2,resolution=16")


@pytest.mark.parametrize(("optimizer", "cls"), [("rmsprop", "RMSpropTF"), ("sgd", "SGD"),
                                                ("adamw", "AdamW")])
def test_timed_step_is_the_trained_step(tiny_data: DataSplits, optimizer: str, cls: str) -> None:
    recipe = SMOKE.replace(optimizer=optimizer)
    trained = train(TINY, recipe, tiny_data)
    timed = time_training_step(TINY, target="cpu", resolution=16, batch_size=2, num_classes=None,
                               recipe=recipe, min_steps=2, max_steps=2, warmup_max_steps=0)
    assert trained.ok and timed.ok
    assert {k: trained.policy[k] for k in SAME} == {k: timed.policy[k] for k in SAME}
    assert timed.policy["optimizer_class"] == cls
    assert timed.policy["weight_memory_format"] == "channels_last"
    assert (timed.precision, timed.memory_format, timed.optimizer) == \
        ("fp32", "channels_last", optimizer)


def test_both_paths_run_train_step(tiny_data: DataSplits,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = TrainStep.__call__

    def spy(self: TrainStep, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(type(self.optimizer).__name__)
        return real(self, x, y)

    monkeypatch.setattr(TrainStep, "__call__", spy)
    train(TINY, SMOKE, tiny_data)
    trained_calls = len(calls)
    time_training_step(TINY, target="cpu", resolution=16, batch_size=2, recipe=SMOKE,
                       min_steps=3, max_steps=3, warmup_max_steps=0)
    assert trained_calls == 2 and len(calls) == 5
    assert set(calls) == {"RMSpropTF"}


def test_policy_from_recipe() -> None:
    recipe = Recipe(optimizer="sgd", lr=0.2, batch_size=128, weight_decay=4e-5,
                    label_smoothing=0.2)
    policy = StepPolicy.of(recipe, "cpu")
    assert (policy.precision, policy.memory_format, policy.optimizer) == \
        ("fp32", "channels_last", "sgd")
    assert policy.lr == pytest.approx(0.1) and policy.weight_decay == 4e-5
    assert StepPolicy.of(recipe, "cpu", "bf16").precision == "bf16"
    with pytest.raises(RecipeError, match="precision 'fp8' not in"):
        StepPolicy.of(recipe, "cpu", "fp8")


def test_weight_decay_skips_norms_and_biases() -> None:
    model = build_model(TINY)
    optimizer = StepPolicy.of(Recipe(weight_decay=1e-5), "cpu").make_optimizer(model)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 1e-5 and plain["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"])
    assert all(p.ndim <= 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_bf16_step_on_cpu_trains() -> None:
    model = build_model(TINY)
    policy = StepPolicy.of(Recipe(optimizer="adamw"), "cpu", "bf16")
    step = TrainStep(model, policy, torch.device("cpu"))
    x = torch.randn(4, 3, 16, 16)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()
    before = [p.detach().clone() for p in model.parameters()]
    loss = step(x, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_runtime_settings_are_scoped() -> None:
    threads = torch.get_num_threads()
    flushing = step_module._flushes_denormals()
    with runtime_settings(torch.device("cpu"), threads=threads + 1):
        assert torch.get_num_threads() == threads + 1
        assert step_module._flushes_denormals()
    assert torch.get_num_threads() == threads
    assert step_module._flushes_denormals() == flushing


@pytest.mark.parametrize(("error", "reason"), [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB\nmore"),
     "out of memory: CUDA out of memory. Tried to allocate 2 GiB"),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory"),
     "out of memory: DefaultCPUAllocator: can't allocate memory: out of memory"),
    (ValueError("bad kernel"), "ValueError: bad kernel"),
    (KeyError(), "KeyError: "),
])
def test_one_wording_of_failures(error: BaseException, reason: str) -> None:
    assert describe_failure(error) == reason
    assert len(describe_failure(RuntimeError("x" * 2000))) == 500


@pytest.mark.parametrize(("error", "kind"), [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), FailureKind.OOM),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory"), FailureKind.OOM),
    (RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED"), FailureKind.ERROR),
    (ValueError("bad kernel"), FailureKind.ERROR),
])
def test_the_kind_of_a_failure(error: BaseException, kind: FailureKind) -> None:
    assert failure_kind(error) is kind
    assert describe_failure(error).startswith("out of memory: ") == (kind is FailureKind.OOM)
