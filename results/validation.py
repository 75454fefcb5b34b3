"""The files of a validation (``nas-validate``): ``validation.parquet``, one row per
candidate x kind x seed, and ``validation.json``, the statistics.

Each finished job is appended at once and the Parquet file is rewritten atomically (a reader
sees the old or the new table, never a half-written one; a validation has tens of rows, not
thousands). The file's key-value metadata holds ``effnas.validation_schema`` and
``effnas.validation`` (the validation's settings as JSON), so a folder holding another
validation is recognised before any work. ``job_key`` identifies a job (kind, architecture,
seed, recipe, data): a validation that is run again skips every job whose key is already here.

Columns (``COLUMNS``, in order): ``job_key``; ``kind`` (``proxy`` or ``long``); ``source``
(``search``: the search's own proxy run, copied from its leaderboard; ``run``: run by this
validation; ``reused``: copied from another validation's file); ``replica`` (0-based index
of the run among the candidate's runs of this kind); ``seed``; ``arch``, ``arch_hash``;
``search_rank`` (1 = the search's best by reward); ``status`` (``ok`` / ``failed``),
``failure_reason``; ``accuracy`` (proxy: minival top-1 of the weights the recipe evaluates;
long: top-1 on ``eval_split``); ``eval_split``, ``eval_images``, ``eval_resolution``;
``reward`` (the search's reward recomputed with this accuracy and the candidate's step time
and params); ``interim_epoch``, ``interim_accuracy``, ``interim_reward`` (proxy runs: at the
epoch an ASHA scheduler first compares candidates); the run's ranking signals, one column
each (``results.signals``: ``minival_top1``, ``minival_top1_ema``, ``minival_loss``, ``tse``,
``meco``); ``step_time_ms``, ``params``, ``macs`` (copied from the search); ``epochs``,
``resolution`` (last training size); ``history_json`` (every epoch: minival top-1 of the
trained and EMA weights and minival loss, learning rate, mean and summed training loss);
``recipe_json``; ``device``, ``host``, ``torch_version``; ``started_at``, ``finished_at``,
``wall_time_s``.

Files of schema version 1 (before the signals) are read as version 2, the signals null.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from proxy_train.files import atomic_write
from results.errors import LeaderboardError
from results.leaderboard import read_parquet, write_parquet
from results.signals import SIGNAL_NAMES

VALIDATION_FILE = "validation.parquet"
STATS_FILE = "validation.json"
PLOT_FILE = "validation.png"
SCHEMA_VERSION = 2
META_SCHEMA = "effnas.validation_schema"
META_SETTINGS = "effnas.validation"
KINDS: tuple[str, ...] = ("proxy", "long")
SOURCES: tuple[str, ...] = ("search", "run", "reused")

S, I, F = pa.string(), pa.int64(), pa.float64()  # noqa: E741 - a table's types
T = pa.timestamp("us", tz="UTC")
COLUMNS: tuple[tuple[str, pa.DataType, bool], ...] = (
    ("job_key", S, False), ("kind", S, False), ("source", S, False), ("replica", I, False),
    ("seed", I, False), ("arch", S, False), ("arch_hash", S, False),
    ("search_rank", I, False), ("status", S, False), ("failure_reason", S, True),
    ("accuracy", F, True), ("eval_split", S, True), ("eval_images", I, True),
    ("eval_resolution", I, True), ("reward", F, True), ("interim_epoch", I, True),
    ("interim_accuracy", F, True), ("interim_reward", F, True),
    *((name, F, True) for name in SIGNAL_NAMES), ("step_time_ms", F, True),
    ("params", I, False), ("macs", I, True), ("epochs", I, True), ("resolution", I, True),
    ("history_json", S, True), ("recipe_json", S, False), ("device", S, True),
    ("host", S, True), ("torch_version", S, True), ("started_at", T, True),
    ("finished_at", T, True), ("wall_time_s", F, True),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _, _ in COLUMNS)
ADDED: dict[int, tuple[str, ...]] = {1: SIGNAL_NAMES}
"""For each older version still read: the columns added since (null in its rows)."""


class ValidationError(LeaderboardError):
    """A validation file is unreadable, of another schema, or holds another validation."""


def _schema(settings: Mapping[str, Any] | None) -> pa.Schema:
    metadata = {META_SCHEMA: str(SCHEMA_VERSION),
                META_SETTINGS: json.dumps(dict(settings or {}), sort_keys=True, default=str)}
    return pa.schema([pa.field(n, t, nullable=null) for n, t, null in COLUMNS],
                     metadata=metadata)


class ValidationTable:
    """The rows of one validation, backed by ``<folder>/validation.parquet``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / VALIDATION_FILE
        self._rows: list[dict[str, Any]] | None = None
        self._settings: dict[str, Any] = {}

    def _load(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows, self._settings = read_validation(self.path) if self.path.exists() \
                else ([], {})
        return self._rows

    @property
    def settings(self) -> dict[str, Any]:
        """The settings stored with the rows (empty for a new file)."""
        self._load()
        return dict(self._settings)

    def rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._load()]

    def keys(self) -> set[str]:
        return {str(r["job_key"]) for r in self._load()}

    def __len__(self) -> int:
        return len(self._load())

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows(), columns=list(COLUMN_NAMES))

    def set_settings(self, settings: Mapping[str, Any]) -> None:
        """Store ``settings`` with the rows (the file is written now)."""
        rows = self._load()
        self._settings = dict(settings)
        self._write(rows)

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one finished job's row (its ``job_key`` must be new) and rewrite the file."""
        rows = self._load()
        key = row.get("job_key")
        if any(r["job_key"] == key for r in rows):
            raise ValidationError(f"{self.path}: job {key!r} is already recorded")
        new = {name: row.get(name) for name in COLUMN_NAMES}
        self._write(rows + [new])
        rows.append(new)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        try:
            table = pa.Table.from_pylist(rows, schema=_schema(self._settings))
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise ValidationError(f"a validation row does not fit the schema: {exc}") from None

        write_parquet(self.path, table)


