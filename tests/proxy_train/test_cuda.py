"""The CUDA paths of proxy training: mixed precision, the grad scaler, CUDA-event step timing,
a NaN on the device, data and augmentation on the device.

Skipped without CUDA; the GPU check's dry run rehearses them on the CPU at toy sizes
(``tests/conftest.py``). A real out-of-memory is in ``tests/nas/test_cuda_trial.py``.
"""

from __future__ import annotations

import math
import statistics
import time

import pytest
import torch
import torch.nn.functional as F

from proxy_train.augment import Augmenter, eval_transform
from proxy_train.data import DataSplits, load_data
from proxy_train.hardware import resolve_hardware
from proxy_train.loop import train
from proxy_train.recipe import Recipe
from proxy_train.step import StepPolicy, TrainStep, prepare_model, runtime_settings
from proxy_train.timing import time_training_step
from search_space.codec import decode
from search_space.model import build_model

pytestmark = pytest.mark.gpu

SMALL = decode("stem16-fused_r1_k3_s1_e1_c16-fused_r1_k3_s2_e4_c24-mbconv_r2_k3_s2_e4_c48"
               "_se0.25-mbconv_r1_k3_s2_e4_c80_se0.25-head256-cls4")
DATA = "synthetic:classes=4,per_class=160,test_per_class=2,resolution=32,seed=2"


def cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def recipe_for(device: torch.device) -> Recipe:
    """The GPU proxy recipe (RMSProp, RandAugment, cosine, zero-init), shortened; toy sizes
    when rehearsed on the CPU."""
    if cuda(device):
        return Recipe(epochs=6, resolution=32, batch_size=32, eval_batch_size=256)
    return Recipe(epochs=1, resolution=16, batch_size=16, max_train_batches_per_epoch=2,
                  eval_batch_size=64, cpu_threads=1)


@pytest.fixture(scope="module")
def data() -> DataSplits:
    return load_data(DATA)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_proxy_training_in_mixed_precision_and_channels_last(
        gpu_device: torch.device, data: DataSplits, precision: str) -> None:
    recipe = recipe_for(gpu_device)
    result = train(SMALL, recipe, data, device=gpu_device, precision=precision)
    assert result.status == "ok", result.reason
    assert (result.device, result.precision) == (str(gpu_device), precision)
    assert result.policy["weight_memory_format"] == "channels_last"
    assert result.policy["optimizer_class"] == "RMSpropTF"
    assert result.epochs_run == recipe.epochs and all(map(math.isfinite, result.loss_curve))
    assert result.accuracy is not None and 0.0 <= result.accuracy <= 1.0
    if cuda(gpu_device):
        # Zero-init starts at loss ln(4); six epochs (about 100 steps) of a learnable
        # four-class set must end below where the first epoch was.
        assert result.loss_curve[-1] < result.loss_curve[0], result.loss_curve


@pytest.mark.parametrize("precision,dtype", [("bf16", torch.bfloat16),
                                             ("fp16", torch.float16)])
