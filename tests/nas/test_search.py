"""End-to-end runs of nas-search: inline and Ray executors, resume without loss, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nas.cli.search import main
from nas.search import trial as trial_module
from results.schema import COLUMNS

REPO = Path(__file__).resolve().parents[2]


def _rows(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "leaderboard.parquet")


def test_inline_run_writes_leaderboard_best_and_plots(tmp_path, tiny_args, capsys):
    out = tmp_path / "run"
    assert main(["--budget", "3", "--executor", "inline", "--out", str(out), *tiny_args]) == 0
    rows = _rows(out)
    assert len(rows) == 3
    assert list(rows.columns) == [c.name for c in COLUMNS]
    assert rows["arch_hash"].is_unique
    assert set(rows["status"]) <= {"ok", "failed"}
    ok = rows[rows.status == "ok"]
    assert len(ok) >= 1
    assert (ok["reward"] > 0).all() and (ok["step_time_ms"] > 0).all()
    best = json.loads((out / "best.json").read_text())
    assert best["arch"] == ok.sort_values("reward").iloc[-1]["arch"]
    run = json.loads((out / "run.json").read_text())
    assert run["reference"]["step_time_ms"] > 0 and run["config"]["budget"] == 3
    printed = capsys.readouterr().out
    assert "3 candidates" in printed and "leaderboard" in printed
    assert any(p.suffix == ".png" for p in out.iterdir())


def test_resume_after_interruption_finishes_exact_budget_without_repeats(tmp_path, tiny_args, monkeypatch):
    out = tmp_path / "run"
    calls = {"n": 0}
    real = trial_module.evaluate

    def dying_evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process dies while the third candidate is in flight
        return real(*args, **kwargs)

    monkeypatch.setattr("nas.search.inline_executor.evaluate", dying_evaluate)
    assert main(["--budget", "4", "--executor", "inline", "--out", str(out), *tiny_args]) == 130
    first = _rows(out)
    assert len(first) == 2
    monkeypatch.setattr("nas.search.inline_executor.evaluate", real)
    assert main(["--budget", "4", "--executor", "inline", "--out", str(out), *tiny_args]) == 0
    rows = _rows(out)
    assert len(rows) == 4
    assert rows["arch_hash"].is_unique
    assert rows["number"].is_unique
    # the first two candidates were kept, not evaluated again
    pd.testing.assert_frame_equal(rows.iloc[:2].reset_index(drop=True), first.reset_index(drop=True))
    # a larger budget on the same run continues it
    assert main(["--budget", "5", "--executor", "inline", "--out", str(out), *tiny_args]) == 0
    assert len(_rows(out)) == 5


def test_sigkill_loses_only_the_candidate_in_flight(tmp_path, tiny_args):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "nas.cli.search", "--budget", "4", "--executor", "inline", "--out", str(out), *tiny_args]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    board = out / "leaderboard.parquet"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if board.exists() and len(pd.read_parquet(board)) >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_rows = len(_rows(out))
    assert 1 <= killed_rows < 4
    assert main(["--budget", "4", "--executor", "inline", "--out", str(out), *tiny_args]) == 0
    rows = _rows(out)
    assert len(rows) == 4 and rows["arch_hash"].is_unique


def test_ray_executor_gives_the_inline_schema(tmp_path, tiny_args):
    out = tmp_path / "ray"
    assert main(["--budget", "2", "--executor", "ray", "--out", str(out), *tiny_args]) == 0
    rows = _rows(out)
    assert len(rows) == 2
    assert list(rows.columns) == [c.name for c in COLUMNS]
    assert rows["arch_hash"].is_unique
    assert (rows["status"] == "ok").any()


def test_ray_with_asha_records_every_candidate(tmp_path, tiny_args):
    out = tmp_path / "asha"
    args = ["--budget", "3", "--executor", "ray", "--early-stop", "asha", "--out", str(out), *tiny_args]
    args[args.index("--epochs") + 1] = "4"
    assert main(args) == 0
    rows = _rows(out)
    assert len(rows) == 3 and rows["arch_hash"].is_unique
    assert set(rows["status"]) <= {"ok", "stopped", "failed"}
    finished = rows[rows.status != "failed"]
    assert (finished["epochs"] >= 1).all() and finished["reward"].notna().all()
    assert (rows[rows.status == "stopped"]["epochs"] < 4).all()
    assert (rows[rows.status == "ok"]["epochs"] == 4).all()
    assert (rows["proxy_resolution"] == 16).all()


def test_an_error_while_recording_ends_a_ray_search_with_it(tmp_path, tiny_args, monkeypatch):
    """Tune only logs what its searcher raises, and its own concurrency limit freed a trial
    slot only after the candidate was recorded: an error there once left the search waiting
    for a slot forever. It ends the run with the error, the finished rows kept."""
    from nas.search.driver import SearchRun

    record = SearchRun._record
    calls: list[int] = []

    def failing(self, job, outcome):  # type: ignore[no-untyped-def]
        calls.append(job.number)
        if len(calls) == 2:
            raise RuntimeError("disk full while recording")
        record(self, job, outcome)

    monkeypatch.setattr(SearchRun, "_record", failing)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="disk full while recording"):
        main(["--budget", "3", "--executor", "ray", "--out", str(out), *tiny_args])
    assert len(calls) == 2 and len(_rows(out)) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "0"], "--budget 0"),
        (["--budget", "-3"], "--budget -3"),
        (["--budget", "2", "--strategy", "bayes"], "unknown strategy 'bayes'"),
        (["--budget", "2", "--executor", "dask"], "unknown executor 'dask'"),
        (["--budget", "2", "--space", "no/such/space.toml"], "space.toml"),
        (["--budget", "2", "--data", "folder:/no/such/folder"], "/no/such/folder"),
        (["--budget", "2", "--early-stop", "asha", "--executor", "inline"], "asha"),
        (["--budget", "2", "--seed", "-1"], "--seed -1 must be a whole number from 0 to 4294967295"),
        (["--budget", "2", "--proxy-resolution", "3"], "--proxy-resolution 3 must be a whole number >= 8"),
        (["--budget", "2", "--space", "v2b0", "--reference", "no-such-model"], "no-such-model"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, tiny_args, capsys, extra, message):
    args = [*tiny_args, "--out", str(tmp_path / "run"), "--executor", "inline", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()  # bad input leaves nothing behind


def test_unknown_or_absent_hardware_is_a_clear_error(tmp_path, tiny_args, capsys):
    for hardware, message in (("tpu9", "unknown hardware"), ("v100", "present")):
        args = [*tiny_args, "--out", str(tmp_path / hardware), "--executor", "inline", "--budget", "1", "--hardware", hardware]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and len(err.splitlines()) == 1


def test_out_holding_another_run_is_refused_and_kept(tmp_path, tiny_args, capsys):
    out = tmp_path / "run"
    assert main(["--budget", "1", "--executor", "inline", "--out", str(out), *tiny_args]) == 0
    before = (out / "leaderboard.parquet").read_bytes()
    assert main(["--budget", "2", "--executor", "inline", "--out", str(out), *tiny_args, "--strategy", "evolution"]) == 2
    err = capsys.readouterr().err
    assert "different run" in err and "strategy" in err
    assert (out / "leaderboard.parquet").read_bytes() == before


def test_corrupt_leaderboard_is_reported_and_not_overwritten(tmp_path, tiny_args, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "leaderboard.parquet").write_bytes(b"not parquet at all")
    assert main(["--budget", "1", "--executor", "inline", "--out", str(out), *tiny_args]) == 2
    assert "leaderboard.parquet" in capsys.readouterr().err
    assert (out / "leaderboard.parquet").read_bytes() == b"not parquet at all"
