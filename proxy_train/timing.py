"""Training step time of a candidate, measured on the target hardware.

What is measured: one *training step* of the built network, exactly as a real training run
executes it on the target device, minus data loading:

* forward of a random input batch (``batch_size`` x 3 x ``resolution`` x ``resolution``,
  generated once on the device) with dropout and stochastic depth active (train mode),
  cross-entropy with label smoothing 0.1 against random labels over ``num_classes``;
* backward;
* the optimizer step. All of it is ``proxy_train.step.TrainStep`` under the ``StepPolicy`` of
  the recipe (default ``Recipe()``: TF-semantics RMSProp 0.9/0.9, eps 1e-3, weight decay
  1e-5, the optimizer EfficientNetV2 trains with), exactly the step ``proxy_train.loop``
  trains with: its per-parameter optimizer work is part of the step, so bigger (e.g. more
  fused) candidates pay for their parameters here too;
* in the target's precision (the profile's ``bf16``/``fp16`` autocast on CUDA, fp16 with the
  grad scaler, fp32 on the CPU), channels-last, under ``proxy_train.step.runtime_settings``
  (cuDNN autotuning on CUDA, denormal flushing on the CPU; restored afterwards).

It is measured at the TARGET training resolution and batch, not at the proxy training
resolution: step time at a reduced resolution ranks candidates only loosely like step time at
the real one (Spearman 0.69 between 128 px and 300 px on an H100), because small inputs are
bound by kernel-launch overhead rather than by the arithmetic and memory traffic that
dominate at full size.

How: warm-up steps run in windows of 5 until two consecutive window medians differ by less
than ``stability`` (relative), or ``warmup_max_steps`` are spent, or half the time budget is;
cuDNN autotuning, allocator growth and optimizer-state creation all happen there. Then each
step is timed on its own (CUDA events around the step, read after a synchronize at the end of
every chunk of 5 steps; ``time.perf_counter`` on the CPU, where the stopping rule is checked
after every step). Timing continues past ``min_steps`` until the relative standard error of
the median (IQR-based: ``1.2533 * IQR / 1.349 / sqrt(n) / median``) is below ``target_rse``,
or ``max_steps`` steps or ``time_budget_s`` seconds (warm-up included) are reached. The model
build is neither timed nor counted in the budget; at least ``min_steps`` steps are always
timed.

The result reports the median step time, the spread (IQR / median), peak memory and the
provenance a reader needs (device, driver, torch version, batch, resolution, precision,
memory format). A candidate that cannot run (out of memory, any error in its forward or
backward) gives ``status='failed'`` with a reason; this function raises only for errors in its
own arguments (``TimingError``, or ``HardwareError`` for an unknown or absent target).
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from proxy_train.errors import TimingError
from proxy_train.hardware import Target, driver_version, resolve_hardware
from proxy_train.recipe import Recipe
from proxy_train.records import FailureKind, StepTiming
from proxy_train.step import (
    StepPolicy,
    TrainStep,
    describe_failure,
    failure_kind,
    prepare_model,
    runtime_settings,
)
from search_space.checks import is_int
from search_space.model import build_model
from search_space.spec import ArchSpec

WINDOW = 5
"""Steps per warm-up window and per timing chunk."""
LR_SCALE = 0.01
"""The timed step runs at 1% of the recipe's peak learning rate: the cost of a step does not
depend on it, and random data at the peak rate with no warm-up can drive the weights to inf,
where an fp16 grad scaler would skip optimizer steps and make the timing too fast."""


@dataclass(frozen=True, slots=True)
class _Settings:
    target: Target
    policy: StepPolicy
    batch_size: int
    resolution: int
    num_classes: int
    min_steps: int
    max_steps: int
    warmup_max_steps: int
    time_budget_s: float
    stability: float
    target_rse: float
    seed: int


def time_training_step(
    spec: ArchSpec,
    *,
    target: Target | str,
    resolution: int,
    batch_size: int | None = None,
    num_classes: int | None = 1000,
    recipe: Recipe | None = None,
    precision: str | None = None,
    dropout: float = 0.2,
    drop_path: float = 0.2,
    min_steps: int = 20,
    max_steps: int = 200,
    warmup_max_steps: int = 50,
    time_budget_s: float = 10.0,
    stability: float = 0.02,
    target_rse: float = 0.005,
    seed: int = 0,
) -> StepTiming:
    """Median training step time of ``spec`` on ``target`` (a ``Target`` or hardware name).

    The step is the one ``recipe`` (default ``Recipe()``) trains with. ``batch_size`` defaults
    to the profile's ``timing_batch`` and ``precision`` to its precision; ``num_classes`` is
    the classifier width of the *target* data set (``None`` keeps ``spec.num_classes``, which
    may be a small proxy dataset's); ``dropout``/``drop_path`` those of the final training.
    Never raises for the candidate's own failure: see ``StepTiming.status``.
    """
    settings = _settings(target, recipe, batch_size, resolution,
                         spec.num_classes if num_classes is None else num_classes,
                         precision, min_steps, max_steps, warmup_max_steps, time_budget_s,
                         stability, target_rse, seed)

    def build() -> nn.Module:
        return build_model(spec, num_classes=settings.num_classes, dropout=dropout,
                           drop_path=drop_path)

    return _run(build, settings)


def time_module_step(
    model: nn.Module | Callable[[], nn.Module],
    *,
    target: Target | str,
    resolution: int,
    num_classes: int,
    batch_size: int | None = None,
    recipe: Recipe | None = None,
    precision: str | None = None,
    min_steps: int = 20,
    max_steps: int = 200,
    warmup_max_steps: int = 50,
    time_budget_s: float = 10.0,
    stability: float = 0.02,
    target_rse: float = 0.005,
    seed: int = 0,
) -> StepTiming:
    """Like ``time_training_step`` for any image classifier (or a function building one).

    ``num_classes`` must be the model's output width. The model is moved to the device and
    to the memory format, and put in train mode.
    """
    settings = _settings(target, recipe, batch_size, resolution, num_classes, precision,
                         min_steps, max_steps, warmup_max_steps, time_budget_s, stability,
                         target_rse, seed)
    build = model if not isinstance(model, nn.Module) else (lambda: model)
    return _run(build, settings)


def _settings(target: Target | str, recipe: Recipe | None, batch_size: int | None,
              resolution: int, num_classes: int, precision: str | None, min_steps: int,
              max_steps: int, warmup_max_steps: int, time_budget_s: float, stability: float,
              target_rse: float, seed: int) -> _Settings:
    if not isinstance(target, Target):
        target = resolve_hardware(target)
    batch = target.profile.timing_batch if batch_size is None else batch_size
    policy = StepPolicy.of(recipe or Recipe(), target.device,
                           precision or target.profile.precision)
    for name, value, low in (("batch_size", batch, 1), ("resolution", resolution, 8),
                             ("num_classes", num_classes, 1), ("min_steps", min_steps, 1),
                             ("max_steps", max_steps, 1), ("warmup_max_steps",
                                                            warmup_max_steps, 0)):
        if not is_int(value) or value < low:
            raise TimingError(f"timing: {name} {value!r} must be an integer >= {low}")
    if max_steps < min_steps:
        raise TimingError(f"timing: max_steps {max_steps} must be >= min_steps {min_steps}")
    if not time_budget_s > 0 or not stability > 0 or not target_rse > 0:
        raise TimingError("timing: time_budget_s, stability and target_rse must be > 0, got "
                          f"{time_budget_s!r}, {stability!r}, {target_rse!r}")
    return _Settings(target, policy, batch, resolution, num_classes, min_steps, max_steps,
                     warmup_max_steps, float(time_budget_s), float(stability),
                     float(target_rse), seed)


@dataclass(frozen=True, slots=True)
class _Measured:
    median_ms: float
    spread: float
    mean_ms: float
    steps: int
    warmup_steps: int
    rse: float | None
    warmup_stable: bool
    policy: dict[str, object]


def _run(build: Callable[[], nn.Module], s: _Settings) -> StepTiming:
    device = torch.device(s.target.device)
    started = time.perf_counter()
    memory = _MemoryProbe(device)
    state: dict[str, object] = {}
    measured: _Measured | None = None
    peak: int | None = None
    reason = ""
    kind: FailureKind | None = None
    try:
        with _measurement_context(device, s.seed):
            memory.start()
            measured = _measure(build, s, device, state)
            peak = memory.peak()
    except Exception as exc:  # noqa: BLE001 - the candidate's failure is a result, not a crash
        reason, kind = describe_failure(exc), failure_kind(exc)
    finally:
        state.clear()  # drop the model, optimizer and batch before emptying the cache
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    m = measured
    return StepTiming(
        status="ok" if m is not None else "failed", reason=reason,
        median_ms=m.median_ms if m else None, spread=m.spread if m else None,
        mean_ms=m.mean_ms if m else None, steps=m.steps if m else 0,
        warmup_steps=m.warmup_steps if m else 0, peak_memory_bytes=peak,
        images_per_s=s.batch_size * 1000.0 / m.median_ms if m else None,
        device_name=s.target.device_name, driver=driver_version(device),
        torch_version=torch.__version__, batch_size=s.batch_size, resolution=s.resolution,
        precision=s.policy.precision, memory_format=s.policy.memory_format,
        time_s=time.perf_counter() - started, hardware=s.target.name,
        optimizer=s.policy.optimizer, num_classes=s.num_classes,
        rse=m.rse if m else None, warmup_stable=m.warmup_stable if m else False, seed=s.seed,
        policy=m.policy if m else s.policy.to_dict(), failure_kind=kind)


@contextlib.contextmanager
def _measurement_context(device: torch.device, seed: int) -> Iterator[None]:
    """Seeded RNG (global state restored after) and the runtime settings training uses."""
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device.index or 0] if cuda else []), \
            (torch.cuda.device(device) if cuda else contextlib.nullcontext()), \
            runtime_settings(device):
        torch.manual_seed(seed)
        yield


def _measure(build: Callable[[], nn.Module], s: _Settings, device: torch.device,
             state: dict[str, object]) -> _Measured:
    model = prepare_model(build(), s.policy, device).train()
    train_step = TrainStep(model, s.policy, device)
    train_step.set_lr(s.policy.lr * LR_SCALE)
    x = torch.randn(s.batch_size, 3, s.resolution, s.resolution, device=device)
    # Soft targets, as the augmentation gives the training loop.
    y = F.one_hot(torch.randint(0, s.num_classes, (s.batch_size,), device=device),
                  s.num_classes).float()
    state.update(model=model, step=train_step, x=x, y=y)

    def step() -> None:
        train_step(x, y)

    timer = _CudaTimer(device) if device.type == "cuda" else _CpuTimer()
    start = time.perf_counter()
    deadline = start + s.time_budget_s

    # Warm-up: windows until two consecutive medians agree, capped in steps and in time.
    warmup, stable, previous = 0, False, None
    while warmup < s.warmup_max_steps:
        n = min(WINDOW, s.warmup_max_steps - warmup)
        median = statistics.median(timer.run(step, n))
        warmup += n
        if previous is not None and abs(median - previous) < s.stability * previous:
            stable = True
            break
        previous = median
        if time.perf_counter() - start > s.time_budget_s / 2:
            break

    times: list[float] = []
    rse = math.inf
    while len(times) < s.max_steps:
        n = min(timer.chunk, s.max_steps - len(times))
        if 0 < s.min_steps - len(times) < n:
            n = s.min_steps - len(times)  # check the stopping rule right at min_steps
        times.extend(timer.run(step, n))
        if len(times) < s.min_steps:
            continue
        rse = _relative_se_of_median(times)
        if rse <= s.target_rse or time.perf_counter() >= deadline:
            break
    median = statistics.median(times)
    q1, _q2, q3 = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 \
        else (median, median, median)
    return _Measured(median_ms=median, spread=(q3 - q1) / median,
                     mean_ms=statistics.fmean(times), steps=len(times), warmup_steps=warmup,
                     rse=None if math.isinf(rse) else rse, warmup_stable=stable,
                     policy=train_step.describe())


def _relative_se_of_median(times: list[float]) -> float:
    """Standard error of the median over the median, from the IQR (robust to outliers)."""
    if len(times) < 4:
        return math.inf
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    sigma = (q3 - q1) / 1.349
    return 1.2533 * sigma / math.sqrt(len(times)) / median


class _CpuTimer:
    """Wall time of each step; on the CPU a step is synchronous."""

    chunk = 1  # steps between checks of the stopping rule: nothing to synchronize here

    def run(self, step: Callable[[], None], n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            step()
            out.append((time.perf_counter() - t0) * 1000.0)
        return out


class _CudaTimer:
    """Device time of each step from CUDA events; one synchronize per chunk of steps."""

    chunk = WINDOW  # steps between synchronizes (and checks of the stopping rule)

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def run(self, step: Callable[[], None], n: int) -> list[float]:
        events = [torch.cuda.Event(enable_timing=True) for _ in range(n + 1)]
        events[0].record()
        for i in range(n):
            step()
            events[i + 1].record()
        torch.cuda.synchronize(self.device)
        return [events[i].elapsed_time(events[i + 1]) for i in range(n)]


class _MemoryProbe:
    """Peak memory of a measurement (see ``StepTiming.peak_memory_bytes``)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.rss_before: int | None = None

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        gc.collect()
        try:
            # Writing 5 resets the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0).
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
            self.rss_before = _proc_status_kb("VmRSS") * 1024
        except (OSError, ValueError):
            self.rss_before = None

    def peak(self) -> int | None:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.rss_before is None:
            return None
        try:
            return max(0, _proc_status_kb("VmHWM") * 1024 - self.rss_before)
        except (OSError, ValueError):
            return None


def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise ValueError(f"{key} not in /proc/self/status")


__all__ = ["StepTiming", "time_module_step", "time_training_step"]
