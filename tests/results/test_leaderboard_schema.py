from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from results.errors import LeaderboardError
from results.schema import (
    COLUMN_NAMES,
    COLUMNS,
    SCHEMA_VERSION,
    arrow_schema,
    empty_table,
    schema_markdown,
    validate_row,
)
from search_space.errors import NasError


def test_columns_are_the_documented_set() -> None:
    assert SCHEMA_VERSION == 3
    assert COLUMN_NAMES[:4] == ("run_id", "trial_id", "number", "arch")
    assert COLUMN_NAMES[-2:] == ("pareto", "schema_version")
    assert {"objective", "node_id", "host"} <= set(COLUMN_NAMES)
    assert COLUMN_NAMES[COLUMN_NAMES.index("accuracy"):][:6] == (
        "accuracy", "minival_top1", "minival_top1_ema", "minival_loss", "tse", "meco")
    assert len(set(COLUMN_NAMES)) == len(COLUMNS) == 41
    assert arrow_schema().field("started_at").type == pa.timestamp("us", tz="UTC")
    assert empty_table().num_rows == 0 and empty_table().column_names == list(COLUMN_NAMES)


def test_validate_fills_optional_columns_and_defaults() -> None:
    required = {"run_id": "r", "trial_id": 0, "number": 0, "arch": "a", "arch_hash": "h",
                "spec_json": "{}", "strategy": "random", "objective": "train",
                "status": "failed", "params": 10}
    row = validate_row(required)
    assert list(row) == list(COLUMN_NAMES)
    assert row["pareto"] is False and row["schema_version"] == SCHEMA_VERSION
    assert row["accuracy"] is None and row["started_at"] is None


def test_validate_normalises_values(make_row) -> None:
    row = validate_row(make_row(1, accuracy=np.float32(0.5), trial_id=np.int64(1), pareto=np.True_,
                                step_time_ms=12, provenance_json={"b": 1, "a": 2},
                                started_at="2024-05-01T12:00:00+02:00",
                                finished_at=dt.datetime(2024, 5, 1, 12, 0), macs=float("nan")))
    assert row["accuracy"] == 0.5 and type(row["accuracy"]) is float
    assert type(row["trial_id"]) is int and row["pareto"] is True
    assert row["step_time_ms"] == 12.0 and type(row["step_time_ms"]) is float
    assert row["provenance_json"] == '{"a": 2, "b": 1}'
    assert row["started_at"] == dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
    assert row["finished_at"].tzinfo == dt.timezone.utc
    assert row["macs"] is None


@pytest.mark.parametrize("change, message", [
    ({"colour": "red"}, "unknown column 'colour'"),
    ({"run_id": None}, "column 'run_id': a value is required"),
    ({"params": float("nan")}, "column 'params'"),
    ({"trial_id": 1.5}, "column 'trial_id': 1.5 (float) must be an integer"),
    ({"trial_id": True}, "column 'trial_id': True (bool) must be an integer"),
    ({"accuracy": "0.5"}, "column 'accuracy': '0.5' (str) must be a number"),
    ({"status": "done"}, "column 'status': 'done' not in ('ok', 'failed', 'stopped')"),
    ({"spec_json": "{oops"}, "column 'spec_json': invalid JSON"),
    ({"started_at": "yesterday"}, "column 'started_at': 'yesterday' (str) must be an ISO-8601"),
    ({"pareto": 1}, "column 'pareto': 1 (int) must be true or false"),
    ({"schema_version": 1}, "column 'schema_version': 1 != 3"),
    ({"objective": "guess"}, "column 'objective': 'guess' not in ('train', 'surrogate')"),
    ({"objective": None}, "column 'objective': a value is required"),
    ({"arch": 5}, "column 'arch': 5 (int) must be a string"),
])
def test_validate_rejects_with_the_column_named(change: dict, message: str, make_row) -> None:
    with pytest.raises(LeaderboardError) as info:
        validate_row(make_row(0, **change))
    assert message in str(info.value)
    assert isinstance(info.value, NasError)


def test_the_readme_shows_the_generated_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert schema_markdown() in readme


def test_markdown_documents_every_column() -> None:
    text = schema_markdown()
    assert "| column | type | nullable | description |" in text
    for col in COLUMNS:
        assert f"| `{col.name}` |" in text
    assert "| `started_at` | timestamp[us, UTC] | yes |" in text
    assert "| `params` | int64 | no |" in text
