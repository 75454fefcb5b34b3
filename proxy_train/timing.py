"""Training step time of a candidate, measured on the target hardware.

What is measured: one *training step* of the built network, exactly as a real training run
executes it on the target device, minus data loading:

* forward of a random input batch (``batch_size`` x 3 x ``resolution`` x ``resolution``,
  generated once on the device) with dropout and stochastic depth active (train mode),
  cross-entropy with label smoothing 0.1 against random labels over ``num_classes``;
* backward;
* the optimizer step and ``zero_grad(set_to_none=True)``. The default optimizer is RMSProp
  (decay 0.9, momentum 0.9, eps 1e-3, weight decay 1e-5), the optimizer EfficientNetV2 trains
  with; ``'sgd'`` (momentum 0.9, Nesterov) and ``'adamw'`` are available. Its per-parameter
  elementwise work is part of the step, so bigger (e.g. more fused) candidates pay for their
  parameters here too;
* in the precision and memory format real training uses: autocast to the profile's
  ``bf16``/``fp16`` on CUDA (fp16 without a GradScaler, whose per-step overflow check would
  add a host sync that a timing need not reproduce), fp32 on the CPU; ``channels_last`` on
  CUDA, contiguous on the CPU; ``torch.backends.cudnn.benchmark`` on (restored afterwards).

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
own arguments (``HardwareError``).
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from proxy_train.errors import HardwareError
from proxy_train.hardware import PRECISIONS, Target, driver_version, resolve_hardware
from search_space.model import build_model
from search_space.spec import ArchSpec

OPTIMIZERS: tuple[str, ...] = ("rmsprop", "sgd", "adamw")
MEMORY_FORMATS: tuple[str, ...] = ("channels_last", "contiguous")
WINDOW = 5
"""Steps per warm-up window and per timing chunk."""
LABEL_SMOOTHING = 0.1


@dataclass(frozen=True, slots=True)
class StepTiming:
    """The measured training step time of one network on one device (see module docstring)."""

    status: str
    """``'ok'`` or ``'failed'``."""
    reason: str
    """Why it failed (``'out of memory: ...'``, the error), empty when ok."""
    median_ms: float | None
    spread: float | None
    """Interquartile range of the step times divided by their median (a fraction)."""
    mean_ms: float | None
    steps: int
    """Timed steps (warm-up excluded)."""
    warmup_steps: int
    peak_memory_bytes: int | None
    """CUDA: ``max_memory_allocated`` over build + warm-up + timing. CPU: the rise of the
    process's peak resident set (``VmHWM``, reset first) over its resident set before the
    build; None where the peak cannot be reset (non-Linux)."""
    images_per_s: float | None
    device_name: str
    driver: str | None
    torch_version: str
    batch_size: int
    resolution: int
    precision: str
    memory_format: str
    time_s: float
    """Wall time the whole measurement cost, model build included."""
    hardware: str = ""
    """The hardware profile name."""
    optimizer: str = "rmsprop"
    num_classes: int = 1000
    rse: float | None = None
    """Relative standard error of the median when timing stopped."""
    warmup_stable: bool = False
    """Whether warm-up ended because two window medians agreed within ``stability``."""
    seed: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, object]:
        """A JSON-able dict of every field."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Settings:
    target: Target
    batch_size: int
    resolution: int
    num_classes: int
    precision: str
    memory_format: str
    optimizer: str
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
    precision: str | None = None,
    memory_format: str | None = None,
    optimizer: str = "rmsprop",
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

    ``batch_size`` defaults to the profile's ``timing_batch`` and ``precision`` to its
    precision; ``num_classes`` is the classifier width of the *target* data set (``None`` keeps
    ``spec.num_classes``, which may be a small proxy dataset's). Never raises for the
    candidate's own failure: see ``StepTiming.status``.
    """
    settings = _settings(target, batch_size, resolution,
                         spec.num_classes if num_classes is None else num_classes,
                         precision, memory_format, optimizer, min_steps, max_steps,
                         warmup_max_steps, time_budget_s, stability, target_rse, seed)

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
    precision: str | None = None,
    memory_format: str | None = None,
    optimizer: str = "rmsprop",
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
    settings = _settings(target, batch_size, resolution, num_classes, precision,
                         memory_format, optimizer, min_steps, max_steps, warmup_max_steps,
                         time_budget_s, stability, target_rse, seed)
    build = model if not isinstance(model, nn.Module) else (lambda: model)
    return _run(build, settings)


def _settings(target: Target | str, batch_size: int | None, resolution: int,
              num_classes: int, precision: str | None, memory_format: str | None,
              optimizer: str, min_steps: int, max_steps: int, warmup_max_steps: int,
              time_budget_s: float, stability: float, target_rse: float,
              seed: int) -> _Settings:
    if not isinstance(target, Target):
        target = resolve_hardware(target)
    batch = target.profile.timing_batch if batch_size is None else batch_size
    prec = target.profile.precision if precision is None else precision
    fmt = memory_format or ("channels_last" if target.is_cuda else "contiguous")
    for name, value, low in (("batch_size", batch, 1), ("resolution", resolution, 8),
                             ("num_classes", num_classes, 1), ("min_steps", min_steps, 1),
                             ("max_steps", max_steps, 1), ("warmup_max_steps",
                                                            warmup_max_steps, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise HardwareError(f"timing: {name} {value!r} must be an integer >= {low}")
    if max_steps < min_steps:
        raise HardwareError(f"timing: max_steps {max_steps} must be >= min_steps {min_steps}")
    if prec not in PRECISIONS:
        raise HardwareError(f"timing: precision {prec!r} not in {PRECISIONS}")
    if fmt not in MEMORY_FORMATS:
        raise HardwareError(f"timing: memory_format {fmt!r} not in {MEMORY_FORMATS}")
    if optimizer not in OPTIMIZERS:
        raise HardwareError(f"timing: optimizer {optimizer!r} not in {OPTIMIZERS}")
    if not time_budget_s > 0 or not stability > 0 or not target_rse > 0:
        raise HardwareError("timing: time_budget_s, stability and target_rse must be > 0, got "
                            f"{time_budget_s!r}, {stability!r}, {target_rse!r}")
    return _Settings(target, batch, resolution, num_classes, prec, fmt, optimizer, min_steps,
                     max_steps, warmup_max_steps, float(time_budget_s), float(stability),
                     float(target_rse), seed)


def _make_optimizer(name: str, params: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
    # The learning rates are irrelevant to the time, but kept realistic so that the weights
    # stay finite over a few hundred steps (denormals or NaNs could change CPU timings).
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=1e-4, alpha=0.9, eps=1e-3, momentum=0.9,
                                   weight_decay=1e-5)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9, nesterov=True,
                               weight_decay=1e-5)
    return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)


_OOM_TYPES = tuple({getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError),
                    torch.cuda.OutOfMemoryError})


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, _OOM_TYPES) or "out of memory" in str(exc).lower()


def _run(build: Callable[[], nn.Module], s: _Settings) -> StepTiming:
    device = torch.device(s.target.device)
    started = time.perf_counter()
    base = dict(device_name=s.target.device_name, driver=driver_version(device),
                torch_version=torch.__version__, batch_size=s.batch_size,
                resolution=s.resolution, precision=s.precision, memory_format=s.memory_format,
                hardware=s.target.name, optimizer=s.optimizer, num_classes=s.num_classes,
                seed=s.seed)
    memory = _MemoryProbe(device)
    state: dict[str, object] = {}
    try:
        with _measurement_context(device, s.seed):
            memory.start()
            result = _measure(build, s, device, state)
            peak = memory.peak()
        return StepTiming(status="ok", reason="", peak_memory_bytes=peak,
                          time_s=time.perf_counter() - started, **result, **base)
    except Exception as exc:  # noqa: BLE001 - the candidate's failure is a result, not a crash
        kind = "out of memory" if _is_oom(exc) else type(exc).__name__
        reason = f"{kind}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return StepTiming(status="failed", reason=reason[:500], median_ms=None, spread=None,
                          mean_ms=None, steps=0, warmup_steps=0, peak_memory_bytes=None,
                          images_per_s=None, time_s=time.perf_counter() - started, **base)
    finally:
        state.clear()  # drop the model, optimizer and batch before emptying the cache
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


@contextlib.contextmanager
def _measurement_context(device: torch.device, seed: int) -> Iterator[None]:
    """Seeded RNG (global state restored after) and cuDNN autotuning on, as in training."""
    cuda = device.type == "cuda"
    previous = torch.backends.cudnn.benchmark
    with torch.random.fork_rng(devices=[device.index or 0] if cuda else []), \
            (torch.cuda.device(device) if cuda else contextlib.nullcontext()):
        torch.manual_seed(seed)
        torch.backends.cudnn.benchmark = cuda or previous
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = previous


def _measure(build: Callable[[], nn.Module], s: _Settings, device: torch.device,
             state: dict[str, object]) -> dict[str, object]:
    fmt = torch.channels_last if s.memory_format == "channels_last" else torch.contiguous_format
    model = build().to(device=device, memory_format=fmt).train()
    opt = _make_optimizer(s.optimizer, model.parameters())
    x = torch.randn(s.batch_size, 3, s.resolution, s.resolution, device=device)
    x = x.contiguous(memory_format=fmt)
    y = torch.randint(0, s.num_classes, (s.batch_size,), device=device)
    state.update(model=model, opt=opt, x=x, y=y)
    amp = s.precision != "fp32"
    dtype = torch.bfloat16 if s.precision == "bf16" else torch.float16

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=amp):
            loss = F.cross_entropy(model(x), y, label_smoothing=LABEL_SMOOTHING)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

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
    return dict(median_ms=median, spread=(q3 - q1) / median, mean_ms=statistics.fmean(times),
                steps=len(times), warmup_steps=warmup,
                images_per_s=s.batch_size * 1000.0 / median,
                rse=None if math.isinf(rse) else rse, warmup_stable=stable)


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


__all__ = ["OPTIMIZERS", "StepTiming", "time_module_step", "time_training_step"]
