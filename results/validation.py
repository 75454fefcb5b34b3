"""The files of a validation (``nas-validate``): ``validation.parquet``, one row per
candidate x kind x seed, and ``validation.json``, the statistics.

Each finished job is appended at once and the Parquet file is rewritten atomically (a reader
sees the old or the new table, never a half-written one; a validation has tens of rows, not
thousands). The file's key-value metadata holds ``effnas.validation_schema`` and
``effnas.validation`` (the validation's settings as JSON), so a folder holding another
validation is recognised before any work. ``job_key`` identifies a job (kind, architecture,
seed, recipe, data): a validation that is run again skips every job whose key is already here.
The columns, their meaning and the upgrade path of older files are
``results.validation_schema``'s.
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
from results.validation_schema import COLUMN_NAMES, SCHEMA_VERSION, arrow_schema, upgrade

VALIDATION_FILE = "validation.parquet"
STATS_FILE = "validation.json"
PLOT_FILE = "validation.png"
META_SCHEMA = "effnas.validation_schema"
META_SETTINGS = "effnas.validation"


class ValidationError(LeaderboardError):
    """A validation file is unreadable, of another schema, or holds another validation."""


def _schema(settings: Mapping[str, Any] | None) -> pa.Schema:
    return arrow_schema({META_SCHEMA: str(SCHEMA_VERSION),
                         META_SETTINGS: json.dumps(dict(settings or {}), sort_keys=True,
                                                   default=str)})


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
        """Add one finished job's row (its ``job_key`` must be new; its columns those of
        ``results.validation_schema``) and rewrite the file."""
        rows = self._load()
        key = row.get("job_key")
        if any(r["job_key"] == key for r in rows):
            raise ValidationError(f"{self.path}: job {key!r} is already recorded")
        unknown = sorted(set(row) - set(COLUMN_NAMES))
        if unknown:
            raise ValidationError(f"unknown validation column {unknown[0]!r}")
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
    try:
        if not version.isdigit():
            raise LeaderboardError(f"is not a validation file of schema version "
                                   f"{SCHEMA_VERSION}")
        table = upgrade(table, int(version))
    except LeaderboardError as exc:
        raise ValidationError(f"{where} {exc}") from None
    try:
        settings = json.loads(meta.get(META_SETTINGS, "{}"))
    except ValueError as exc:
        raise ValidationError(f"{where}: unreadable settings ({exc})") from None
    return table.to_pylist(), settings if isinstance(settings, dict) else {}


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


__all__ = ["PLOT_FILE", "STATS_FILE", "VALIDATION_FILE", "ValidationError", "ValidationTable",
           "read_validation", "write_json"]
