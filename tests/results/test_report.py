from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from results.leaderboard import Leaderboard, to_pandas
from results.schema import empty_table
from results.report import plot_run, status_counts, summary_table


def frame(tmp_path: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    board = Leaderboard(tmp_path / "run")
    board.extend(rows)
    return board.read()


def test_summary_table(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    text = summary_table(frame(tmp_path, rows), top=2)
    lines = text.splitlines()
    assert lines[0].split() == ["rank", "reward", "accuracy", "step", "ms", "params", "M", "MACs",
                                "G", "arch", "hash"]
    assert lines[1].split() == ["1", "0.5194", "0.5300", "13.00", "4.30", "0.390",
                                rows[3]["arch_hash"]]
    assert lines[2].split()[:3] == ["2", "0.4998", "0.5100"]
    assert lines[3] == "5 candidates: 3 ok, 1 failed, 1 stopped"
    assert len(lines) == 4


def test_summary_table_without_successes(tmp_path: Path, make_row: Any) -> None:
    df = frame(tmp_path, [make_row(0, "failed"), make_row(1, "failed")])
    assert summary_table(df).splitlines()[-2:] == ["(no successful candidates)",
                                                   "2 candidates: 0 ok, 2 failed, 0 stopped"]
    assert status_counts(to_pandas(empty_table())) == "0 candidates: 0 ok, 0 failed, 0 stopped"


def assert_pngs(paths: list[Path], out: Path) -> None:
    assert [p.name for p in paths] == ["reward.png", "pareto.png"]
    for p in paths:
        assert p.parent == out and p.stat().st_size > 1000
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_with_failed_rows(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    out = tmp_path / "plots"
    assert_pngs(plot_run(frame(tmp_path, rows), out), out)


def test_plots_with_only_failed_rows(tmp_path: Path, make_row: Any) -> None:
    out = tmp_path / "plots"
    df = frame(tmp_path, [make_row(0, "failed"), make_row(1, "failed")])
    assert_pngs(plot_run(df, out), out)


def test_plots_of_an_empty_run(tmp_path: Path) -> None:
    assert_pngs(plot_run(to_pandas(empty_table()), tmp_path), tmp_path)
