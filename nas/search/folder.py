"""The run folder (``--out``): checked before any work, held by one writer, able to check itself.

A run's settings (its :class:`~nas.search.record.RunRecord`: the ``SearchConfig``, space,
recipe, data summary and the reference timing) are stored twice: in ``run.json`` and in the
leaderboard's Parquet metadata (``effnas.settings``); both are rewritten whenever the run
starts or continues. One copy is enough to continue a run: a missing ``run.json`` is restored
from the leaderboard and a leaderboard without settings gets them from ``run.json``. A copy
that cannot be read, or two copies that disagree, is refused with one line that says which
file to move away; a run is never restarted silently, and its reference timing is read from
the stored copy, never measured again. A leaderboard with rows but neither copy is refused too.
Settings without a single leaderboard row (the leaderboard was moved away, or the run ended
before its first candidate) start a new run with those settings, and :attr:`RunFolder.starts_over`
says so.

The lock, the claim, the identity check and the record are ``nas.run.folder``'s: if the
command fails before the run's settings are first written (:meth:`RunFolder.record`),
everything the claim created is removed again, so bad input leaves nothing behind.
"""

from __future__ import annotations

import json
import os
from typing import Any

from nas.run.folder import ResumableFolder
from nas.run.identity import differences
from nas.run.settings import ConfigError
from nas.search.record import RunRecord
from results.errors import LeaderboardError
from results.leaderboard import Leaderboard
from results.records import RecordError, write_json_record

RUN_FILE = "run.json"
OUT = "use another --out"
"""What a search's messages offer besides moving a file away."""


class RunFolder(ResumableFolder[RunRecord]):
    """``--out`` of a search: its checks, its lock, and the run stored in it.

    ``elsewhere`` is the other way out a message offers (``use another --out``; a command
    that only reads the search says where else to look instead)."""

    holds = "a different run"

    def __init__(self, path: str | os.PathLike[str], command: str = "nas-search", *,
                 paced: bool = False, elsewhere: str = OUT) -> None:
        super().__init__(path, command)
        self.run_file = self.path / RUN_FILE
        self.leaderboard = Leaderboard(self.path, paced=paced)
        """``paced``: see ``results.leaderboard`` (the search's, which flushes it however it
        ends)."""
        self.restored: str | None = None
        """After :meth:`read`: which copy of the settings was missing and is rewritten."""
        self.starts_over: str | None = None
        """After :meth:`read`: why the run stored here starts over as a new run (its settings
        are stored, but no leaderboard row: the leaderboard was moved away, or the run ended
        before its first candidate)."""
        self._elsewhere = f"move it away or {elsewhere}"
        self._other = elsewhere

    def read(self) -> RunRecord | None:
        """The run stored here after checking both copies against each other (no lock
        needed); None for a folder without a run."""
        board = self.leaderboard.path
        try:
            in_board, rows = self.leaderboard.settings, len(self.leaderboard)
        except LeaderboardError as exc:
            raise ConfigError(f"{exc}; {self._elsewhere}") from None
        board_record = self._board_record(in_board)
        in_file = self._read_run_file(has_copy=board_record is not None)
        if in_file is None and board_record is None:
            if rows:
                raise ConfigError(f"{board} holds {rows} leaderboard rows but no run settings "
                                  f"(no {RUN_FILE}, none in its metadata); {self._elsewhere}")
            return None
        if in_file is not None and board_record is not None:
            self._check_copies(in_file, board_record)
        if in_file is None:
            self.restored = f"{self.run_file} was missing; restored from {board}"
        elif board_record is None and rows:
            self.restored = f"{board} had no run settings; restored from {self.run_file}"
        if not rows:
            why = f"{board} holds no rows" if board.exists() else f"{board} is missing"
            source = self.run_file if in_file is not None else board
            self.starts_over = (f"{why}: a new run starts in {self.path} with the settings "
                                f"stored in {source}")
        record = in_file or board_record
        assert record is not None
        return record

    def _write(self, record: RunRecord) -> None:
        """Both copies: leaderboard metadata, then ``run.json``."""
        doc = record.to_document()
        self.leaderboard.set_settings(doc)
        write_json_record(self.run_file, doc, sort_keys=True)

    def _board_record(self, in_board: dict[str, Any]) -> RunRecord | None:
        if not in_board:
            return None
        try:
            return RunRecord.from_document(in_board)
        except RecordError as err:
            raise ConfigError(f"{self.leaderboard.path}: its run settings {err}; "
                              f"{self._elsewhere}") from None

    def _check_copies(self, in_file: RunRecord, in_board: RunRecord) -> None:
        found = differences(in_file.copy_identity(), in_board.copy_identity())
        if found:
            shown = "; ".join(d.versus() for d in found)
            raise ConfigError(
                f"{self.run_file} and {self.leaderboard.path} hold different run settings "
                f"({shown}); move {self.run_file} away to continue with the leaderboard's, or "
                f"{self._other}")

    def _read_run_file(self, *, has_copy: bool) -> RunRecord | None:
        if not self.run_file.exists():
            return None
        fix = (f"move it away to continue with the copy in {self.leaderboard.path}" if has_copy
               else self._elsewhere)
        try:
            doc = json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{self.run_file} is not a readable run file ({err}); "
                              f"{fix}") from None
        try:
            return RunRecord.from_document(doc)
        except RecordError as err:
            raise ConfigError(f"{self.run_file} is not a run file: it {err}; {fix}") from None


__all__ = ["OUT", "RUN_FILE", "RunFolder"]