def read_validation(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows and the settings of a ``validation.parquet`` (or of the one in a folder)."""
    where = Path(path)
    if where.is_dir():
        where = where / VALIDATION_FILE
    table, meta = read_parquet(where, ValidationError)
    version = meta.get(META_SCHEMA, "")
    added = ADDED.get(int(version)) if version.isdigit() else None
    if added is not None and tuple(table.column_names) == \
            tuple(n for n in COLUMN_NAMES if n not in added):
        table = _upgraded(table, added)
    elif version != str(SCHEMA_VERSION) or tuple(table.column_names) != COLUMN_NAMES:
        raise ValidationError(f"{where} is not a validation file of schema version "
                              f"{SCHEMA_VERSION} (or an older one this version reads)")
    try:
        settings = json.loads(meta.get(META_SETTINGS, "{}"))
    except ValueError as exc:
        raise ValidationError(f"{where}: unreadable settings ({exc})") from None
    return table.to_pylist(), settings if isinstance(settings, dict) else {}


def _upgraded(table: pa.Table, added: tuple[str, ...]) -> pa.Table:
    """``table`` with the ``added`` columns (null) in their place."""
    for index, (name, type_, _) in enumerate(COLUMNS):
        if name in added:
            table = table.add_column(index, name, pa.nulls(table.num_rows, type_))
    return table


def write_json(path: str | os.PathLike[str], document: Mapping[str, Any]) -> Path:
    """Write ``document`` as indented JSON, atomically (NaN is written as null)."""
    text = json.dumps(_no_nan(document), indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, Mapping):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


__all__ = ["COLUMNS", "COLUMN_NAMES", "KINDS", "PLOT_FILE", "SOURCES", "STATS_FILE",
           "VALIDATION_FILE", "ValidationError", "ValidationTable", "read_validation",
           "write_json"]
