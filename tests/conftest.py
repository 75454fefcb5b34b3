"""Suite-wide settings.

* **A home of its own.** The suite never reads or writes the user's home: before anything
  else is imported, ``HOME`` (and the XDG and Matplotlib folders under it) point at an empty
  temporary folder of this process, and the Ray variables that would let state outside the
  suite decide a test (a token, an address, an authentication mode) are removed. Child
  processes inherit all of it; tests that start Ray nodes give each node a fresh home of its
  own (``tests/nas/ray_nodes.py``), as separate machines have.
* **One thread per process**: the suite runs as several processes on a small machine, and
  more torch threads than cores slows torch down many times.
* **The ``gpu`` marker**: a test of a CUDA path (``bench/gpu_check.py`` runs them on a GPU
  machine). Without CUDA such tests are skipped, unless ``EFFNAS_GPU_REHEARSAL=1`` (the GPU
  check's dry run) asks to rehearse them: then they run on the CPU, and those that need a
  real CUDA device skip themselves (``gpu_device`` says which device they run on).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

SUITE_HOME = tempfile.mkdtemp(prefix="effnas-test-home-")
os.environ["HOME"] = SUITE_HOME
atexit.register(shutil.rmtree, SUITE_HOME, True)
for _name, _sub in (("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config"),
                    ("XDG_DATA_HOME", ".local/share"), ("MPLCONFIGDIR", ".config/matplotlib")):
    os.environ[_name] = os.path.join(SUITE_HOME, _sub)
for _name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
    os.environ.pop(_name, None)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

GPU_REHEARSAL = os.environ.get("EFFNAS_GPU_REHEARSAL") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gpu: tests a CUDA path; skipped without CUDA (EFFNAS_GPU_REHEARSAL=1 runs "
                   "it on the CPU where it can)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available() or GPU_REHEARSAL:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture
def gpu_device() -> torch.device:
    """The device a gpu-marked test runs on: CUDA, or the CPU in a rehearsal."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
