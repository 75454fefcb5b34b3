"""Hardware profiles and resolution of hardware names onto this machine's devices."""

from __future__ import annotations

import pytest
import torch

from proxy_train import hardware
from proxy_train.errors import HardwareError
from proxy_train.hardware import (
    HARDWARE_NAMES,
    PROFILES,
    HardwareProfile,
    Target,
    available_hardware,
    describe_device,
    resolve_hardware,
)
from search_space.errors import NasError

H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch):
    """Pretend this machine has the given CUDA devices (names only; nothing runs on them)."""

    def install(*names: str) -> None:
        monkeypatch.setattr(hardware, "_cuda_devices", lambda: list(names))

    return install


def test_cpu_resolves_on_any_machine() -> None:
    target = resolve_hardware("cpu")
    assert isinstance(target, Target)
    assert target.device == "cpu"
    assert target.profile is PROFILES["cpu"]
    assert target.name == "cpu" and not target.is_cuda
    assert target.device_name == hardware.cpu_model() != ""
    assert resolve_hardware("  CPU ").device == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_auto_is_cpu_without_cuda() -> None:
    assert resolve_hardware("auto").device == "cpu"
    assert available_hardware() == ["cpu"]


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(HardwareError) as info:
        resolve_hardware("tpu")
    message = str(info.value)
    assert message.startswith("unknown hardware 'tpu'; expected one of")
    for name in ("auto", "cpu", "v100", "t4", "a100", "a10g", "l4", "h100", "h200"):
        assert repr(name) in message
    assert isinstance(info.value, NasError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_missing_hardware_lists_what_is_present() -> None:
    with pytest.raises(HardwareError, match=r"^hardware 'v100' not found on this machine; "
                                            r"present: cpu$"):
        resolve_hardware("v100")


def test_missing_hardware_on_an_h100_machine(fake_gpus) -> None:
    fake_gpus(H100)
    with pytest.raises(HardwareError) as info:
        resolve_hardware("v100")
    assert str(info.value) == ("hardware 'v100' not found on this machine; "
                               "present: cpu, NVIDIA H100 80GB HBM3 (h100)")


def test_named_and_auto_pick_the_matching_device(fake_gpus) -> None:
    fake_gpus("Tesla T4", H100)
    assert resolve_hardware("h100") == Target(PROFILES["h100"], "cuda:1", H100)
    assert resolve_hardware("t4") == Target(PROFILES["t4"], "cuda:0", "Tesla T4")
    assert resolve_hardware("auto").device == "cuda:0"  # the first known device
    assert available_hardware() == ["cpu", "t4", "h100"]


def test_auto_on_an_unknown_gpu_gets_a_generic_profile(fake_gpus) -> None:
    fake_gpus("NVIDIA RTX A6000")
    target = resolve_hardware("auto")
    assert target.device == "cuda:0"
    assert target.name == "nvidia-rtx-a6000"
    assert target.profile.kind == "cuda" and target.profile.ray_accelerator is None
    assert resolve_hardware("nvidia-rtx-a6000") == target
    assert available_hardware() == ["cpu", "nvidia-rtx-a6000"]


@pytest.mark.parametrize(
    ("device_name", "profile"),
    [
        ("Tesla V100-SXM2-16GB", "v100"),
        ("Tesla V100S-PCIE-32GB", "v100"),
        ("Tesla T4", "t4"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA A100 80GB PCIe", "a100"),
        ("NVIDIA A10G", "a10g"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H100 PCIe", "h100"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA L40S", None),  # 'l4' must not match L40S
        ("NVIDIA GH200 480GB", None),  # nor 'h200' GH200
        ("NVIDIA A10", None),
    ],
)
def test_device_names_match_profiles_as_whole_tokens(device_name: str,
                                                     profile: str | None) -> None:
    matched = [p.name for p in PROFILES.values() if p.matches(device_name)]
    assert matched == ([] if profile is None else [profile])


def test_profile_table() -> None:
    assert HARDWARE_NAMES == ("auto", "cpu", "v100", "t4", "a100", "a10g", "l4", "h100", "h200")
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert profile.precision in ("bf16", "fp16", "fp32")
        assert profile.timing_batch >= 1
        assert (profile.kind == "cpu") == (name == "cpu")
    # No bf16 before Ampere: Volta and Turing train in fp16.
    assert PROFILES["v100"].precision == "fp16"
    assert PROFILES["t4"].precision == "fp16"
    for name in ("a100", "a10g", "l4", "h100", "h200"):
        assert PROFILES[name].precision == "bf16"
    assert PROFILES["cpu"].precision == "fp32" and PROFILES["cpu"].ray_accelerator is None
    assert {n: p.ray_accelerator for n, p in PROFILES.items() if n != "cpu"} == {
        "v100": "V100", "t4": "T4", "a100": "A100", "a10g": "A10G", "l4": "L4",
        "h100": "H100", "h200": "H200"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "tpu"}, "kind 'tpu' not in"),
        ({"precision": "int8"}, "precision 'int8' not in"),
        ({"timing_batch": 0}, "timing_batch 0 must be an integer >= 1"),
        ({"kind": "cuda"}, "a cuda profile needs cuda_patterns"),
    ],
)
def test_invalid_profiles_are_rejected(kwargs: dict, message: str) -> None:
    base = {"name": "x", "kind": "cpu", "precision": "fp32"} | kwargs
    with pytest.raises(HardwareError, match=message):
        HardwareProfile(**base)


def test_describe_device_cpu() -> None:
    info = describe_device("cpu")
    assert info["device"] == "cpu"
    assert info["torch_version"] == torch.__version__
    assert info["device_name"] == info["cpu_model"] == hardware.cpu_model()
    assert info["driver_version"] is None
    assert info["threads"] == torch.get_num_threads()
    assert describe_device(resolve_hardware("cpu")) == info
