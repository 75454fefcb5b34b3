"""The Optuna journal of a run: one trial per leaderboard row, rebuilt and resumed without
duplicates, readable by optuna.load_study and served by optuna-dashboard."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from nas.cli.search import main
from nas.search.config import SearchConfig
from nas.search.study_journal import JOURNAL_FILE, StudyJournal, record_validation
from nas.strategies.optuna_strategy import distributions
from results.leaderboard import Leaderboard
from results.pareto import pareto_mask
from search_space.codec import decode, encode, spec_hash
from search_space.cost import count_macs, count_params
from search_space.sampling import sample, to_choices
from search_space.space import SearchSpace
from search_space.space_files import load_space, space_to_dict

SPACE = load_space("paper")  # optional stages: conditional decisions
START = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


def row(i: int, status: str = "ok", **changes: Any) -> dict[str, Any]:
    """The leaderboard columns the journal reads, for candidate ``i``."""
    spec = sample(SPACE, 100 + i, num_classes=10)
    ok = status != "failed"
    out = {"trial_id": i, "number": 10 + i, "arch": encode(spec), "arch_hash": spec_hash(spec),
           "status": status, "failure_reason": None if status == "ok" else "out of memory",
           "seed": 1000 + i, "reward": 0.5 + 0.01 * i if ok else None,
           "accuracy": 0.5 + 0.03 * ((7 * i) % 5) if ok else None,
           "step_time_ms": 10.0 + 3 * (i % 3) if ok else None,
           "step_time_spread": 0.02 if ok else None, "step_time_steps": 20 if ok else None,
           "params": count_params(spec), "macs": count_macs(spec, 224),
           "epochs": (1 if status == "stopped" else 3) if ok else None, "proxy_resolution": 64,
           "wall_time_s": 42.0, "started_at": START + dt.timedelta(minutes=i),
           "finished_at": START + dt.timedelta(minutes=i, seconds=42)}
    out.update(changes)
    return out


def new_run(tmp_path: Path) -> Path:
    run = tmp_path / "paper-run"
    run.mkdir()
    return run


def studies(run_dir: Path) -> dict[str, optuna.Study]:
    storage = JournalStorage(JournalFileBackend(str(run_dir / JOURNAL_FILE)))
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
            for s in optuna.get_all_study_summaries(storage)}


def assert_journal_matches(run_dir: Path, rows: list[Mapping[str, Any]],
                           space: SearchSpace = SPACE) -> None:
    """Every row is trial ``trial_id`` of both studies, with its decisions, values, state,
    times and attributes; nothing else is there."""
    found = studies(run_dir)
    reward, objectives = found["reward"], found["objectives"]
    assert objectives.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                      optuna.study.StudyDirection.MINIMIZE,
                                      optuna.study.StudyDirection.MINIMIZE]
    assert objectives.metric_names == ["accuracy", "step_time_ms", "params"]
    assert reward.metric_names == ["reward"]
    every = distributions(space)
    for study in (reward, objectives):
        assert len(study.trials) == len(rows)
        for r in rows:
            t = study.trials[int(r["trial_id"])]
            assert t.number == r["trial_id"] and t.user_attrs["number"] == r["number"]
            choices = to_choices(space, decode(r["arch"]))
            assert t.params == choices
            assert t.distributions == {name: every[name] for name in choices}
            assert t.user_attrs["arch"] == r["arch"] and t.user_attrs["arch_hash"] == r["arch_hash"]
            assert t.user_attrs["macs"] == r["macs"] and t.user_attrs["seed"] == r["seed"]
            assert t.user_attrs.get("step_time_spread") == _none(r["step_time_spread"])
            assert t.datetime_start == pd.Timestamp(r["started_at"]).tz_localize(None)
            assert t.datetime_complete == pd.Timestamp(r["finished_at"]).tz_localize(None)
            state = {"ok": TrialState.COMPLETE, "stopped": TrialState.PRUNED,
                     "failed": TrialState.FAIL}[r["status"]]
            assert t.state == state
            if state == TrialState.COMPLETE:
                expected = ([r["reward"]] if study is reward else
                            [r["accuracy"], r["step_time_ms"], r["params"]])
                assert t.values == pytest.approx(expected, abs=0)
            else:
                assert t.values is None


def _none(value: Any) -> Any:
    return None if value is None or pd.isna(value) else value


def test_rows_become_trials_of_a_reward_and_an_objectives_study(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    rows = [row(0), row(1, "failed"), row(2, "stopped"), row(3), row(4)]
    journal = StudyJournal.open(run, SPACE, rows, {"run_id": "r1"})
    assert_journal_matches(run, rows)
    found = studies(run)
    assert found["reward"].user_attrs == {"run_id": "r1"}
    stopped = found["reward"].trials[2]
    assert stopped.intermediate_values == {1: rows[2]["reward"]}  # partial reward, last epoch
    assert found["reward"].trials[1].user_attrs["failure_reason"] == "out of memory"
    keeps = {t.params["s7.keep"] for t in found["reward"].trials}
    assert keeps == {True, False}  # conditional decisions: s7.* only where s7 is kept
    assert journal.sync(rows) == 0  # every row is there already


def test_a_reopened_journal_appends_only_new_rows(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    rows = [row(0), row(1)]
    StudyJournal.open(run, SPACE, rows)
    rows.append(row(2))
    reopened = StudyJournal.open(run, SPACE, rows)  # a resumed run
    rows.append(row(3, "failed"))
    assert reopened.record(rows[-1]) and not reopened.record(rows[-1])
    assert_journal_matches(run, rows)


def test_a_missing_journal_is_rebuilt_and_an_unreadable_one_moved_aside(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = new_run(tmp_path)
    rows = [row(0), row(1, "stopped"), row(2)]
    StudyJournal.open(run, SPACE, rows)
    path = run / JOURNAL_FILE
    path.unlink()
    StudyJournal.open(run, SPACE, rows)
    assert_journal_matches(run, rows)
    with path.open("ab") as handle:  # a writer killed mid-line: the line is cut off
        handle.write(b'{"op_code": 4, "study_id"')
    rows.append(row(3))
    StudyJournal.open(run, SPACE, rows)
    assert_journal_matches(run, rows)
    path.write_text('{"op_code": 4}\nnot json\n{}\n')
    StudyJournal.open(run, SPACE, rows)
    assert_journal_matches(run, rows)
    assert (run / "optuna.journal.unreadable").read_text().startswith('{"op_code": 4}')
    assert "moved to optuna.journal.unreadable and rebuilt" in capsys.readouterr().err


def test_an_architecture_outside_the_space_is_recorded_without_decisions(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    outside = "stem8-fused_r1_k3_s2_e1_c8-head16-cls10"
    StudyJournal.open(run, SPACE, [row(0, arch=outside, arch_hash=spec_hash(decode(outside)))])
    trial = studies(run)["reward"].trials[0]
    assert trial.params == {} and trial.user_attrs["arch"] == outside


def test_validated_models_go_to_a_study_beside_the_search(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    rows = [row(0), row(1)]
    StudyJournal.open(run, SPACE, rows)
    config = SearchConfig(budget=2, hardware="cpu", out=str(run), space="paper")
    (run / "run.json").write_text(json.dumps({
        "run_id": "r1", "config": config.to_dict(), "space": space_to_dict(SPACE),
        "reference": {"arch": rows[0]["arch"], "step_time_ms": 10.0}}))
    assert record_validation(run, arch=rows[1]["arch"], accuracy=0.81, key="v1@224",
                             attrs={"top5": 0.95, "eval_size": 224})
    assert not record_validation(run, arch=rows[1]["arch"], accuracy=0.81, key="v1@224")
    assert record_validation(run, arch=rows[0]["arch"], accuracy=0.7, key="long-0",
                             study="validation-long")
    assert [t.value for t in studies(run)["validation-long"].trials] == [0.7]
    validation = studies(run)["validation"]
    (trial,) = validation.trials
    assert trial.value == 0.81 and trial.user_attrs["top5"] == 0.95
    assert trial.params == studies(run)["reward"].trials[1].params  # same axes as the search
    assert_journal_matches(run, rows)  # the search's studies are untouched


def test_a_search_records_every_candidate_and_a_resume_adds_no_duplicates(
        tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    search = ["--executor", "inline", "--out", str(out), *tiny_args]
    assert main(["--budget", "1", *search]) == 0
    assert f"{out / JOURNAL_FILE}  (view: optuna-dashboard PATH)" in capsys.readouterr().out
    assert_journal_matches(out, Leaderboard(out).rows(), load_space("v2b0"))
    assert main(["--budget", "2", *search]) == 0  # resumed: one more candidate
    rows = Leaderboard(out).rows()
    assert len(rows) == 2
    assert_journal_matches(out, rows, load_space("v2b0"))
    (out / JOURNAL_FILE).unlink()
    assert main(["--budget", "2", *search]) == 0  # nothing to run; the journal is rebuilt
    assert_journal_matches(out, rows, load_space("v2b0"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


def test_optuna_dashboard_serves_the_run(tmp_path: Path) -> None:
    pytest.importorskip("optuna_dashboard")
    command = Path(sys.executable).with_name("optuna-dashboard")  # the documented command
    run = new_run(tmp_path)
    rows = [row(i, "failed" if i == 3 else "ok") for i in range(6)]
    StudyJournal.open(run, SPACE, rows)
    port = _free_port()
    cmd = [str(command), str(run / JOURNAL_FILE),
           "--host", "127.0.0.1", "--port", str(port), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}/api/studies"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                listed = _get(base)["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the dashboard did not answer in 15 s"
                time.sleep(0.2)
        assert {(s["study_name"], tuple(s["directions"])) for s in listed} == {
            ("reward", ("maximize",)), ("objectives", ("maximize", "minimize", "minimize"))}
        objectives = next(s["study_id"] for s in listed if s["study_name"] == "objectives")
        detail = _get(f"{base}/{objectives}")
        assert len(detail["trials"]) == len(rows)
        ok = [r for r in rows if r["status"] == "ok"]
        front = [r["number"] for r, on in zip(ok, pareto_mask(
            [r["accuracy"] for r in ok], [r["step_time_ms"] for r in ok],
            [r["params"] for r in ok])) if on]
        shown = sorted(int(next(a["value"] for a in t["user_attrs"] if a["key"] == "number"))
                       for t in detail["best_trials"])
        # the dashboard's Pareto front is the leaderboard's
        assert len(front) >= 2 and shown == sorted(front)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
