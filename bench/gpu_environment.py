"""What a machine is and holds, as JSON: the GPU check's first step (``bench/gpu_check.py``).

Python, the device ``--hardware auto`` resolves to (name, driver, CUDA, cuDNN, memory), the
versions of the packages the toolkit and the check need, whether each package the GPU machine
gets as a carried wheel imports (one whose own needs are missing fails here, named), whether
``ray`` is importable (the check never needs it), and on CUDA the bf16 matrix-product rate.

    python bench/gpu_environment.py OUT.json
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from proxy_train.hardware import describe_device, resolve_hardware

PACKAGES = ("torch", "numpy", "optuna", "kornia", "kornia_rs", "sqlalchemy", "alembic",
            "mako", "colorlog", "typing_extensions", "pandas", "pyarrow", "matplotlib",
            "pillow", "safetensors", "tqdm", "timm", "pytest", "pytest-timeout", "setuptools",
            "effnas", "ray")
IMPORTS = ("optuna", "kornia", "pandas", "pyarrow", "matplotlib", "timm")


def environment() -> dict[str, Any]:
    target = resolve_hardware("auto")
    info: dict[str, Any] = {
        "python": f"{platform.python_version()} ({sys.executable})",
        "target": {"name": target.name, "device": target.device,
                   "precision": target.profile.precision,
                   "timing_batch": target.profile.timing_batch},
        "device": describe_device(target),
        "ray_importable": importlib.util.find_spec("ray") is not None,
    }
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    info["packages"] = versions
    imports = {}
    for name in IMPORTS:
        try:
            importlib.import_module(name)
            imports[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - what fails is the finding
            imports[name] = f"{type(exc).__name__}: {exc}"
    info["imports"] = imports
    if target.is_cuda:
        info["bf16_matmul_tflops"] = matmul_tflops(target.device)
    return info


def matmul_tflops(device: str, n: int = 8192, repeats: int = 10) -> float:
    """bf16 ``n x n x n`` matrix products per second, in TFLOP/s (CUDA events)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ a
    end.record()
    torch.cuda.synchronize(device)
    return round(repeats * 2 * n**3 / (start.elapsed_time(end) / 1e3) / 1e12)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python bench/gpu_environment.py OUT.json", file=sys.stderr)
        return 2
    text = json.dumps(environment(), indent=1, default=str) + "\n"
    Path(args[0]).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
