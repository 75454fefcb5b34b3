"""The command layer as a user meets it, the same for every command: ``--version``, ``--help``,
closed pipes, progress in log files, long values in errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from nas.cli import arch, scale, search, train, validate
from nas.cli.command import CLOSED_PIPE_STATUS

REPO = Path(__file__).resolve().parents[2]

MAINS: dict[str, Callable[[list[str] | None], int]] = {
    "nas-arch": arch.main, "nas-search": search.main, "nas-scale": scale.main,
    "nas-train": train.main, "nas-validate": validate.main}


@pytest.mark.parametrize("prog", list(MAINS))
def test_version_prints_the_package_version(prog: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert MAINS[prog](["--version"]) == 0
    assert capsys.readouterr().out == f"{prog} {metadata.version('effnas')}\n"


def _first_line_then_close(argv: list[str]) -> tuple[str, int, str]:
    """Run a command with stdout to a pipe, read one line and close the pipe, as
    ``COMMAND | head -1`` does; the line, the exit status and stderr."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        proc.stdout.close()
        status = proc.wait(timeout=300)
        return line, status, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


BIG = "stem8-" + "-".join(["fused_r1_k3_s1_e1_c8"] * 900) + "-head16-cls2"  # 150 kB of JSON


@pytest.mark.parametrize("argv", [
    ["nas.cli.arch", "sample", "--space", "paper", "--n", "2000"],
    ["nas.cli.arch", "export", BIG, "--format", "json"],
])
def test_a_closed_pipe_ends_the_command_quietly(argv: list[str]) -> None:
    line, status, err = _first_line_then_close(argv)
    assert line.strip()
    assert (status, err) == (CLOSED_PIPE_STATUS, "")
