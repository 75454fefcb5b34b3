"""One writer per run folder: an exclusive OS lock on ``<folder>/.lock``.

A search, a training or a validation that writes into a folder holds this lock for as long as
it runs. The lock is ``fcntl.flock`` on an open file, so the kernel releases it when the
process exits in any way (also ``kill -9``): a stale lock cannot outlive its holder. The file
also records who holds it (PID, host, command, since when), which the refusal names. Readers
(pandas, DuckDB, ``nas-scale`` reading a leaderboard) never need the lock.

``flock`` locks are per open file description: a second ``RunLock`` on the same folder in the
same process is refused too, which is what a test of two writers needs.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from search_space.errors import NasError

LOCK_FILE = ".lock"


class RunLockedError(NasError, RuntimeError):
    """Another process is writing into the folder."""


class RunLock:
    """``with RunLock(folder, "nas-search"):`` holds the folder's lock (the folder must exist)."""

    def __init__(self, folder: str | os.PathLike[str], command: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.command = command
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLockedError` naming the holder, at once."""
        if self._file is not None:
            return
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(self.path)
            handle.close()
            raise RunLockedError(f"{self.folder} is in use by {holder}; wait for it to end or "
                                 "use another --out") from None
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                   "argv": sys.argv, "since": datetime.now(timezone.utc).isoformat()}, handle)
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is None:
            return
        try:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


def holder(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Who holds ``folder``'s lock right now (the recorded PID, host, command), or None."""
    path = Path(folder) / LOCK_FILE
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(path)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe(path: Path) -> str:
    record = _read(path)
    if not record:
        return "another process"
    return (f"{record.get('command', 'another process')} (PID {record.get('pid', '?')} on "
            f"{record.get('host', '?')}, since {record.get('since', '?')})")


__all__ = ["LOCK_FILE", "RunLock", "RunLockedError", "holder"]
