"""Training step timing on the CPU, with tiny networks (the contract, not the figures)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import proxy_train.timing as timing
from proxy_train.errors import HardwareError, RecipeError, TimingError
from proxy_train.hardware import resolve_hardware
from proxy_train.recipe import Recipe
from proxy_train.records import FailureKind
from proxy_train.timing import StepTiming, time_module_step, time_training_step
from search_space.cost import count_macs
from search_space.spec import ArchSpec, StageSpec

CPU = resolve_hardware("cpu")
FAST = dict(min_steps=5, max_steps=30, warmup_max_steps=10, time_budget_s=2.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a small shared CPU, two threads stall whenever another
    process takes a core, which makes step times erratic (not what these tests check)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _spec(width: int = 16, layers: int = 1, expansion: int = 1) -> ArchSpec:
    return ArchSpec(
        stem_channels=width,
        stages=(
            StageSpec("fused", layers, 3, expansion, width, 1),
            StageSpec("mbconv", layers, 3, 4, 2 * width, 2, se_ratio=0.25),
        ),
        head_channels=64,
        num_classes=10,
    )


@pytest.fixture(scope="module")
def tiny() -> StepTiming:
    return time_training_step(_spec(), target=CPU, resolution=32, batch_size=2,
                              num_classes=10, **FAST)


def test_timing_is_ok_with_provenance(tiny: StepTiming) -> None:
    assert tiny.status == "ok" and tiny.ok and tiny.reason == ""
    assert tiny.median_ms is not None and tiny.median_ms > 0
    assert tiny.mean_ms is not None and tiny.mean_ms > 0
    assert 5 <= tiny.steps <= 30
    assert 1 <= tiny.warmup_steps <= 10
    assert tiny.spread is not None and tiny.spread >= 0
    assert tiny.images_per_s == pytest.approx(2 * 1000.0 / tiny.median_ms)
    assert tiny.torch_version == torch.__version__
    assert tiny.device_name == CPU.device_name
    assert tiny.driver is None
    assert (tiny.batch_size, tiny.resolution, tiny.num_classes) == (2, 32, 10)
    assert (tiny.precision, tiny.memory_format) == ("fp32", "channels_last")
    assert (tiny.hardware, tiny.optimizer, tiny.seed) == ("cpu", "rmsprop", 0)
    assert tiny.time_s > 0
    assert tiny.peak_memory_bytes is None or tiny.peak_memory_bytes >= 0


def test_to_dict_round_trips(tiny: StepTiming) -> None:
    d = tiny.to_dict()
    assert d["status"] == "ok" and d["median_ms"] == tiny.median_ms
    assert StepTiming(**d) == tiny


def test_defaults_come_from_the_profile() -> None:
    t = time_training_step(_spec(), target="cpu", resolution=32, min_steps=3, max_steps=3,
                           warmup_max_steps=0)
    assert (t.batch_size, t.precision, t.num_classes) == (CPU.profile.timing_batch, "fp32", 1000)
    assert t.warmup_steps == 0 and t.steps == 3


def test_fixed_step_counts() -> None:
    """min_steps == max_steps and a one-window warm-up: the naive 5 + 8 timing."""
    t = time_training_step(_spec(), target=CPU, resolution=32, batch_size=2, num_classes=None,
                           min_steps=8, max_steps=8, warmup_max_steps=5)
    assert (t.steps, t.warmup_steps, t.num_classes) == (8, 5, 10)


def test_time_budget_is_respected() -> None:
    budget = 0.5
    t = time_training_step(_spec(), target=CPU, resolution=32, batch_size=2, min_steps=3,
                           max_steps=100_000, warmup_max_steps=1000, time_budget_s=budget,
                           target_rse=1e-9)
    assert t.ok
    assert 3 <= t.steps < 100_000
    assert t.warmup_steps < 1000
    # The budget is checked after every chunk of 5 steps (the build is outside it): it ended
    # the run far short of max_steps, and soon after the budget even on a loaded machine
    # (4.1 s was seen under a load of 20 on two cores).
    assert t.time_s < budget + 10.0


def test_bigger_network_is_slower() -> None:
    """About 65x the MACs: an ordering no machine noise should flip."""
    assert count_macs(_spec(32, layers=2, expansion=4), 32) > 60 * count_macs(_spec(8), 32)
    small = time_training_step(_spec(8), target=CPU, resolution=32, batch_size=4,
                               num_classes=10, **FAST)
    big = time_training_step(_spec(32, layers=2, expansion=4), target=CPU, resolution=32,
                             batch_size=4, num_classes=10, **FAST)
    assert small.ok and big.ok
    assert big.median_ms > 2 * small.median_ms


def test_out_of_memory_is_a_failed_result(monkeypatch: pytest.MonkeyPatch) -> None:
    class Explodes(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(timing, "build_model", lambda *a, **k: Explodes())
    t = time_training_step(_spec(), target=CPU, resolution=32, batch_size=2, **FAST)
    assert t.status == "failed" and not t.ok
    assert t.reason.startswith("out of memory: CUDA out of memory")
    assert t.median_ms is None and t.spread is None and t.images_per_s is None
    assert t.steps == 0
    assert (t.batch_size, t.resolution, t.torch_version) == (2, 32, torch.__version__)


def test_other_errors_are_failed_results(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> nn.Module:
        raise RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED")

    monkeypatch.setattr(timing, "build_model", broken)
    t = time_training_step(_spec(), target=CPU, resolution=32, batch_size=2, **FAST)
    assert t.status == "failed"
    assert t.reason == "RuntimeError: cuDNN error: CUDNN_STATUS_NOT_SUPPORTED"


def test_a_failed_timing_carries_its_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    def oom(*args: object, **kwargs: object) -> nn.Module:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(timing, "build_model", oom)
    t = time_training_step(_spec(), target=CPU, resolution=32, batch_size=2, **FAST)
    assert t.failure_kind is FailureKind.OOM and t.to_dict()["failure_kind"] == "oom"
    monkeypatch.setattr(timing, "build_model", lambda *a, **k: nn.Identity())
    t = time_training_step(_spec(), target=CPU, resolution=32, batch_size=2, **FAST)
    assert t.failure_kind is FailureKind.ERROR  # an identity cannot be trained: no parameters
    monkeypatch.undo()
    ok = time_training_step(_spec(), target=CPU, resolution=32, batch_size=2, **FAST)
    assert ok.ok and ok.failure_kind is None


def test_global_state_is_left_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    benchmark = torch.backends.cudnn.benchmark
    time_training_step(_spec(), target=CPU, resolution=32, batch_size=2, min_steps=2,
                       max_steps=2, warmup_max_steps=0, seed=7)
    assert torch.equal(torch.rand(3), expected)
    assert torch.backends.cudnn.benchmark == benchmark


def test_time_module_step_times_any_classifier() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 5))
    t = time_module_step(model, target=CPU, resolution=32, num_classes=5, batch_size=2,
                         recipe=Recipe(optimizer="sgd"), min_steps=4, max_steps=4,
                         warmup_max_steps=2)
    assert t.ok and t.steps == 4 and t.optimizer == "sgd" and t.num_classes == 5
    assert t.policy["optimizer_class"] == "SGD"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"precision": "int8"}, RecipeError, "precision 'int8' not in"),
        ({"min_steps": 10, "max_steps": 5}, TimingError, "max_steps 5 must be >= min_steps 10"),
        ({"batch_size": 0}, TimingError, "batch_size 0 must be an integer >= 1"),
        ({"batch_size": True}, TimingError, "batch_size True must be an integer >= 1"),
        ({"time_budget_s": 0}, TimingError, "must be > 0"),
        ({"target": "v100"}, HardwareError, "hardware 'v100' not found on this machine"),
        ({"target": "tpu"}, HardwareError, "unknown hardware 'tpu'"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, error: type, message: str) -> None:
    if torch.cuda.is_available() and kwargs.get("target") == "v100":
        pytest.skip("this machine may have a V100")
    args = {"target": CPU, "resolution": 32, "batch_size": 2} | kwargs
    with pytest.raises(error, match=message):
        time_training_step(_spec(), **args)
