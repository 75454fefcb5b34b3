"""One writer per run folder, and honest SIGINT / SIGTERM on both executors (real processes).

Every run here is started in its own session and stopped through its process group, as a
terminal's Ctrl-C or a job scheduler does; nothing else is signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nas.cli.search import main
from nas.run.lock import holder

REPO = Path(__file__).resolve().parents[2]


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("called although the run must stop before this")


@contextmanager
def _search(out: Path, executor: str, budget: int,
            args: list[str]) -> Iterator[subprocess.Popen[str]]:
    """``nas-search`` in a new session; whatever is left of its process group is killed after."""
    cmd = [sys.executable, "-m", "nas.cli.search", "--budget", str(budget), "--executor", executor,
           "--out", str(out), *args]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield proc
    finally:
        if _group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def _group(pgid: int) -> list[str]:
    """The processes still in process group ``pgid`` (zombies aside)."""
    table = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,comm="], capture_output=True,
                           text=True, check=True).stdout
    rows = [line.split(None, 3) for line in table.splitlines()]
    return [row[3] for row in rows if len(row) == 4 and row[1] == str(pgid)
            and not row[2].startswith("Z")]


def _wait_until(done: Callable[[], bool], proc: subprocess.Popen[str],
                timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert proc.poll() is None, f"exited early with {proc.returncode}: {proc.communicate()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _rows(out: Path) -> pd.DataFrame:
    board = out / "leaderboard.parquet"
    return pd.read_parquet(board) if board.exists() else pd.DataFrame({"arch": []})


def _interrupted(proc: subprocess.Popen[str], out: Path, signum: signal.Signals,
                 budget: int) -> pd.DataFrame:
    """Signal the run's process group once a row is on disk; check the exit, the one line and
    that every process of the group ended; return the rows kept."""
    _wait_until(lambda: len(_rows(out)) >= 1, proc)
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    deadline = time.monotonic() + 10
    while _group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group(proc.pid) == []  # Ray's processes and the trials in flight ended too
    assert proc.returncode == 128 + signum
    kept = _rows(out)
    assert 1 <= len(kept) < budget
    assert err.strip().splitlines()[-1] == (
        f"interrupted by {signum.name}: {len(kept)} of {budget} candidates "
        f"{'is' if len(kept) == 1 else 'are'} saved in "
        f"{out / 'leaderboard.parquet'}; run the same command with --out {out} to continue")
    assert "Traceback" not in err and "***" not in err  # no raw signal dumps
    assert (out / "reward.png").is_file() and (out / "pareto.png").is_file()  # of what is kept
    return kept


def _resumed(out: Path, executor: str, budget: int, args: list[str],
             kept: pd.DataFrame) -> None:
    assert main(["--budget", str(budget), "--executor", executor, "--out", str(out), *args]) == 0
    rows = _rows(out)
    assert len(rows) == budget and rows["arch_hash"].is_unique and rows["number"].is_unique
    pd.testing.assert_frame_equal(rows.iloc[:len(kept)].drop(columns="pareto"),
                                  kept.drop(columns="pareto"))


def test_second_writer_is_refused_at_once_and_sigint_keeps_the_first_writers_rows(
        tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    with _search(out, "inline", 2, tiny_args) as first:
        _wait_until(lambda: holder(out) is not None, first)
        with monkeypatch.context() as patch:
            patch.setattr("nas.search.run.load_data", _never)
            patch.setattr("nas.search.run.make_executor", _never)  # refused before Ray starts
            assert main(["--budget", "2", "--executor", "ray", "--out", str(out),
                         *tiny_args]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {out} is in use by nas-search (PID {first.pid} on "
                              f"{socket.gethostname()}, since ")
        assert err.count("\n") == 1
        kept = _interrupted(first, out, signal.SIGINT, 2)
    _resumed(out, "inline", 2, tiny_args, kept)


@pytest.mark.parametrize(("executor", "signum", "resume_with"), [
    pytest.param("inline", signal.SIGTERM, "inline", id="inline-SIGTERM"),
    pytest.param("ray", signal.SIGINT, "ray", id="ray-SIGINT"),
    # The executor is not part of a run's identity: a run stopped under Ray continues inline.
    pytest.param("ray", signal.SIGTERM, "inline", id="ray-SIGTERM"),
])
def test_signal_keeps_finished_rows_and_the_resumed_run_completes_the_budget(
        tmp_path: Path, tiny_args: list[str], executor: str, signum: signal.Signals,
        resume_with: str) -> None:
    out = tmp_path / "run"
    with _search(out, executor, 2, tiny_args) as proc:
        kept = _interrupted(proc, out, signum, 2)
    _resumed(out, resume_with, 2, tiny_args, kept)
