"""Integer columns with empty cells (a surrogate run's ``epochs`` and ``step_time_steps``)
stay integers in every reader that is asked to keep them: pandas with a nullable
``dtype_backend`` (its default turns them into float64), Polars and DuckDB as they are, and
``Leaderboard.read``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pytest

from results.leaderboard import LEADERBOARD_FILE, Leaderboard

NULLABLE_INTS = ("epochs", "step_time_steps", "proxy_resolution")


@pytest.fixture
def surrogate_board(tmp_path: Path, make_row: Any) -> Path:
    """Rows as a surrogate run writes them: nothing measured, so these columns are empty."""
    empty = dict.fromkeys(NULLABLE_INTS)
    Leaderboard(tmp_path).extend([make_row(i, objective="surrogate", **empty) for i in range(3)]
                                 + [make_row(3)])  # one trained row: the columns mix
    return tmp_path / LEADERBOARD_FILE


def test_pandas_default_turns_nullable_integers_into_floats(surrogate_board: Path) -> None:
    frame = pd.read_parquet(surrogate_board)
    assert {str(frame[c].dtype) for c in NULLABLE_INTS} == {"float64"}  # why the README warns


@pytest.mark.parametrize(("backend", "dtype"), [("numpy_nullable", "Int64"),
                                                ("pyarrow", "int64[pyarrow]")])
def test_a_nullable_backend_keeps_them_integers(surrogate_board: Path, backend: str,
                                                dtype: str) -> None:
    frame = pd.read_parquet(surrogate_board, dtype_backend=backend)
    for column in NULLABLE_INTS:
        assert str(frame[column].dtype) == dtype
        assert frame[column].isna().tolist() == [True, True, True, False]
    assert frame["epochs"].iloc[3] == 3 and frame["trial_id"].tolist() == [0, 1, 2, 3]


def test_polars_duckdb_and_the_leaderboard_keep_them_integers(surrogate_board: Path) -> None:
    assert pl.read_parquet(surrogate_board)["epochs"].dtype == pl.Int64
    column = duckdb.sql(f"select epochs from '{surrogate_board}'")
    assert column.types == ["BIGINT"] and column.fetchall() == [(None,)] * 3 + [(3,)]
    frame = Leaderboard(surrogate_board.parent).read()
    assert {str(frame[c].dtype) for c in NULLABLE_INTS} == {"Int64"}
