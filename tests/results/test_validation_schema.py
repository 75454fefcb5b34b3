"""``validation.parquet``'s columns: one typed list is the Arrow schema, the README table and
the upgrade path of older files."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import results.validation_schema as schema
from results.schema import Column
from results.validation import (
    META_SCHEMA,
    META_SETTINGS,
    ValidationError,
    ValidationTable,
    read_validation,
)


def _row(key: str = "proxy:a") -> dict[str, object]:
    return {"job_key": key, "kind": "proxy", "source": "run", "replica": 0, "seed": 1,
            "arch": "a", "arch_hash": "h", "search_rank": 1, "status": "ok", "accuracy": 0.5,
            "params": 10, "recipe_json": "{}"}


def test_the_columns_are_typed_and_documented() -> None:
    assert all(isinstance(c, Column) and c.description for c in schema.COLUMNS)
    assert schema.arrow_schema().names == list(schema.COLUMN_NAMES)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert schema.schema_markdown() in readme


def test_rows_round_trip_and_unknown_columns_are_refused(tmp_path: Path) -> None:
    table = ValidationTable(tmp_path)
    table.set_settings({"run_id": "r"})
    table.append(_row())
    rows, settings = read_validation(tmp_path)
    assert settings == {"run_id": "r"} and rows[0]["accuracy"] == 0.5 and rows[0]["host"] is None
    with pytest.raises(ValidationError, match="unknown validation column 'colour'"):
        table.append({**_row("proxy:b"), "colour": "red"})


def _write_version(path: Path, version: str, names: tuple[str, ...]) -> None:
    fields = [pa.field(c.name, c.type, c.nullable) for c in schema.COLUMNS if c.name in names]
    meta = {META_SCHEMA: version, META_SETTINGS: json.dumps({"run_id": "old"})}
    row = {name: value for name, value in _row().items() if name in names}
    pq.write_table(pa.Table.from_pylist([row], schema=pa.schema(fields, metadata=meta)), path)


def test_an_older_version_is_read_as_the_current_one(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "validation.parquet"
    without_host = tuple(n for n in schema.COLUMN_NAMES if n != "host")
    _write_version(path, "0", without_host)
    with pytest.raises(ValidationError, match="is not a validation file of schema version 2"):
        read_validation(path)
    monkeypatch.setitem(schema.UPGRADES, 0, {"host": "unknown"})
    rows, settings = read_validation(path)
    assert list(rows[0]) == list(schema.COLUMN_NAMES) and rows[0]["host"] == "unknown"
    assert settings == {"run_id": "old"}
    _write_version(path, "3", schema.COLUMN_NAMES)  # a newer version is never guessed at
    with pytest.raises(ValidationError, match="is not a validation file of schema version 2"):
        read_validation(path)
