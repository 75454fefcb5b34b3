"""The leaderboard of a run: ``<run_dir>/leaderboard.parquet``, one Parquet file.

Rows are recorded in two steps, so that recording one costs the same whatever the number of
rows before it, while the Parquet file stays one complete file at every moment:

1. **The row is made durable at once**: one line appended (and fsynced) to
   ``leaderboard.pending.jsonl`` (``results.pending``). A run killed at any moment, even with
   SIGKILL, keeps every recorded row.
2. **The Parquet file is rewritten from memory** (atomically: a temporary file in the same
   folder, flushed and fsynced, then ``os.replace``), after which the log is emptied. By
   default after every append. A *paced* leaderboard (``paced=True``: the search's) rewrites
   it only when the rows waiting in the log reach :data:`PACE_FRACTION` of the rows in the
   file, or :data:`PACE_SECONDS` have passed since the last rewrite (:meth:`flush_if_stale`
   also checks the second rule between appends), and always on :meth:`Leaderboard.flush`,
   which the search calls when it ends in any way and when it starts (so a killed run's log
   is folded in by the next one). When candidates take longer than :data:`PACE_SECONDS`,
   every row reaches the file as it is recorded. When they take milliseconds (``--objective
   surrogate``), the file is rewritten after every 10% more rows: the bytes written per row
   stay constant (about the row's log line plus ten times its share of the file) however many
   rows the run has, and the file lags by at most a tenth of the rows or half a minute.

A reader (pandas, DuckDB, Polars, another process) therefore sees either the old or the new
file, never a half-written one: a prefix of the run's rows, complete up to the last rewrite.
:class:`Leaderboard` reads the file and the log together and sees every recorded row. A crash
mid-rewrite leaves the old file intact and the row in the log.

The Parquet key-value metadata records ``effnas.schema_version`` and ``effnas.settings`` (the
run settings as JSON). A file that is not Parquet, or that was written with a schema version
this one cannot read, raises :class:`LeaderboardError` and is never overwritten; files of an
older version that ``results.schema.UPGRADES`` describes are read (and written back) as the
current version, and so are rows of such a version waiting in the log.

This module (with ``results.schema`` and ``results.pending``) is the only one that touches
Parquet files: :func:`read_parquet` and :func:`write_parquet` also serve
``results.validation``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from proxy_train.files import atomic_write
from results.errors import LeaderboardError
from results.pareto import pareto_mask
from results.pending import PendingLog
from results.schema import (
    COLUMN_NAMES,
    SCHEMA_VERSION,
    arrow_schema,
    upgrade,
    upgrade_row,
    validate_row,
)

LEADERBOARD_FILE = "leaderboard.parquet"
META_SCHEMA_VERSION = "effnas.schema_version"
META_SETTINGS = "effnas.settings"
PACE_FRACTION = 0.1
"""A paced leaderboard rewrites its file once the log holds this fraction of the file's rows."""
PACE_SECONDS = 30.0
"""... or once this long has passed since its last rewrite."""


