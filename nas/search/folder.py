"""The run folder (``--out``): checked before any work, held by one writer, able to check itself.

A run's settings (the ``SearchConfig``, space, recipe, data summary and the reference timing)
are stored twice: in ``run.json`` and in the leaderboard's Parquet metadata
(``effnas.settings``); both are rewritten whenever the run starts or continues. One copy is
enough to continue a run: a missing ``run.json`` is restored from the leaderboard and a
leaderboard without settings gets them from ``run.json``. A copy that cannot be read, or two
copies that disagree, is refused with one line that says which file to move away; a run is
never restarted silently, and its reference timing is read from the stored copy, never measured
again. A leaderboard with rows but neither copy is refused too.

:meth:`RunFolder.claim` creates the folder if needed and takes its lock (``nas.run.lock``); if the
command fails before the run's settings are first written (:meth:`RunFolder.write_record`),
everything the claim created is removed again, so bad input leaves nothing behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nas.run.claim import FolderClaim
from nas.run.settings import ConfigError
from nas.search.config import (
    IDENTITY_DEFAULTS,
    IDENTITY_FIELDS,
    SearchConfig,
    check_same_run,
    stored_setting,
)
from proxy_train.files import atomic_write
from results.errors import LeaderboardError
from results.leaderboard import Leaderboard
from search_space.checks import is_number

RUN_FILE = "run.json"
_ELSEWHERE = "move it away or use another --out"


class RunFolder:
    """``--out`` of a search: its checks, its lock, and the run stored in it."""

    def __init__(self, path: str | os.PathLike[str], command: str = "nas-search", *,
                 paced: bool = False) -> None:
        self.path = Path(path)
        self.run_file = self.path / RUN_FILE
        self.leaderboard = Leaderboard(self.path, paced=paced)
        """``paced``: see ``results.leaderboard`` (the search's, which flushes it however it
        ends)."""
        self.restored: str | None = None
        """After :meth:`stored`: which copy of the settings was missing and is rewritten."""
        self._claim = FolderClaim(self.path, command)

    @contextmanager
    def claim(self) -> Iterator[RunFolder]:
        """Create the folder if needed and hold its lock for the block (``nas.run.claim``); if the
        block raises before :meth:`write_record`, what the claim created is removed again."""
        with self._claim.hold():
            yield self

    @property
    def kept(self) -> bool:
        """Whether the folder holds this command's run (its settings were written)."""
        return self._claim.kept

    def stored(self, config: SearchConfig) -> dict[str, Any] | None:
        """The run stored here (``run.json``'s content), after checking both copies against
        each other and against ``config``; None for a folder without a run."""
        record = self.record()
        if record is not None:
            check_same_run(config, record, self.path)
        return record

    def record(self) -> dict[str, Any] | None:
        """The run stored here after checking both copies against each other (no lock
        needed); None for a folder without a run."""
        board = self.leaderboard.path
        try:
            in_board = self.leaderboard.settings
            rows = len(self.leaderboard)
        except LeaderboardError as exc:
            raise ConfigError(f"{exc}; {_ELSEWHERE}") from None
        if in_board:
            problem = record_problem(in_board)
            if problem:
                raise ConfigError(f"{board}: its run settings {problem}; {_ELSEWHERE}")
        in_file = self._read_run_file(has_copy=bool(in_board))
        if in_file is None and not in_board:
            if rows:
                raise ConfigError(f"{board} holds {rows} leaderboard rows but no run settings "
                                  f"(no {RUN_FILE}, none in its metadata); {_ELSEWHERE}")
            return None
        if in_file is not None and in_board:
            difference = _difference(in_file, in_board)
            if difference:
                raise ConfigError(
                    f"{self.run_file} and {board} hold different run settings ({difference}); "
                    f"move {self.run_file} away to continue with the leaderboard's, or use "
                    "another --out")
        record = in_file if in_file is not None else in_board
        if in_file is None:
            self.restored = f"{self.run_file} was missing; restored from {board}"
        elif not in_board and rows:
            self.restored = f"{board} had no run settings; restored from {self.run_file}"
        return record

    def write_record(self, record: dict[str, Any]) -> None:
        """Store the run's settings in both copies: leaderboard metadata, then ``run.json``."""
        self.leaderboard.set_settings(record)
        text = json.dumps(record, indent=2, sort_keys=True, default=str)
        atomic_write(self.run_file, lambda fh: fh.write(text.encode("utf-8")))
        self._claim.keep()  # the folder holds a run now: never removed on a later failure

    def _read_run_file(self, *, has_copy: bool) -> dict[str, Any] | None:
        if not self.run_file.exists():
            return None
        fix = (f"move it away to continue with the copy in {self.leaderboard.path}" if has_copy
               else _ELSEWHERE)
        try:
            record = json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{self.run_file} is not a readable run file ({err}); "
                              f"{fix}") from None
        problem = record_problem(record)
        if problem:
            raise ConfigError(f"{self.run_file} is not a run file: it {problem}; {fix}")
        return dict(record)

def record_problem(record: object) -> str | None:
    """Why ``record`` is not a stored run's settings (None if it is one)."""
    if not isinstance(record, dict):
        return "is not a JSON object"
    if not isinstance(record.get("run_id"), str) or not record["run_id"]:
        return "has no run_id"
    config = record.get("config")
    if not isinstance(config, dict):
        return "has no config"
    missing = [name for name in IDENTITY_FIELDS
               if name not in config and name not in IDENTITY_DEFAULTS]
    if missing:
        return f"has no setting {missing[0]!r}"
    reference = record.get("reference")
    step_ms: Any = reference.get("step_time_ms") if isinstance(reference, dict) else None
    if not is_number(step_ms) or step_ms <= 0:
        return "has no reference step time"
    return None


def _difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """The first setting two stored copies disagree on, as ``name: a vs b``."""
    pairs = [("run_id", a["run_id"], b["run_id"])]
    pairs += [(name, stored_setting(a["config"], name), stored_setting(b["config"], name))
              for name in IDENTITY_FIELDS]
    pairs += [(f"reference {key}", a["reference"].get(key), b["reference"].get(key))
              for key in ("arch", "step_time_ms")]
    for name, x, y in pairs:
        if x != y:
            return f"{name}: {x!r} vs {y!r}"
    return None


__all__ = ["RUN_FILE", "RunFolder", "record_problem"]
