from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from results.leaderboard import Leaderboard, to_pandas
from results.pareto import pareto_mask
from results.report import block_pattern, pareto_figure, plot_run, status_counts, summary_table
from results.schema import empty_table
from search_space.codec import decode


def frame(tmp_path: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    board = Leaderboard(tmp_path / "run")
    board.extend(rows)
    return board.read()


def test_summary_table(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    text = summary_table(frame(tmp_path, rows), top=2)
    lines = text.splitlines()
    assert lines[0].split() == ["rank", "reward", "accuracy", "step", "ms", "params", "M", "MACs",
                                "G", "blocks", "arch", "hash"]
    pattern = block_pattern(rows[3]["arch"])
    assert len(pattern.replace(" ", "")) == len(decode(rows[3]["arch"]).stages)
    start = lines[0].index("blocks")
    assert lines[1][start:].split() == [*pattern.split(), rows[3]["arch_hash"]]
    assert lines[1][:start].split() == ["1", "0.5194", "0.5300", "13.00", "4.30", "0.390"]
    assert lines[2].split()[:3] == ["2", "0.4998", "0.5100"]
    assert lines[3] == "5 candidates: 3 ok, 1 failed, 1 stopped"
    assert len(lines) == 4


def test_block_pattern_is_one_letter_per_stage_grouped_by_type() -> None:
    v2s = ("stem24-fused_r2_k3_s1_e1_c24-fused_r4_k3_s2_e4_c48-fused_r4_k3_s2_e4_c64-"
           "mbconv_r6_k3_s2_e4_c128_se0.25-mbconv_r9_k3_s1_e6_c160_se0.25-"
           "mbconv_r15_k3_s2_e6_c256_se0.25-head1280-cls1000")
    assert block_pattern(v2s) == "FFF MMM"
    assert block_pattern("stem8-mbconv_r1_k3_s1_e1_c8-fused_r1_k3_s2_e4_c16-"
                         "mbconv_r1_k3_s2_e4_c16-head16-cls2") == "M F M"


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


def test_pareto_figure_rings_the_front_against_step_time_and_params(
        tmp_path: Path, rows: list[dict[str, Any]], make_row: Any) -> None:
    dominated = make_row(6, accuracy=0.4, step_time_ms=50.0, params=9_000_000)
    df = frame(tmp_path, [*rows, dominated])
    by_time, by_params = pareto_figure(df).axes[:2]
    assert by_time.get_title() == "accuracy vs step time"
    assert by_params.get_title() == "accuracy vs params"
    ok = df[df.status == "ok"]
    front = ok[pareto_mask(ok.accuracy, ok.step_time_ms, ok.params)]
    assert 0 < len(front) < len(ok)
    for ax, column, scale in ((by_time, "step_time_ms", 1.0), (by_params, "params", 1e6)):
        ringed = next(line for line in ax.get_lines() if line.get_label().startswith("Pareto"))
        assert sorted(ringed.get_xdata()) == sorted(front[column].astype(float) / scale)