class Leaderboard:
    """The rows of one run, backed by ``<run_dir>/leaderboard.parquet`` and its log.

    ``settings`` (JSON-able) is stored in the file metadata on every write; when omitted,
    the settings already in the file are kept. ``paced``: rewrite the Parquet file only now
    and then (see the module docstring); the owner must :meth:`flush` before it lets go.
    Nothing is read or written until first use. Only one process may write (``nas.run.lock``);
    any number may read.
    """

    def __init__(self, run_dir: str | os.PathLike[str],
                 settings: Mapping[str, Any] | None = None, *, paced: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.paced = paced
        self.path = self.run_dir / LEADERBOARD_FILE
        self._log = PendingLog(self.run_dir)
        self._rows: list[dict[str, Any]] | None = None
        self._settings: dict[str, Any] | None = dict(settings) if settings is not None else None
        self._in_file = 0
        """How many of the rows the Parquet file holds."""
        self._last_write = -float("inf")
        self.bytes_written = 0
        """Bytes this object wrote to the file and its log (for benchmarks)."""

    # ------------------------------------------------------------------ reading

    def _load(self) -> list[dict[str, Any]]:
        if self._rows is None:
            rows: list[dict[str, Any]] = []
            if self.path.exists():
                table, file_settings = read_table(self.path)
                rows = table.to_pylist()
                if self._settings is None:
                    self._settings = file_settings
            self._in_file = len(rows)
            rows.extend(validate_row(upgrade_row(r)) for r in self._log.read(start=len(rows)))
            self._rows = rows
        return self._rows

    @property
    def pending(self) -> int:
        """Recorded rows the Parquet file does not hold yet (they are in the log)."""
        return len(self._load()) - self._in_file

    @property
    def settings(self) -> dict[str, Any]:
        """The run settings stored in (or to be written to) the file metadata."""
        self._load()
        return dict(self._settings or {})

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a validated dict (Python values, UTC datetimes), in order."""
        return [dict(r) for r in self._load()]

    def __len__(self) -> int:
        return len(self._load())

    def read(self) -> pd.DataFrame:
        """The leaderboard as a DataFrame (every column, even when there are no rows).
        Integer columns use pandas' nullable ``Int64``."""
        return to_pandas(self._table(self._load()))

    def best(self, n: int = 1) -> pd.DataFrame:
        """The ``n`` ok rows with the highest reward (ties: earlier trial first)."""
        df = self.read()
        ok = df[(df["status"] == "ok") & df["reward"].notna()]
        return ok.sort_values(["reward", "trial_id"], ascending=[False, True],
                              kind="stable").head(n).reset_index(drop=True)

    # ------------------------------------------------------------------ writing

    def append(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``row`` and record it (see the module docstring); returns the stored row."""
        return self.extend([row])[0]

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Validate and record several rows with one write; returns the stored rows."""
        new = [validate_row(r) for r in rows]
        if not new:
            return []
        current = self._load()
        if not self.path.exists():
            self._write(current + new)  # the first rows: the file and its settings at once
        else:
            try:
                self.bytes_written += self._log.append(len(current), new)
            except OSError as exc:
                raise LeaderboardError(f"could not write {self._log.path}: {exc}") from None
        current.extend(new)
        if self._in_file < len(current) and self._snapshot_due():
            self._write(current)
        return [dict(r) for r in new]

    def flush_if_stale(self) -> None:
        """Rewrite the Parquet file if it lacks rows and :data:`PACE_SECONDS` have passed since
        its last rewrite (a paced leaderboard's owner calls this now and then)."""
        if self._rows is not None and self._in_file < len(self._rows) \
                and time.monotonic() - self._last_write >= PACE_SECONDS:
            self._write(self._rows)

    def flush(self) -> None:
        """Rewrite the Parquet file now if the log holds rows it does not."""
        rows = self._load()
        if self._in_file < len(rows) or self._log.path.exists():
            self._write(rows)

    def set_settings(self, settings: Mapping[str, Any]) -> None:
        """Replace the run settings kept in the file metadata (written now if the file exists)."""
        rows = self._load()
        self._settings = dict(settings)
        if self.path.exists() or rows:
            self._write(rows)

    def mark_pareto(self) -> int:
        """Recompute the ``pareto`` column over ok rows (accuracy max, step time min, params
        min), rewrite the file if it changed (or lags), and return the size of the front."""
        rows = self._load()
        ok = [i for i, r in enumerate(rows) if r["status"] == "ok"]
        nan = float("nan")

        def value(r: dict[str, Any], key: str) -> float:
            return nan if r[key] is None else float(r[key])

        mask = pareto_mask([value(rows[i], "accuracy") for i in ok],
                           [value(rows[i], "step_time_ms") for i in ok],
                           [value(rows[i], "params") for i in ok])
        front = {i for i, on in zip(ok, mask) if on}
        updated = [{**r, "pareto": i in front} for i, r in enumerate(rows)]
        if updated != rows:
            self._write(updated)
            rows[:] = updated
        else:
            self.flush()
        return len(front)

    def _snapshot_due(self) -> bool:
        if not self.paced:
            return True
        waiting = len(self._rows or ()) - self._in_file
        return waiting >= max(1.0, PACE_FRACTION * self._in_file) \
            or time.monotonic() - self._last_write >= PACE_SECONDS

    def _table(self, rows: list[dict[str, Any]]) -> pa.Table:
        metadata = {META_SCHEMA_VERSION: str(SCHEMA_VERSION),
                    META_SETTINGS: json.dumps(self._settings or {}, sort_keys=True, default=str)}
        return pa.Table.from_pylist(rows, schema=arrow_schema(metadata))

    def _write(self, rows: list[dict[str, Any]]) -> None:
        table = self._table(rows)
        try:
            write_parquet(self.path, table)
            self.bytes_written += self.path.stat().st_size
            self._log.clear()
        except OSError as exc:
            raise LeaderboardError(f"could not write {self.path}: {exc}") from None
        self._in_file = len(rows)
        self._last_write = time.monotonic()


def read_table(path: str | os.PathLike[str]) -> tuple[pa.Table, dict[str, Any]]:
    """Read and check a leaderboard file; returns the table (as the current schema version)
    and its stored settings. Reads the Parquet file only, not the log of rows recorded since
    its last rewrite: :class:`Leaderboard` reads both."""
    path = Path(path)
    table, meta = read_parquet(path, LeaderboardError)
    version = meta.get(META_SCHEMA_VERSION)
    if version is None:
        raise LeaderboardError(f"{path} is a Parquet file but not a leaderboard (its metadata has "
                               f"no {META_SCHEMA_VERSION})")
    if version != str(SCHEMA_VERSION):
        if not version.isdigit() or int(version) > SCHEMA_VERSION:
            raise LeaderboardError(f"{path} has leaderboard schema version {version!r}; this "
                                   f"version reads {SCHEMA_VERSION} and older")
        try:
            table = upgrade(table, int(version))
        except LeaderboardError as exc:
            raise LeaderboardError(f"{path} {exc}") from None
    if tuple(table.column_names) != COLUMN_NAMES:
        raise LeaderboardError(f"{path} does not have the leaderboard columns of schema version "
                               f"{SCHEMA_VERSION}")
    try:
        table = table.cast(arrow_schema(table.schema.metadata))
        settings = json.loads(meta.get(META_SETTINGS, "{}"))
    except (pa.ArrowException, ValueError) as exc:
        raise LeaderboardError(f"{path} is not a readable leaderboard: {exc}") from None
    if not isinstance(settings, dict):
        raise LeaderboardError(f"{path}: its {META_SETTINGS} metadata is not a JSON object")
    return table, settings


def read_parquet(path: Path, error: type[LeaderboardError]) -> tuple[pa.Table, dict[str, str]]:
    """A Parquet file and its key-value metadata (decoded); a file that cannot be read as
    Parquet raises ``error`` naming it."""
    try:
        # One open file: a path read stats and reopens, which can race with a replace.
        with open(path, "rb") as fh:
            table = pq.read_table(fh)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise error(f"{path} is not a readable Parquet file: {exc}") from None
    return table, {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}


def write_parquet(path: Path, table: pa.Table) -> Path:
    """Replace ``path`` with ``table`` atomically (``proxy_train.files.atomic_write``)."""
    return atomic_write(path, lambda fh: _write_table(table, fh))


def _write_table(table: pa.Table, fh: IO[bytes]) -> None:
    pq.write_table(table, fh)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow table to DataFrame with nullable integers (a missing epoch stays an int column)."""
    mapping = {pa.int64(): pd.Int64Dtype()}
    return table.to_pandas(types_mapper=mapping.get)
