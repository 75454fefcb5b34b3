"""The resumable folder every job writes into: one writer, one stored record, the same run only.

A search (``nas-search --out``), a training (``nas-train --out``) and a validation
(``nas-validate --out``) each keep their work in a folder and continue it when the same
command runs again. What they share is this class; what differs is the record each stores
(``run.json``, ``train.json``, ``validation.parquet``'s settings) and the settings that define
its run (its :class:`~nas.run.identity.Identity`). A job subclasses :class:`ResumableFolder`
with how its record is read and written; the folder does the rest, in this order:

1. **check**: before any work and without the lock, ``--out`` is a usable folder no other
   process holds (``nas.run.settings.check_out``);
2. **claim**: the folder is created if needed and locked for one writer (``nas.run.claim``);
   if the command fails before it recorded anything, what the claim created is removed again;
3. **resume**: the stored record, if any, is read and its identity compared with the
   command's; a folder holding another run is refused naming every setting that differs
   (``--out runs/x holds another validation: k was 10, now 12; epochs was 8, now 6``);
4. **record**: the job's record is written (atomically, by the job's one writer) and the
   folder is kept from then on, however the command ends.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

from nas.run.claim import FolderClaim
from nas.run.identity import Identified, Identity, changes, differences
from nas.run.settings import ConfigError, check_out

R = TypeVar("R", bound=Identified)


class ResumableFolder(ABC, Generic[R]):
    """A job's ``--out`` (see the module docstring). ``holds`` names what a folder with
    another run of the job holds: ``a different run``, ``another training``, ..."""

    holds: str = "another run"

    def __init__(self, path: str | os.PathLike[str], command: str) -> None:
        self.path = Path(path)
        self.command = command
        self._claim = FolderClaim(self.path, command)

    # -- the job's part --------------------------------------------------------------------

    @abstractmethod
    def read(self) -> R | None:
        """The record stored here, or None for a folder without one; a record that cannot
        be read raises ``ConfigError`` naming the file and what to do."""

    @abstractmethod
    def _write(self, record: R) -> None:
        """Store ``record`` (atomically: a reader sees the old record or the new one)."""

    # -- lock, claim, resume, record -------------------------------------------------------

    def check(self) -> R | None:
        """Before any work, without the lock: ``--out`` is usable and free, and its record
        (if any) readable. Returns the record."""
        check_out(self.path)
        return self.read()

    @contextmanager
    def claim(self) -> Iterator[None]:
        """Create the folder if needed and hold its lock for the block; if the block raises
        before :meth:`record`, what the claim created is removed again."""
        with self._claim.hold():
            yield

    @property
    def kept(self) -> bool:
        """Whether the folder holds this command's work (it recorded something)."""
        return self._claim.kept

    def resume(self, wanted: Identity) -> R | None:
        """The record stored here once its run is known to be ``wanted``'s; None for a
        folder without one."""
        stored = self.read()
        if stored is not None:
            self.check_same(stored, wanted)
        return stored

    def check_same(self, stored: R, wanted: Identity) -> None:
        """Refuse to continue ``stored`` with a command whose run differs, naming every
        setting that differs."""
        found = differences(stored.identity(), wanted)
        if found:
            raise ConfigError(f"--out {self.path} holds {self.holds}: {changes(found)}; use "
                              "another --out or the same settings")

    def record(self, record: R) -> None:
        """Store ``record``; the folder holds this command's work from now on."""
        self._write(record)
        self._claim.keep()


__all__ = ["ResumableFolder"]
