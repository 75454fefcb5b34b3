from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import results.leaderboard as lb_module
from results.errors import LeaderboardError
from results.leaderboard import LEADERBOARD_FILE, Leaderboard
from results.pareto import pareto_mask
from results.pending import PENDING_FILE, PendingLog
from results.schema import COLUMN_NAMES, validate_row


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
    assert meta[b"effnas.schema_version"] == b"3"
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


def test_crash_mid_write_keeps_the_old_file_and_the_row(tmp_path: Path,
                                                       rows: list[dict[str, Any]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    board = Leaderboard(tmp_path)
    board.extend(rows[:3])
    path = tmp_path / LEADERBOARD_FILE
    before = path.read_bytes()

    def crash(table: Any, fh: Any) -> None:
        fh.write(b"PAR1 partial garbage")
        raise KeyboardInterrupt  # the process is killed half-way through the rewrite

    monkeypatch.setattr(lb_module, "_write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        board.append(rows[3])
    assert path.read_bytes() == before  # the file is intact ...
    assert sorted(os.listdir(tmp_path)) == [LEADERBOARD_FILE, PENDING_FILE]  # no temporary file
    assert len(Leaderboard(tmp_path)) == 4  # ... and the row was recorded before the rewrite
    monkeypatch.undo()
    board.append(rows[4])
    board.flush()
    assert Leaderboard(tmp_path).rows() == [validate_row(r) for r in rows]
    assert pq.read_table(path).num_rows == 5 and not (tmp_path / PENDING_FILE).exists()


def test_appends_cost_the_same_however_many_rows(tmp_path: Path, make_row: Any) -> None:
    """A paced leaderboard appends one log line per row and rewrites the file after every 10%
    more rows: the bytes written per row do not grow with the rows before it. Readers of the
    file see a complete prefix, never more than 10% short."""
    board = Leaderboard(tmp_path, paced=True)
    sizes, lag = [], []
    for i in range(400):
        before = board.bytes_written
        board.append(make_row(i))
        sizes.append(board.bytes_written - before)
        in_file = pq.read_metadata(tmp_path / LEADERBOARD_FILE).num_rows
        lag.append((i + 1 - in_file) / (i + 1))
    assert sum(sizes[300:]) <= 1.2 * sum(sizes[100:200])
    assert max(lag) <= 0.1
    assert len(Leaderboard(tmp_path)) == 400 and board.pending == 400 - in_file
    assert pd.read_parquet(tmp_path / LEADERBOARD_FILE)["trial_id"].tolist() == list(range(in_file))
    board.flush()
    assert pq.read_table(tmp_path / LEADERBOARD_FILE).num_rows == 400 and board.pending == 0


def test_slow_rows_reach_the_file_at_once(tmp_path: Path, make_row: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"now": 0.0}
    monkeypatch.setattr(lb_module.time, "monotonic", lambda: clock["now"])
    board = Leaderboard(tmp_path, paced=True)
    i = 0
    while i < 30 or board.pending == 0:  # a candidate a second: the 10% rule paces the file
        board.append(make_row(i))
        clock["now"] += 1.0
        i += 1
    in_file = pq.read_metadata(tmp_path / LEADERBOARD_FILE).num_rows
    assert in_file < i
    board.flush_if_stale()
    assert pq.read_metadata(tmp_path / LEADERBOARD_FILE).num_rows == in_file  # not stale yet
    clock["now"] += lb_module.PACE_SECONDS
    board.flush_if_stale()  # half a minute without a rewrite: the file catches up
    assert pq.read_metadata(tmp_path / LEADERBOARD_FILE).num_rows == i
    for j in range(i, i + 5):
        clock["now"] += lb_module.PACE_SECONDS  # candidates that take longer than that
        board.append(make_row(j))
        assert pq.read_metadata(tmp_path / LEADERBOARD_FILE).num_rows == j + 1


def test_torn_and_repeated_log_lines(tmp_path: Path, make_row: Any) -> None:
    board = Leaderboard(tmp_path, paced=True)
    board.extend([make_row(i) for i in range(20)])
    board.append(make_row(20))  # 1 row waiting: under 10% of 20
    log = tmp_path / PENDING_FILE
    with open(log, "ab") as fh:
        fh.write(b'{"index": 21, "row": {"run_')  # a crash cut the last line short
    assert len(Leaderboard(tmp_path)) == 21
    pending = PendingLog(tmp_path)
    assert [r["trial_id"] for r in pending.read(start=20)] == [20]
    pending.append(21, [validate_row(make_row(21))])  # the torn line is cut off first
    assert [r["trial_id"] for r in Leaderboard(tmp_path).rows()] == list(range(22))
    # a crash after the file was rewritten but before the log was emptied: no row twice
    kept = log.read_bytes()
    Leaderboard(tmp_path).flush()
    log.write_bytes(kept)
    assert [r["trial_id"] for r in Leaderboard(tmp_path).rows()] == list(range(22))
    log.write_bytes(kept + b"garbage\n")
    with pytest.raises(LeaderboardError, match="line 3 is not a leaderboard row"):
        Leaderboard(tmp_path).read()


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
    meta[b"effnas.schema_version"] = b"4"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(LeaderboardError, match="schema version '4'; this version reads 3 and "
                                               "older"):
        Leaderboard(tmp_path).read()
    meta[b"effnas.schema_version"] = b"1"  # version 1 had no objective, node_id, host
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(LeaderboardError, match="columns of schema version 1"):
        Leaderboard(tmp_path).read()
    pq.write_table(table.drop_columns(["pareto"]), path)
    with pytest.raises(LeaderboardError, match="does not have the leaderboard columns"):
        Leaderboard(tmp_path).read()


SIGNALS = ["minival_top1", "minival_top1_ema", "minival_loss", "tse", "meco"]


def test_version_1_files_are_read_as_version_3(tmp_path: Path,
                                                rows: list[dict[str, Any]]) -> None:
    Leaderboard(tmp_path, settings={"budget": 5}).extend(rows)
    path = tmp_path / LEADERBOARD_FILE
    table = pq.read_table(path).drop_columns(["objective", "node_id", "host", *SIGNALS])
    meta = dict(table.schema.metadata)
    meta[b"effnas.schema_version"] = b"1"
    v1 = table.replace_schema_metadata(meta).set_column(
        table.column_names.index("schema_version"), "schema_version",
        pa.array([1] * len(rows), pa.int64()))
    pq.write_table(v1, path)
    board = Leaderboard(tmp_path)
    assert board.rows() == [validate_row({**r, "node_id": None, "host": None}) for r in rows]
    assert board.settings == {"budget": 5}
    board.append(rows[0] | {"trial_id": 5})  # written back as version 3
    board.flush()
    assert pq.read_schema(path).metadata[b"effnas.schema_version"] == b"3"
    assert pd.read_parquet(path)["objective"].tolist() == ["train"] * 6


def _as_version_2(table: pa.Table) -> pa.Table:
    table = table.drop_columns(SIGNALS)
    meta = dict(table.schema.metadata)
    meta[b"effnas.schema_version"] = b"2"
    return table.replace_schema_metadata(meta).set_column(
        table.column_names.index("schema_version"), "schema_version",
        pa.array([2] * table.num_rows, pa.int64()))


def test_version_2_files_and_logged_rows_are_read_as_version_3(
        tmp_path: Path, rows: list[dict[str, Any]], make_row: Any) -> None:
    signals = {"minival_top1": 0.5, "minival_top1_ema": None, "minival_loss": 1.2,
               "tse": 30.0, "meco": 4.5}
    Leaderboard(tmp_path).extend([r | signals for r in rows])
    path = tmp_path / LEADERBOARD_FILE
    pq.write_table(_as_version_2(pq.read_table(path)), path)
    # A row of version 2 still in the log, as a search killed before the update left it.
    logged = {k: v for k, v in validate_row(make_row(5)).items() if k not in SIGNALS}
    PendingLog(tmp_path).append(5, [logged | {"schema_version": 2}])
    board = Leaderboard(tmp_path)
    assert board.rows() == [validate_row(r) for r in rows + [make_row(5)]]
    assert all(r[name] is None for r in board.rows() for name in SIGNALS)
    board.append(make_row(6) | signals)
    board.flush()
    again = pd.read_parquet(path)
    assert pq.read_schema(path).metadata[b"effnas.schema_version"] == b"3"
    assert again["tse"].isna().tolist() == [True] * 6 + [False]
    assert again["meco"].tolist()[-1] == 4.5


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
