from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

import results.leaderboard as lb_module
from results.errors import LeaderboardError
from results.leaderboard import (
    LEADERBOARD_FILE,
    Leaderboard,
    read_best_json,
    write_best_json,
)
from results.pareto import pareto_mask
from results.schema import COLUMN_NAMES, validate_row
from search_space.codec import decode, from_dict
from search_space.resolve import resolve_arch


def test_round_trip_rows_and_types(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    board = Leaderboard(tmp_path, settings={"budget": 5, "strategy": "random"})
    board.extend(rows[:2])
    for row in rows[2:]:
        board.append(row)
    expected = [validate_row(r) for r in rows]
    again = Leaderboard(tmp_path)
    assert again.rows() == expected
    assert again.settings == {"budget": 5, "strategy": "random"}
    df = again.read()
    assert list(df.columns) == list(COLUMN_NAMES)
    assert str(df["trial_id"].dtype) == "Int64" and str(df["accuracy"].dtype) == "float64"
    assert df["epochs"].tolist() == [3] * 5
    assert pd.isna(df.loc[2, "accuracy"]) and df.loc[2, "failure_reason"] == "out of memory"
    assert df.loc[0, "started_at"] == pd.Timestamp("2024-05-01 12:00", tz="UTC")
    assert df["pareto"].dtype == bool
    meta = pq.read_schema(tmp_path / LEADERBOARD_FILE).metadata
    assert meta[b"effnas.schema_version"] == b"1"
    assert json.loads(meta[b"effnas.settings"]) == {"budget": 5, "strategy": "random"}


def test_missing_file_reads_as_empty_with_columns(tmp_path: Path) -> None:
    board = Leaderboard(tmp_path / "new")
    df = board.read()
    assert df.empty and list(df.columns) == list(COLUMN_NAMES)
    assert board.best().empty and len(board) == 0
    assert not (tmp_path / "new").exists()


def test_other_readers_read_the_file(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    Leaderboard(tmp_path).extend(rows)
    path = str(tmp_path / LEADERBOARD_FILE)
    assert pd.read_parquet(path)["arch_hash"].tolist() == [r["arch_hash"] for r in rows]
    ok = duckdb.sql(f"select count(*), max(reward) from '{path}' where status = 'ok'").fetchall()
    assert ok == [(3, pytest.approx(0.53 * 0.98))]
    frame = pl.read_parquet(path)
    assert frame.height == 5 and frame["params"].dtype == pl.Int64
    assert frame["started_at"].dtype == pl.Datetime("us", "UTC")


def test_crash_mid_write_keeps_the_old_file(tmp_path: Path, rows: list[dict[str, Any]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    board = Leaderboard(tmp_path)
    board.extend(rows[:3])
    path = tmp_path / LEADERBOARD_FILE
    before = path.read_bytes()

    def crash(table: Any, fh: Any) -> None:
        fh.write(b"PAR1 partial garbage")
        raise KeyboardInterrupt  # the process is killed half-way through the write

    monkeypatch.setattr(lb_module, "_write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        board.append(rows[3])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [LEADERBOARD_FILE]  # no temporary file left behind
    assert len(board) == 3  # the failed append did not reach memory either
    monkeypatch.undo()
    board.append(rows[3])
    assert len(Leaderboard(tmp_path).rows()) == 4


def test_concurrent_reader_never_sees_a_partial_file(tmp_path: Path, make_row: Any) -> None:
    """A reader that opens the file once always gets a complete table, old or new.

    (A reader that stats the path and opens it again later, as pyarrow's dataset discovery
    does for a path, can pair the old size with the new file; such readers should retry.)
    """
    board = Leaderboard(tmp_path)
    board.append(make_row(0))
    path = tmp_path / LEADERBOARD_FILE
    errors: list[Exception] = []
    sizes: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                with open(path, "rb") as fh:
                    sizes.append(len(pd.read_parquet(fh)))
            except Exception as exc:  # noqa: BLE001 - any failure is the bug
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 30):
            board.append(make_row(i))
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert sizes and sizes == sorted(sizes)


@pytest.mark.parametrize("content", [b"", b"not parquet at all", b"PAR1\x00\x01garbagePAR1"])
def test_corrupt_file_is_an_error_and_is_never_overwritten(tmp_path: Path, content: bytes,
                                                           make_row: Any) -> None:
    path = tmp_path / LEADERBOARD_FILE
    path.write_bytes(content)
    board = Leaderboard(tmp_path)
    with pytest.raises(LeaderboardError, match="is not a readable Parquet file: "):
        board.read()
    with pytest.raises(LeaderboardError):
        board.append(make_row(0))
    assert path.read_bytes() == content


def test_other_schema_version_is_refused(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    Leaderboard(tmp_path).extend(rows)
    path = tmp_path / LEADERBOARD_FILE
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"effnas.schema_version"] = b"2"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(LeaderboardError, match="schema version '2'; this version reads 1"):
        Leaderboard(tmp_path).read()
    pq.write_table(table.drop_columns(["pareto"]), path)
    with pytest.raises(LeaderboardError, match="does not have the leaderboard columns"):
        Leaderboard(tmp_path).read()


def test_finished_hashes_and_best(tmp_path: Path, rows: list[dict[str, Any]],
                                  make_row: Any) -> None:
    board = Leaderboard(tmp_path)
    board.extend(rows + [make_row(5, reward=rows[3]["reward"])])  # ties with trial 3
    assert {r["arch_hash"] for r in board.rows()} == {r["arch_hash"] for r in rows} | {make_row(5)["arch_hash"]}
    best = board.best(2)
    assert best["trial_id"].tolist() == [3, 5]  # a tie goes to the earlier trial
    assert board.best()["trial_id"].tolist() == [3]
    assert set(board.best(10)["status"]) == {"ok"}


def test_pareto_front(tmp_path: Path, make_row: Any) -> None:
    board = Leaderboard(tmp_path)
    specs = [  # (accuracy, step ms, params)
        (0.8, 10.0, 5_000_000),  # front
        (0.7, 10.0, 5_000_000),  # dominated by 0
        (0.9, 20.0, 5_000_000),  # front (most accurate)
        (0.6, 5.0, 9_000_000),   # front (fastest)
        (0.8, 10.0, 5_000_000),  # equal to 0: also front
        (0.5, 12.0, 1_000_000),  # front (smallest)
    ]
    board.extend(make_row(i, accuracy=a, step_time_ms=s, params=p) for i, (a, s, p) in
                 enumerate(specs))
    board.append(make_row(6, "failed", params=1))  # failed rows never join the front
    assert board.mark_pareto() == 5
    assert Leaderboard(tmp_path).read()["pareto"].tolist() == [True, False, True, True, True,
                                                               True, False]
    assert pareto_mask([0.5, float("nan")], [1.0, 1.0], [1.0, 1.0]) == [True, False]
    assert pareto_mask([], [], []) == []


def test_best_json_round_trip(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    board = Leaderboard(tmp_path)
    board.extend(rows)
    best = board.best().iloc[0]  # a pandas Series, as the driver gets it
    path = write_best_json(tmp_path, best, recipe={"epochs": 3, "lr": 0.01},
                           extra={"reference": {"arch": "efficientnet-b4"}})
    assert path == tmp_path / "best.json"
    doc = read_best_json(tmp_path)
    assert doc == read_best_json(path)
    assert doc["arch"] == rows[3]["arch"] and doc["arch_hash"] == rows[3]["arch_hash"]
    assert from_dict(doc["spec"]) == decode(doc["arch"])
    assert doc["metrics"]["reward"] == rows[3]["reward"]
    assert doc["metrics"]["params"] == rows[3]["params"]
    assert doc["recipe"] == {"epochs": 3, "lr": 0.01}
    assert doc["provenance"]["trial_id"] == 3 and doc["provenance"]["details"] == {"host": "test"}
    assert doc["provenance"]["started_at"] == "2024-05-01T12:03:00+00:00"
    assert doc["reference"] == {"arch": "efficientnet-b4"}
    assert resolve_arch(str(path)) == decode(rows[3]["arch"])


def test_best_json_rules(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    with pytest.raises(LeaderboardError, match="best.json needs an ok row; trial 2"):
        write_best_json(tmp_path, rows[2], recipe={})
    with pytest.raises(LeaderboardError, match="extra key 'metrics' clashes"):
        write_best_json(tmp_path, rows[0], recipe={}, extra={"metrics": 1})
    path = write_best_json(tmp_path, rows[0], recipe={})
    doc = json.loads(path.read_text())
    doc["arch"] = rows[1]["arch"]
    path.write_text(json.dumps(doc))
    with pytest.raises(LeaderboardError, match="disagree"):
        read_best_json(path)
    path.write_text("{")
    with pytest.raises(LeaderboardError, match="not valid JSON"):
        read_best_json(path)
