from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# A tiny built-in data set and tiny proxy/timing settings: every candidate takes ~1 s on CPU.
TINY_DATA = "synthetic:classes=4,per_class=24,resolution=32,seed=1"
TINY_ARGS = [
    "--hardware", "cpu",
    "--space", "v2b0",
    "--data", TINY_DATA,
    "--epochs", "1",
    "--proxy-resolution", "16",
    "--timing-resolution", "32",
    "--timing-batch", "2",
    "--timing-steps", "5",
    "--timing-budget", "0.5",
    "--cpus-per-trial", "1",
    "--no-progress",
]


@pytest.fixture
def tiny_args() -> list[str]:
    return list(TINY_ARGS)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-candidate inline run, built once per test module: copy it (``run_copy``)
    before changing it."""
    from nas.cli.search import main

    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["--budget", "1", "--executor", "inline", "--out", str(out), *TINY_ARGS]) == 0
    return out


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out