def test_mixed_precision_steps(gpu_device: torch.device, precision: str,
                               dtype: torch.dtype) -> None:
    """Autocast runs the network in the low precision, the weights and their optimizer stay
    fp32, and fp16 (only) goes through a grad scaler whose steps are taken, not skipped."""
    policy = StepPolicy.of(Recipe(optimizer="sgd", batch_size=16), gpu_device, precision)
    torch.manual_seed(0)
    model = prepare_model(build_model(SMALL, num_classes=4), policy, gpu_device).train()
    step = TrainStep(model, policy, gpu_device)
    assert step.scaler.is_enabled() == (precision == "fp16")
    x = torch.randn(16, 3, 32, 32, device=gpu_device)
    y = F.one_hot(torch.arange(16, device=gpu_device) % 4, 4).float()
    with policy.autocast(gpu_device):
        assert model(x.contiguous(memory_format=torch.channels_last)).dtype == dtype
    before = [p.detach().clone() for p in model.parameters()]
    losses = torch.stack([step(x, y) for _ in range(5)])
    assert torch.isfinite(losses).all(), losses
    assert all(p.dtype == torch.float32 for p in model.parameters())
    changed = sum(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert changed > len(before) // 2, f"only {changed} of {len(before)} tensors changed"
    if precision == "fp16":
        scale = step.scaler.get_scale()
        assert math.isfinite(scale) and scale > 1.0, scale


def test_step_timing_on_the_device(gpu_device: torch.device) -> None:
    """The step timing (CUDA events on a GPU) agrees with the wall clock timing the same step
    with a synchronize around it."""
    target = resolve_hardware("auto")
    assert target.device.split(":")[0] == gpu_device.type
    resolution, batch = (128, 64) if cuda(gpu_device) else (32, 2)
    timing = time_training_step(SMALL, target=target, resolution=resolution, batch_size=batch,
                                num_classes=4, min_steps=20, time_budget_s=5.0)
    assert timing.ok, timing.reason
    assert timing.steps >= 20 and timing.median_ms is not None and timing.median_ms > 0
    assert timing.precision == target.profile.precision
    assert timing.policy["weight_memory_format"] == "channels_last"
    assert not torch.backends.cudnn.benchmark  # restored after the timing
    if cuda(gpu_device):
        assert timing.peak_memory_bytes is not None and timing.peak_memory_bytes > 0
        assert timing.driver is not None

    policy = StepPolicy.of(Recipe(), gpu_device, target.profile.precision)
    with runtime_settings(gpu_device):
        model = prepare_model(build_model(SMALL, num_classes=4), policy, gpu_device).train()
        step = TrainStep(model, policy, gpu_device)
        step.set_lr(policy.lr * 0.01)
        x = torch.randn(batch, 3, resolution, resolution, device=gpu_device)
        y = F.one_hot(torch.arange(batch, device=gpu_device) % 4, 4).float()
        walls = []
        for i in range(30):
            _sync(gpu_device)
            started = time.perf_counter()
            step(x, y)
            _sync(gpu_device)
            if i >= 10:
                walls.append((time.perf_counter() - started) * 1000)
    wall_ms = statistics.median(walls)
    ratio = timing.median_ms / wall_ms
    assert 0.5 < ratio < 1.5, f"timing {timing.median_ms:.2f} ms, wall clock {wall_ms:.2f} ms"


def test_nan_loss_is_a_failed_candidate(gpu_device: torch.device, data: DataSplits) -> None:
    """A loss that becomes NaN on the device fails the candidate, named (on a GPU the losses
    are checked once per epoch, on the device)."""
    recipe = recipe_for(gpu_device).replace(lr=1e12, optimizer="sgd", epochs=3,
                                            max_train_batches_per_epoch=None)
    result = train(SMALL, recipe, data, device=gpu_device)
    assert result.status == "failed"
    assert result.reason.startswith("loss became ") and " at step " in result.reason
    assert result.accuracy is None


def test_data_and_augmentation_on_the_device(gpu_device: torch.device) -> None:
    data = load_data(DATA, device=gpu_device)
    images, labels = data.train.images[:32], data.train.labels[:32]
    assert (images.device.type, images.dtype) == (gpu_device.type, torch.uint8)
    assert labels.device.type == gpu_device.type

    def augment() -> tuple[torch.Tensor, torch.Tensor]:
        aug = Augmenter(24, randaug_magnitude=5, mixup_alpha=0.2, seed=3, crop_area=(0.25, 1))
        return aug(images, labels, data.num_classes)

    state = _rng_state(gpu_device)
    x, y = augment()
    assert torch.equal(_rng_state(gpu_device), state), "augmentation moved the caller's RNG"
    assert (x.device.type, x.dtype, tuple(x.shape)) == (gpu_device.type, torch.float32,
                                                         (32, 3, 24, 24))
    assert torch.isfinite(x).all() and -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.allclose(y.sum(dim=1), torch.ones(32, device=gpu_device))
    x2, y2 = augment()
    assert torch.allclose(x, x2, atol=1e-4) and torch.equal(y, y2), "same seed, other batch"
    ev = eval_transform(images, 24)
    assert (ev.device.type, tuple(ev.shape)) == (gpu_device.type, (32, 3, 24, 24))


def _sync(device: torch.device) -> None:
    if cuda(device):
        torch.cuda.synchronize(device)


def _rng_state(device: torch.device) -> torch.Tensor:
    return torch.cuda.get_rng_state(device) if cuda(device) else torch.get_rng_state()
