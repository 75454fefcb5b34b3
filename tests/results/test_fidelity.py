"""The statistics of a validation from its rows, and the validation file itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from results.fidelity import scores, statistics, verdict
from results.rank_stats import kendall_tau
from results.signals import SIGNAL_NAMES
from results.validation import ValidationError, ValidationTable, read_validation

# Four candidates (search ranks 1-4): two proxy runs and two long runs each.
PROXY = [[0.50, 0.48], [0.40, 0.45], [0.42, 0.30], [0.20, 0.25]]
LONG = [[0.70, 0.72], [0.74, 0.70], [0.60, 0.58], [0.40, 0.44]]
PARAMS = [4e6, 9e6, 2e6, 1e6]
# The proxy runs' other signals, candidates x runs.
LOSS = [[1.2, 1.3], [1.4, 1.1], [1.0, 1.5], [2.0, 1.9]]
TSE = [[30.0, 31.0], [29.0, 35.0], [33.0, 32.0], [40.0, 38.0]]
MECO = [[5.0, 5.5], [7.0, 6.0], [4.0, 4.5], [2.0, 2.2]]


def _row(kind: str, candidate: int, replica: int, accuracy: float | None,
         status: str = "ok") -> dict[str, Any]:
    return {"job_key": f"{kind}-{candidate}-{replica}", "kind": kind, "source": "run",
            "replica": replica, "seed": replica, "arch": f"arch{candidate}",
            "arch_hash": f"h{candidate}", "search_rank": candidate + 1, "status": status,
            "accuracy": accuracy, "reward": None if accuracy is None else accuracy * 0.9,
            "interim_reward": None if accuracy is None or kind == "long"
            else accuracy * 0.9 - 0.1 * candidate,
            "step_time_ms": 10.0 + candidate, "params": int(PARAMS[candidate]),
            "macs": 1000 * (candidate + 1), "recipe_json": "{}",
            **_signals(kind, candidate, replica, accuracy)}


def _signals(kind: str, candidate: int, replica: int,
             accuracy: float | None) -> dict[str, Any]:
    if kind != "proxy" or accuracy is None:
        return {}
    return {"minival_top1": accuracy - 0.01 * replica, "minival_top1_ema": None,
            "minival_loss": LOSS[candidate][replica], "tse": TSE[candidate][replica],
            "meco": MECO[candidate][replica]}


def _rows() -> list[dict[str, Any]]:
    return [_row(kind, c, r, table[c][r]) for kind, table in (("proxy", PROXY), ("long", LONG))
            for c in range(4) for r in range(2)]


def test_each_proxy_run_is_compared_with_the_mean_of_the_long_runs() -> None:
    stats = statistics(scores(_rows()), seed=0)
    long = np.mean(LONG, axis=1)
    proxy = np.array(PROXY)
    expected = np.mean([kendall_tau(proxy[:, r], long) for r in range(2)])
    assert stats["proxy_vs_long"]["tau"] == pytest.approx(expected, abs=1e-4)
    assert stats["proxy_vs_long"]["n"] == 4
    assert stats["proxy_mean_vs_long"]["tau"] == pytest.approx(
        float(kendall_tau(proxy.mean(axis=1), long)), abs=1e-4)
    assert stats["proxy_seed_vs_seed"]["tau"] == pytest.approx(
        float(kendall_tau(proxy[:, 0], proxy[:, 1])), abs=1e-4)
    assert stats["long_seed_vs_seed"]["tau"] == pytest.approx(
        float(kendall_tau(np.array(LONG)[:, 0], np.array(LONG)[:, 1])), abs=1e-4)
    assert stats["params_vs_long"]["tau"] == pytest.approx(float(kendall_tau(PARAMS, long)),
                                                           abs=1e-4)
    low, high = stats["proxy_vs_long"]["tau_ci"]
    assert -1 <= low <= stats["proxy_vs_long"]["tau"] <= high <= 1


def test_each_signal_of_each_proxy_run_is_compared_with_the_long_runs() -> None:
    stats = statistics(scores(_rows()), seed=0)
    long = np.mean(LONG, axis=1)

    def mean_tau(runs: list[list[float]], sign: float = 1.0) -> float:
        values = sign * np.array(runs)
        return float(np.mean([kendall_tau(values[:, r], long) for r in range(2)]))

    trained = [[a - 0.01 * r for r, a in enumerate(runs)] for runs in PROXY]
    assert stats["minival_top1_vs_long"]["tau"] == pytest.approx(mean_tau(trained), abs=1e-4)
    # Lower loss and lower TSE rank higher.
    assert stats["minival_loss_vs_long"]["tau"] == pytest.approx(mean_tau(LOSS, -1.0), abs=1e-4)
    assert stats["tse_vs_long"]["tau"] == pytest.approx(mean_tau(TSE, -1.0), abs=1e-4)
    assert stats["tse_vs_long"]["tau"] > 0.5  # TSE falls as the long accuracy rises here
    assert stats["meco_vs_long"]["tau"] == pytest.approx(mean_tau(MECO), abs=1e-4)
    assert stats["meco_vs_long"]["n"] == 4
    low, high = stats["meco_vs_long"]["tau_ci"]
    assert -1 <= low <= stats["meco_vs_long"]["tau"] <= high <= 1
    assert stats["minival_top1_ema_vs_long"] is None  # no EMA: nothing to rank


def test_runs_without_signals_are_left_out_of_the_signals_only() -> None:
    # The search's own runs from before the signals were kept: replica 0 has none.
    rows = [r if r["kind"] == "long" or r["replica"] == 1
            else {**r, "tse": None, "meco": None} for r in _rows()]
    stats = statistics(scores(rows), seed=0)
    long = np.mean(LONG, axis=1)
    assert stats["meco_vs_long"]["tau"] == pytest.approx(
        float(kendall_tau(np.array(MECO)[:, 1], long)), abs=1e-4)
    assert stats["proxy_vs_long"] == statistics(scores(_rows()), seed=0)["proxy_vs_long"]


def test_the_best_candidates_are_placed_in_the_long_ranking() -> None:
    best = statistics(scores(_rows()))["best"]
    # Mean proxy reward is highest for candidate 0 (search rank 1); by mean long reward it
    # ranks 2nd (0.71 vs 0.72 for search rank 2).
    assert best["proxy_best"] == {"arch_hash": "h0", "search_rank": 1, "long_rank": 2.0,
                                  "in_long_top3": True}
    assert best["search_best"]["arch_hash"] == "h0"


def test_a_failed_run_leaves_its_candidate_out_of_what_needs_it() -> None:
    rows = _rows()
    rows[-1] = _row("long", 3, 1, None, status="failed")
    stats = statistics(scores(rows))
    assert stats["proxy_vs_long"]["n"] == 3
    assert stats["proxy_seed_vs_seed"]["n"] == 4
    rows[-3] = _row("long", 2, 1, None, status="failed")
    stats = statistics(scores(rows))
    assert stats["proxy_vs_long"] is None
    assert verdict(stats).startswith("too few candidates finished both")


def test_the_verdict_names_tau_its_interval_and_n() -> None:
    line = verdict({"proxy_vs_long": {"n": 10, "tau": 0.71, "tau_ci": [0.45, 0.88]}})
    assert line == "proxy ranks like long training: τ = 0.71 [0.45, 0.88], n = 10"
    assert verdict({"proxy_vs_long": {"n": 10, "tau": 0.2, "tau_ci": [-0.1, 0.5]}}) \
        .startswith("proxy does not rank like long training: τ = 0.20")


def test_the_table_keeps_rows_and_settings_and_refuses_a_job_twice(tmp_path: Path) -> None:
    table = ValidationTable(tmp_path)
    table.set_settings({"k": 4})
    for row in _rows()[:3]:
        table.append(row)
    again = ValidationTable(tmp_path)
    assert again.settings == {"k": 4} and len(again) == 3
    assert again.keys() == {"proxy-0-0", "proxy-0-1", "proxy-1-0"}
    with pytest.raises(ValidationError, match="already recorded"):
        again.append(_rows()[0])
    rows, settings = read_validation(tmp_path)
    assert [r["accuracy"] for r in rows] == [0.50, 0.48, 0.40]


def test_a_file_of_version_1_is_read_with_the_signals_null(tmp_path: Path) -> None:
    table = ValidationTable(tmp_path)
    table.set_settings({"k": 4})
    for row in _rows()[:2]:
        table.append(row)
    path = tmp_path / "validation.parquet"
    old = pq.read_table(path).drop_columns(list(SIGNAL_NAMES))
    meta = dict(old.schema.metadata)
    meta[b"effnas.validation_schema"] = b"1"
    pq.write_table(old.replace_schema_metadata(meta), path)
    rows, settings = read_validation(tmp_path)
    assert settings == {"k": 4} and [r["accuracy"] for r in rows] == [0.50, 0.48]
    assert all(r[name] is None for r in rows for name in SIGNAL_NAMES)
    again = ValidationTable(tmp_path)
    again.append(_rows()[2])  # written back as version 2
    assert pq.read_schema(path).metadata[b"effnas.validation_schema"] == b"2"
    assert [r["meco"] for r in read_validation(tmp_path)[0]] == [None, None, MECO[1][0]]
    pq.write_table(old.drop_columns(["seed"]).replace_schema_metadata(meta), path)
    with pytest.raises(ValidationError, match="is not a validation file of schema version 2"):
        read_validation(tmp_path)


def test_a_file_that_is_not_a_validation_is_refused(tmp_path: Path) -> None:
    (tmp_path / "validation.parquet").write_text("not parquet")
    with pytest.raises(ValidationError, match="not a readable Parquet file"):
        ValidationTable(tmp_path).rows()
