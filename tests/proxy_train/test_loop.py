"""Contracts of the proxy-training loop and the recipe."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import proxy_train.loop as loop
import proxy_train.step as step_module
from proxy_train.data import DataSplits, load_data
from proxy_train.datasets.sources import BUILT_IN_DATA
from proxy_train.errors import RecipeError
from proxy_train.loop import TrainResult, lr_at, train
from proxy_train.recipe import DEFAULT_LR, Recipe
from proxy_train.records import FailureKind
from search_space.codec import decode

TINY = decode("stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls10")
SMALL = decode("stem16-fused_r1_k3_s1_e1_c16-fused_r1_k3_s2_e4_c24-mbconv_r2_k3_s2_e4_c48"
               "_se0.25-mbconv_r1_k3_s2_e4_c80_se0.25-head256-cls10")
SMOKE = Recipe(epochs=3, resolution=16, batch_size=16, max_train_batches_per_epoch=2,
               randaug_magnitude=0, eval_batch_size=64)


@pytest.fixture(scope="module")
def tiny_data() -> DataSplits:
    return load_data("synthetic:classes=3,per_class=20,test_per_class=2,resolution=32")


# --- recipe --------------------------------------------------------------------------------

def test_recipe_round_trip_and_defaults() -> None:
    r = Recipe()
    assert (r.epochs, r.optimizer, r.weight_decay, r.label_smoothing) == (10, "rmsprop", 1e-5, 0.1)
    assert Recipe.from_dict(r.to_dict()) == r
    quick = Recipe.cpu_quick()
    assert Recipe.from_dict(quick.to_dict()) == quick
    assert (quick.resolution, quick.batch_size, quick.epochs, quick.cpu_threads) == (32, 32, 4, 1)
    assert (quick.max_train_batches_per_epoch, quick.crop_area, quick.ema_decay) == (None, 1.0, 0.99)
    assert r.train_resolution(64) == 32 and r.train_resolution(40) == 32
    assert r.train_resolution(300) == 150
    assert Recipe(batch_size=512).peak_lr() == pytest.approx(DEFAULT_LR["rmsprop"] * 2)
    assert Recipe(lr=0.1, batch_size=128).peak_lr() == pytest.approx(0.05)


@pytest.mark.parametrize("changes,message", [
    ({"optimizer": "adam"}, "optimizer 'adam' not in ('rmsprop', 'sgd', 'adamw')"),
    ({"epochs": 0}, "epochs 0 must be an integer >= 1"),
    ({"lr": -1.0}, "lr -1.0 must be None or a number > 0"),
    ({"schedule": "step"}, "schedule 'step' not in"),
    ({"dropout": 1.5}, "dropout 1.5 must be a number in"),
    ({"resolution": 4}, "resolution 4 must be None or an integer >= 8"),
    ({"cpu_threads": 0}, "cpu_threads 0 must be None or an integer >= 1"),
    ({"zero_init": 1}, "zero_init 1 must be true or false"),
    ({"warmup": 1}, "unknown recipe field ['warmup']"),
])
def test_recipe_errors(changes: dict, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        Recipe.from_dict({**Recipe().to_dict(), **changes})
    assert message in str(info.value)


# --- the loop ------------------------------------------------------------------------------

def test_smoke_run_result_fields(tiny_data: DataSplits) -> None:
    result = train(TINY, SMOKE, tiny_data, seed=4)
    assert isinstance(result, TrainResult)
    assert (result.status, result.reason) == ("ok", "")
    assert (result.epochs_run, result.steps_run) == (3, 6)
    assert len(result.loss_curve) == 3 and len(result.accuracy_curve) == 3
    assert all(math.isfinite(v) for v in result.loss_curve)
    assert result.accuracy == result.accuracy_curve[-1]
    assert 0.0 <= result.accuracy <= 1.0
    assert (result.seed, result.resolution, result.device, result.precision) == (4, 16, "cpu", "fp32")
    assert result.params > 0 and result.wall_time_s > 0
    d = result.to_dict()
    assert d["status"] == "ok" and d["loss_curve"] == list(result.loss_curve)


def test_quick_recipe_learns_the_builtin_set() -> None:
    # The CPU demo's contract: far above chance (10%) in seconds, for a small candidate.
    data = load_data("synthetic")
    threads = torch.get_num_threads()
    result = train(SMALL, Recipe.cpu_quick(), data)
    assert torch.get_num_threads() == threads  # cpu_threads is scoped to the run
    assert result.status == "ok" and result.epochs_run == 4
    assert result.accuracy >= 0.25, result
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert result.wall_time_s < 60
    # The data the commands default to (its objects vary in size and hide behind bars):
    # still twice chance for this small model (0.27 when measured).
    objects = train(SMALL, Recipe.cpu_quick(), load_data(BUILT_IN_DATA))
    assert objects.status == "ok" and objects.accuracy >= 0.2, objects


def test_same_seed_same_run(tiny_data: DataSplits) -> None:
    a = train(TINY, SMOKE, tiny_data, seed=1)
    b = train(TINY, SMOKE, tiny_data, seed=1)
    c = train(TINY, SMOKE, tiny_data, seed=2)
    assert a.loss_curve == b.loss_curve and a.accuracy == b.accuracy
    assert a.loss_curve != c.loss_curve


@pytest.mark.parametrize("optimizer,schedule", [("sgd", "exponential"), ("adamw", "constant")])
def test_other_optimizers_and_schedules(tiny_data: DataSplits, optimizer: str,
                                        schedule: str) -> None:
    recipe = SMOKE.replace(optimizer=optimizer, schedule=schedule, mixup_alpha=0.2,
                           randaug_magnitude=3.0, epochs=1)
    result = train(TINY, recipe, tiny_data)
    assert result.status == "ok" and result.steps_run == 2


def test_report_stops_early(tiny_data: DataSplits) -> None:
    seen: list[TrainResult] = []

    def report(progress: TrainResult) -> bool:
        seen.append(progress)
        return progress.epochs_run == 2

    result = train(TINY, SMOKE, tiny_data, report=report)
    assert result.status == "stopped" and result.epochs_run == 2
    assert result.reason == "stopped by report after epoch 2"
    assert [p.epochs_run for p in seen] == [1, 2]
    assert [p.status for p in seen] == ["ok", "ok"]
    assert len(seen[0].loss_curve) == 1 and len(seen[1].accuracy_curve) == 2
    assert result.accuracy == seen[-1].accuracy
    assert seen[-1].steps_run == 4


def test_report_errors_propagate(tiny_data: DataSplits) -> None:
    def report(progress: TrainResult) -> bool:
        raise LookupError("scheduler went away")

    with pytest.raises(LookupError, match="scheduler went away"):
        train(TINY, SMOKE, tiny_data, report=report)


class _Broken(nn.Module):
    """A model whose forward fails the way ``kind`` says."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.linear = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.kind == "oom-runtime":
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory")
        if self.kind == "interrupt":
            raise KeyboardInterrupt
        logits = self.linear(x.mean(dim=(2, 3)))
        return logits * float("nan") if self.kind == "nan" else logits


