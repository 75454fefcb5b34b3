"""Claiming an output folder for one writer, and leaving nothing behind on bad input.

``FolderClaim(path, command).hold()`` creates the folder (and missing parents) if needed and
holds its lock (``nas.run.lock``: a folder another process holds is refused at once, naming the
holder). If the block raises before the holder called :meth:`FolderClaim.keep` (it wrote
something worth keeping), the folders and the lock file the claim created are removed again,
so a refused or failed command leaves the disk as it found it. Searches, trainings and
validations claim their ``--out`` this way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from nas.run.lock import LOCK_FILE, RunLock
from nas.run.settings import ConfigError


class FolderClaim:
    """One writer's hold on a folder (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], command: str) -> None:
        self.path = Path(path)
        self._lock = RunLock(self.path, command)
        self.kept = False

    def keep(self) -> None:
        """The folder holds this command's work now: never removed on a later failure."""
        self.kept = True

    @contextmanager
    def hold(self) -> Iterator[None]:
        created = self._make()
        lock_existed = (self.path / LOCK_FILE).exists()
        try:
            self._lock.acquire()
        except BaseException:
            _remove_folders(created)
            raise
        try:
            yield
        except BaseException:
            if not self.kept:
                if not lock_existed:
                    self._lock.discard()
                _remove_folders(created)
            raise
        finally:
            self._lock.release()

    def _make(self) -> list[Path]:
        """Create the folder and missing parents; return those this call created."""
        missing: list[Path] = []
        folder = self.path
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        created: list[Path] = []
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue  # made by someone else meanwhile: not ours to remove
            except OSError as exc:
                _remove_folders(created)
                raise ConfigError(f"cannot create --out {self.path}: "
                                  f"{exc.strerror or exc}") from None
            created.append(folder)
        return created


def _remove_folders(created: list[Path]) -> None:
    for folder in reversed(created):
        with suppress(OSError):
            folder.rmdir()  # only ever removes an empty folder


__all__ = ["FolderClaim"]
