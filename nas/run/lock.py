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
        while True:
            handle = open(self.path, "a+", encoding="utf-8")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise _locked(self.folder) from None
            except BaseException:
                handle.close()
                raise
            if _same_file(handle, self.path):
                break
            # The previous holder removed the lock file (see ``discard``) between our open and
            # our flock: the lock we got is on a file nobody else will ever open. Try again.
            handle.close()
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

    def discard(self) -> None:
        """Remove the lock file, then release the lock: for a holder that leaves the folder as
        it found it. A process that opened the file meanwhile notices and opens it afresh."""
        if self._file is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.release()

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


def check_free(folder: str | os.PathLike[str]) -> None:
    """Raise :class:`RunLockedError` naming the holder if another process holds ``folder``'s
    lock (without taking it: a quick check before any work)."""
    if holder(folder) is not None:
        raise _locked(Path(folder))


def _locked(folder: Path) -> RunLockedError:
    return RunLockedError(f"{folder} is in use by {_describe(folder / LOCK_FILE)}; wait for it "
                          "to end or use another --out")


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (opened.st_dev, opened.st_ino) == (on_disk.st_dev, on_disk.st_ino)


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


__all__ = ["LOCK_FILE", "RunLock", "RunLockedError", "check_free", "holder"]
