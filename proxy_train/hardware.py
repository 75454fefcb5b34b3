"""Hardware targets: which device a training step is timed on, and in what precision.

The search ranks candidates by their training step time *on the hardware that will train the
final model* (the best architecture for training speed differs between a V100 and an H100).
A ``HardwareProfile`` names such a target: how to recognise it among the CUDA devices of a
machine, the mixed precision its training uses (no bf16 before Ampere, so V100 and T4 train
in fp16), the per-device batch to time at when none is given, and the accelerator type Ray
uses to place trials on it.

``resolve_hardware(name)`` maps a name onto a device of *this* machine and refuses to time
on anything else: asking for ``v100`` on an H100 machine raises ``HardwareError`` listing
what is present, because a step time measured on the wrong device would silently rank
candidates for the wrong hardware.

Names: ``auto cpu v100 t4 a100 a10g l4 h100 h200``. ``auto`` picks the first CUDA device that
matches a profile, else the first CUDA device under a generic profile named after it, else
the CPU. Patterns match the device name case-insensitively as whole tokens (``l4`` matches
``NVIDIA L4`` but not ``NVIDIA L40S``; ``h200`` does not match ``GH200``).
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass

import torch

from proxy_train.errors import HardwareError
from proxy_train.step import PRECISIONS
from search_space.checks import is_int

KINDS: tuple[str, ...] = ("cpu", "cuda")


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """A hardware target: how to find it and how training runs on it."""

    name: str
    kind: str
    """``'cpu'`` or ``'cuda'``."""
    cuda_patterns: tuple[str, ...] = ()
    """Tokens matched case-insensitively against ``torch.cuda.get_device_name(i)``."""
    precision: str = "fp32"
    """Training precision: ``'bf16'`` / ``'fp16'`` autocast, or ``'fp32'``."""
    timing_batch: int = 8
    """Per-device batch to time at when the caller gives none."""
    ray_accelerator: str | None = None
    """Ray's ``accelerator_type`` resource name (``ray.util.accelerators``), if any."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise HardwareError(f"profile {self.name!r}: kind {self.kind!r} not in {KINDS}")
        if self.precision not in PRECISIONS:
            raise HardwareError(
                f"profile {self.name!r}: precision {self.precision!r} not in {PRECISIONS}")
        if self.kind == "cuda" and not self.cuda_patterns:
            raise HardwareError(f"profile {self.name!r}: a cuda profile needs cuda_patterns")
        if not is_int(self.timing_batch) or self.timing_batch < 1:
            raise HardwareError(
                f"profile {self.name!r}: timing_batch {self.timing_batch!r} "
                "must be an integer >= 1")

    def matches(self, device_name: str) -> bool:
        """Whether a CUDA device name belongs to this profile."""
        return self.kind == "cuda" and any(_token_in(p, device_name) for p in self.cuda_patterns)


def _cuda(name: str, patterns: tuple[str, ...], precision: str, batch: int,
          ray: str) -> HardwareProfile:
    return HardwareProfile(name, "cuda", patterns, precision, batch, ray)


# Timing batches are typical per-device batches of a V2-S-size model at its final training
# resolution in the profile's precision; pass the real one when it is known.
PROFILES: dict[str, HardwareProfile] = {
    p.name: p
    for p in (
        HardwareProfile("cpu", "cpu", (), "fp32", 4, None),
        # Volta and Turing have no bf16 tensor cores: their mixed precision is fp16.
        _cuda("v100", ("v100", "v100s"), "fp16", 64, "V100"),
        _cuda("t4", ("t4",), "fp16", 32, "T4"),
        _cuda("a100", ("a100",), "bf16", 128, "A100"),
        _cuda("a10g", ("a10g",), "bf16", 64, "A10G"),
        _cuda("l4", ("l4",), "bf16", 64, "L4"),
        _cuda("h100", ("h100",), "bf16", 128, "H100"),
        _cuda("h200", ("h200",), "bf16", 128, "H200"),
    )
}
"""Known hardware profiles by name (``auto`` is resolved, not a profile)."""

HARDWARE_NAMES: tuple[str, ...] = ("auto", *PROFILES)


@dataclass(frozen=True, slots=True)
class Target:
    """A profile bound to one device of this machine."""

    profile: HardwareProfile
    device: str
    """A torch device string: ``'cpu'`` or ``'cuda:<index>'``."""
    device_name: str
    """What the device calls itself (CUDA device name, or the CPU model)."""

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def is_cuda(self) -> bool:
        return self.profile.kind == "cuda"


def _token_in(pattern: str, text: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(pattern.lower())}(?![a-z0-9])",
                     text.lower()) is not None