def _patch_model(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setattr(loop, "build_model", lambda spec, **kw: _Broken(kind))


@pytest.mark.parametrize("kind,reason", [
    ("oom", "out of memory: CUDA out of memory. Tried to allocate 2.00 GiB"),
    ("oom-runtime", "out of memory: DefaultCPUAllocator: can't allocate memory: out of memory"),
    ("nan", "loss became nan at step 1"),
])
def test_candidate_failures_become_results(tiny_data: DataSplits, monkeypatch: pytest.MonkeyPatch,
                                           kind: str, reason: str) -> None:
    _patch_model(monkeypatch, kind)
    result = train(TINY, SMOKE, tiny_data)
    assert (result.status, result.reason) == ("failed", reason)
    assert result.accuracy is None and result.epochs_run == 0


def test_build_errors_become_results(tiny_data: DataSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(spec: object, **kwargs: object) -> nn.Module:
        raise ValueError("kernel too large for this input")

    monkeypatch.setattr(loop, "build_model", explode)
    result = train(TINY, SMOKE, tiny_data)
    assert (result.status, result.reason) == ("failed", "ValueError: kernel too large for this input")


def test_other_errors_are_of_kind_error_and_a_run_that_did_not_fail_has_none(
        tiny_data: DataSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    assert train(TINY, SMOKE.replace(epochs=1), tiny_data).failure_kind is None

    def explode(spec: object, **kwargs: object) -> nn.Module:
        raise ValueError("kernel too large for this input")

    monkeypatch.setattr(loop, "build_model", explode)
    assert train(TINY, SMOKE, tiny_data).failure_kind is FailureKind.ERROR


def test_huge_learning_rate_fails_with_nan_reason(tiny_data: DataSplits) -> None:
    result = train(TINY, SMOKE.replace(lr=1e12, optimizer="sgd", max_train_batches_per_epoch=None),
                   tiny_data)
    assert result.status == "failed"
    assert result.reason.startswith("loss became ") and " at step " in result.reason


def test_keyboard_interrupt_is_not_swallowed(tiny_data: DataSplits,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_model(monkeypatch, "interrupt")
    with pytest.raises(KeyboardInterrupt):
        train(TINY, SMOKE, tiny_data)


def test_bad_precision_is_the_callers_error(tiny_data: DataSplits) -> None:
    with pytest.raises(RecipeError, match="precision 'fp8' not in"):
        train(TINY, SMOKE, tiny_data, precision="fp8")


def test_process_wide_cpu_settings_are_restored(tiny_data: DataSplits) -> None:
    threads = torch.get_num_threads()
    assert not step_module._flushes_denormals()
    result = train(TINY, SMOKE.replace(cpu_threads=2), tiny_data, seed=0)
    assert result.status == "ok"
    assert not step_module._flushes_denormals()  # flushing was on only while training
    assert torch.get_num_threads() == threads


def test_lr_schedule() -> None:
    recipe = Recipe(batch_size=256, lr=0.1, warmup_epochs=1.0, schedule="cosine", epochs=10)
    steps_per_epoch, total = 10, 100
    lrs = [lr_at(i, recipe, steps_per_epoch) for i in range(total)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)  # linear warmup
    assert lrs[10] == pytest.approx(0.1)  # the peak right after the warmup
    assert lrs[55] == pytest.approx(0.05)  # half way through the cosine
    assert lrs[-1] < 0.001
    staircase = recipe.replace(schedule="exponential", decay_rate=0.5, decay_epochs=2.0,
                               warmup_epochs=0.0)
    assert [lr_at(i, staircase, 10) for i in (0, 19, 20, 39, 40)] == \
        pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    assert lr_at(70, recipe.replace(schedule="constant"), 10) == pytest.approx(0.1)


def test_lr_schedule_follows_the_epoch_position_whatever_the_batch() -> None:
    recipe = Recipe(lr=0.1, warmup_epochs=1.0, schedule="cosine", epochs=10)
    # epoch 5.5 is half way through the cosine with 10 or with 40 steps per epoch
    assert lr_at(55, recipe, 10) == pytest.approx(lr_at(220, recipe, 40))
