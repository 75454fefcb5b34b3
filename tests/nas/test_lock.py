"""One writer per run folder; the kernel frees the lock of a killed holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.run.lock import RunLock, RunLockedError, holder

REPO = Path(__file__).resolve().parents[2]


def test_second_writer_is_refused_with_the_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path, "nas-search"):
        record = holder(tmp_path)
        assert record is not None and record["pid"] == os.getpid()
        assert record["command"] == "nas-search"
        with pytest.raises(RunLockedError, match=rf"in use by nas-search \(PID {os.getpid()} on "):
            RunLock(tmp_path, "nas-train").acquire()
    assert holder(tmp_path) is None
    with RunLock(tmp_path, "nas-train") as again:  # released: the next writer gets it
        assert again.held


def test_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    code = ("import sys, time; from nas.run.lock import RunLock; "
            f"lock = RunLock({str(tmp_path)!r}, 'holder'); lock.acquire(); print('locked', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"PID {proc.pid}"):
            RunLock(tmp_path, "second").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 5
    while holder(tmp_path) is not None and time.time() < deadline:
        time.sleep(0.05)
    with RunLock(tmp_path, "after"):
        assert holder(tmp_path)["command"] == "after"