def _slug(device_name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-") or "cuda"


def _cuda_devices() -> list[str]:
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _profile_of(device_name: str) -> HardwareProfile | None:
    for profile in PROFILES.values():
        if profile.matches(device_name):
            return profile
    return None


def _generic_profile(index: int, device_name: str) -> HardwareProfile:
    """A profile for a CUDA device no known profile matches (bf16 if it has it)."""
    bf16 = torch.cuda.is_available() and _supports_bf16(index)
    return HardwareProfile(_slug(device_name), "cuda", (device_name.lower(),),
                           "bf16" if bf16 else "fp16", 64, None)


def _supports_bf16(index: int) -> bool:
    major, _minor = torch.cuda.get_device_capability(index)
    return major >= 8


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def _cpu_target() -> Target:
    return Target(PROFILES["cpu"], "cpu", cpu_model())


def _present() -> list[tuple[str, str, HardwareProfile]]:
    """(name to resolve, description, profile) of every device of this machine, CPU first."""
    rows = [("cpu", "cpu", PROFILES["cpu"])]
    for i, device_name in enumerate(_cuda_devices()):
        profile = _profile_of(device_name) or _generic_profile(i, device_name)
        rows.append((profile.name, f"{device_name} ({profile.name})", profile))
    return rows


def available_hardware() -> list[str]:
    """Names ``resolve_hardware`` accepts on this machine (``'cpu'`` first, no duplicates)."""
    names: list[str] = []
    for name, _desc, _profile in _present():
        if name not in names:
            names.append(name)
    return names


def resolve_hardware(name: str) -> Target:
    """The device of this machine for hardware ``name`` (see the module docstring).

    Raises ``HardwareError`` for an unknown name (listing the known ones) and for known
    hardware that this machine lacks (listing what is present).
    """
    key = str(name).strip().lower()
    devices = _cuda_devices()
    if key == "auto":
        for i, device_name in enumerate(devices):
            profile = _profile_of(device_name)
            if profile is not None:
                return Target(profile, f"cuda:{i}", device_name)
        if devices:
            return Target(_generic_profile(0, devices[0]), "cuda:0", devices[0])
        return _cpu_target()
    if key == "cpu":
        return _cpu_target()
    generic = {_slug(d): i for i, d in enumerate(devices) if _profile_of(d) is None}
    if key not in PROFILES and key not in generic:
        known = list(HARDWARE_NAMES) + [n for n in generic if n not in HARDWARE_NAMES]
        raise HardwareError(f"unknown hardware {name!r}; expected one of {known}")
    for i, device_name in enumerate(devices):
        if key in PROFILES and PROFILES[key].matches(device_name):
            return Target(PROFILES[key], f"cuda:{i}", device_name)
        if generic.get(key) == i:
            return Target(_generic_profile(i, device_name), f"cuda:{i}", device_name)
    present = ", ".join(desc for _n, desc, _p in _present())
    raise HardwareError(f"hardware {name!r} not found on this machine; present: {present}")


@functools.cache
def _driver_version() -> str | None:
    """The NVIDIA driver version (NVML if installed, else ``nvidia-smi``), or None."""
    try:
        import pynvml  # optional; part of nvidia-ml-py

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # noqa: BLE001 - any NVML problem just means "ask nvidia-smi"
        pass
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip().splitlines()[0].strip() or None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def device_name_of(device: str | torch.device) -> str:
    """What a torch device calls itself (the CPU model for ``cpu``)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev.index or 0)
    return cpu_model()


def driver_version(device: str | torch.device) -> str | None:
    """The accelerator driver version of ``device``; None on the CPU or when unknown."""
    return _driver_version() if torch.device(device).type == "cuda" else None


def describe_device(device: str | torch.device | Target) -> dict[str, object]:
    """Provenance of a device, as a JSON-able dict: what a timing was measured on.

    Keys: ``device``, ``device_name``, ``driver_version``, ``cuda_version`` (torch's CUDA
    runtime), ``cudnn_version``, ``torch_version``, ``python_version``, ``cpu_model``,
    ``cpu_count``, ``threads`` (torch intra-op threads), and on CUDA ``compute_capability``
    and ``memory_bytes``.
    """
    if isinstance(device, Target):
        device = device.device
    dev = torch.device(device)
    info: dict[str, object] = {
        "device": str(dev),
        "device_name": device_name_of(dev),
        "driver_version": driver_version(dev),
        "cuda_version": torch.version.cuda,
        "cudnn_version": (torch.backends.cudnn.version()
                          if torch.backends.cudnn.is_available() else None),
        "torch_version": torch.__version__,
        "python_version": sys.version.split()[0],
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev.index or 0)
        info["compute_capability"] = f"{props.major}.{props.minor}"
        info["memory_bytes"] = int(props.total_memory)
    return info


__all__ = [
    "HARDWARE_NAMES",
    "PROFILES",
    "HardwareProfile",
    "Target",
    "available_hardware",
    "cpu_model",
    "describe_device",
    "device_name_of",
    "driver_version",
    "resolve_hardware",
]
