"""A real out-of-memory on the GPU is a failed candidate, and the next candidate trains.

A candidate whose batch cannot fit (in its step timing, or in its proxy training) must come
back as a failed row naming the out-of-memory, with its memory handed back, so that the
search's next candidate in the same process trains. Skipped without CUDA; the GPU check's
dry run cannot rehearse it (on the CPU an absurd batch would take the machine's memory).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from nas.search.reward import RewardConfig
from nas.search.trial import Job, TrialContext, evaluate
from proxy_train.data import DataSplits, Split, load_data
from proxy_train.recipe import Recipe
from results.rows import RunInfo, outcome_row
from search_space.codec import decode
from search_space.cost import activation_memory

pytestmark = pytest.mark.gpu

SMALL = decode("stem16-fused_r1_k3_s1_e1_c16-fused_r1_k3_s2_e4_c24-mbconv_r2_k3_s2_e4_c48"
               "_se0.25-mbconv_r1_k3_s2_e4_c80_se0.25-head256-cls4")
RECIPE = Recipe(epochs=1, resolution=32, batch_size=64, eval_batch_size=256)
CONTEXT = TrialContext(recipe=RECIPE, hardware="auto", timing_batch=32, timing_resolution=64,
                       reward=RewardConfig(ref_step_time=10.0, ref_params=1_000_000),
                       timing_min_steps=5, timing_budget_s=2.0)
RUN = RunInfo(run_id="oom", strategy="random", hardware="auto", objective="train",
              timing_resolution=64, timing_batch=32, ref_step_time_ms=10.0,
              ref_params=1_000_000)
ABSURD_RESOLUTION = 128
SLACK = 64 * 2**20
"""Allocated bytes a failed candidate may leave behind (library workspaces)."""


def absurd_batch(device: torch.device) -> int:
    """A batch whose activations at ``ABSURD_RESOLUTION`` need four times the device's
    memory, while its input (fp32, about 5% of the activations) still fits."""
    total = torch.cuda.get_device_properties(device).total_memory
    return math.ceil(4 * total / activation_memory(SMALL, ABSURD_RESOLUTION))


def many_images(count: int) -> DataSplits:
    """A split large enough for an absurd training batch (random 32 px images)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(count) % 4
    return DataSplits(name="many", train=Split(images, labels),
                      minival=Split(images[:64], labels[:64]), test=None, num_classes=4,
                      class_names=("a", "b", "c", "d"), resolution=32)


@pytest.mark.parametrize("where", ["timing", "training"])
def test_out_of_memory_is_a_failed_candidate_and_the_next_one_trains(
        gpu_device: torch.device, where: str) -> None:
    if gpu_device.type != "cuda":
        pytest.skip("a real out-of-memory needs a CUDA device")
    data = load_data("synthetic:classes=4,per_class=40,resolution=32,seed=3")
    first = evaluate(Job(0, SMALL, 0), CONTEXT, data)
    assert first.status == "ok", first.reason
    torch.cuda.synchronize(gpu_device)
    allocated = torch.cuda.memory_allocated(gpu_device)

    batch = absurd_batch(gpu_device)
    if where == "timing":
        context = dataclasses.replace(CONTEXT, timing_batch=batch,
                                      timing_resolution=ABSURD_RESOLUTION)
        failed = evaluate(Job(1, SMALL, 1), context, data)
    else:
        context = dataclasses.replace(CONTEXT, recipe=RECIPE.replace(
            batch_size=batch, resolution=ABSURD_RESOLUTION, randaug_magnitude=0))
        failed = evaluate(Job(1, SMALL, 1), context, many_images(batch))
    assert failed.status == "failed"
    assert failed.reason is not None and "out of memory" in failed.reason, failed.reason
    row = outcome_row(failed, RUN, trial_id=1)
    assert row["status"] == "failed" and "out of memory" in row["failure_reason"]
    assert row["reward"] is None

    torch.cuda.synchronize(gpu_device)
    left = torch.cuda.memory_allocated(gpu_device) - allocated
    assert left <= SLACK, f"the failed candidate left {left / 2**20:.0f} MiB allocated"
    reserved = torch.cuda.memory_reserved(gpu_device)
    total = torch.cuda.get_device_properties(gpu_device).total_memory
    assert reserved < total / 4, f"{reserved / 2**30:.1f} GiB still reserved"

    after = evaluate(Job(2, SMALL, 2), CONTEXT, data)
    assert after.status == "ok", after.reason
    assert after.training is not None and after.training.accuracy is not None
