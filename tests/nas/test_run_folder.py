"""A run folder that checks itself, and validation before any work.

The settings live in run.json and in the leaderboard's Parquet metadata; a missing copy is
restored from the other, a garbage or disagreeing copy is refused, the reference is never timed
again, best.json is re-derived. Bad --out, seeds and constraints are refused before the data is
loaded or Ray starts, and leave nothing behind.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nas.cli.search import main
from nas.search.setup import smallest_cost
from results.best import read_best
from results.leaderboard import Leaderboard
from search_space.cost import count_macs, count_params
from search_space.sampling import decisions, from_choices
from search_space.space_files import space_from_dict

RUN_ID = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("called although the run must stop before this")


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def _inline(out: Path, tiny_args: list[str], *extra: str, budget: int = 1) -> int:
    return main(["--budget", str(budget), "--executor", "inline", "--out", str(out), *tiny_args,
                 *extra])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_settings_are_stored_in_run_json_and_in_the_leaderboard(run_copy: Path) -> None:
    record = json.loads((run_copy / "run.json").read_text())
    assert Leaderboard(run_copy).settings == record
    assert RUN_ID.fullmatch(record["run_id"])  # microseconds: two runs never share an id
    assert set(pd.read_parquet(run_copy / "leaderboard.parquet")["run_id"]) == {record["run_id"]}
    assert record["reference"]["step_time_ms"] > 0


def test_deleted_run_json_is_restored_and_still_guards_the_run(
        run_copy: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    record = json.loads((run_copy / "run.json").read_text())
    (run_copy / "run.json").unlink()
    board = (run_copy / "leaderboard.parquet").read_bytes()
    monkeypatch.setattr("nas.search.inline_executor.time_reference", _never)  # never timed again

    assert _inline(run_copy, tiny_args, "--strategy", "evolution", budget=2) == 2
    assert "different run: strategy was 'random'" in _error(capsys)
    assert not (run_copy / "run.json").exists()
    assert (run_copy / "leaderboard.parquet").read_bytes() == board

    assert _inline(run_copy, tiny_args, budget=2) == 0
    assert f"{run_copy / 'run.json'} was missing; restored from" in capsys.readouterr().err
    restored = json.loads((run_copy / "run.json").read_text())
    assert restored["run_id"] == record["run_id"]
    assert restored["reference"] == record["reference"]
    rows = pd.read_parquet(run_copy / "leaderboard.parquet")
    assert len(rows) == 2 and set(rows["run_id"]) == {record["run_id"]}
    ok = rows[rows["step_time_ms"].notna()]
    ratio = ok["step_time_ms"] / ok["step_time_norm"]
    assert ratio.round(6).tolist() == [round(record["reference"]["step_time_ms"], 6)] * len(ok)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "run.json is not a readable run file (Expecting property name"),
    ('{"run_id": "x"}', "run.json is not a run file: it has no config"),
    ("[1, 2]", "run.json is not a run file: it is not a JSON object"),
])
def test_garbage_run_json_is_refused_and_nothing_is_touched(
        run_copy: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        content: str, message: str) -> None:
    (run_copy / "run.json").write_text(content)
    before = _files(run_copy)
    assert _inline(run_copy, tiny_args, budget=2) == 2
    err = _error(capsys)
    assert message in err
    assert f"move it away to continue with the copy in {run_copy / 'leaderboard.parquet'}" in err
    assert _files(run_copy) == before


@pytest.mark.parametrize(("path", "value", "shown"), [
    (("config", "seed"), 7, "seed: 7 vs 0"),
    (("reference", "step_time_ms"), 1.5, "reference step_time_ms: 1.5 vs"),
    (("run_id",), "another", "run_id: 'another' vs"),
])
def test_run_json_disagreeing_with_the_leaderboard_is_refused(
        run_copy: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        path: tuple[str, ...], value: Any, shown: str) -> None:
    record = json.loads((run_copy / "run.json").read_text())
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    (run_copy / "run.json").write_text(json.dumps(record))
    before = _files(run_copy)
    assert _inline(run_copy, tiny_args, budget=2) == 2
    err = _error(capsys)
    assert "hold different run settings" in err and shown in err
    assert _files(run_copy) == before


def test_rows_without_any_settings_are_refused(run_copy: Path, tiny_args: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    Leaderboard(run_copy).set_settings({})
    (run_copy / "run.json").unlink()
    before = _files(run_copy)
    assert _inline(run_copy, tiny_args, budget=2) == 2
    assert "holds 1 leaderboard rows but no run settings" in _error(capsys)
    assert _files(run_copy) == before


@pytest.mark.parametrize("damage", ["garbage", "missing", "stale"])
def test_best_json_is_rederived_from_the_leaderboard(
        run_copy: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        damage: str) -> None:
    best = run_copy / "best.json"
    expected = read_best(best)
    if damage == "garbage":
        best.write_text('{"arch": ')
    elif damage == "missing":
        best.unlink()
    else:
        best.write_text(json.dumps({**expected.to_document(), "arch_hash": "000000000000"}))
    assert _inline(run_copy, tiny_args) == 0  # budget reached: nothing is evaluated
    assert "best.json was missing, unreadable or out of date" in capsys.readouterr().err
    assert read_best(best) == expected


def test_settings_without_leaderboard_rows_start_a_new_run_and_say_so(
        run_copy: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The damaged leaderboard was moved away, as its error advises: run.json, best.json and
    # the journal of the old run stay behind.
    old = json.loads((run_copy / "run.json").read_text())
    (run_copy / "leaderboard.parquet").rename(run_copy / "leaderboard.parquet.damaged")
    monkeypatch.setattr("nas.search.inline_executor.time_reference", _never)  # stored: kept

    def stop_at_once(self: Any, run: Any) -> None:
        from nas.run.interrupt import Interrupted

        assert not (run_copy / "best.json").exists()  # gone before any new candidate
        raise Interrupted(2)

    monkeypatch.setattr("nas.search.inline_executor.InlineExecutor.run", stop_at_once)
    assert _inline(run_copy, tiny_args) == 130
    err = capsys.readouterr().err
    assert (f"{run_copy / 'leaderboard.parquet'} is missing: a new run starts in {run_copy} "
            f"with the settings stored in {run_copy / 'run.json'}\n") in err
    assert f"{run_copy / 'best.json'} was removed: no leaderboard row backs it" in err
    new = json.loads((run_copy / "run.json").read_text())
    assert new["run_id"] != old["run_id"] and new["reference"] == old["reference"]
    assert (run_copy / f"optuna.journal.{old['run_id']}").exists()  # the old run's trials
    assert not (run_copy / "best.json").exists()


def test_a_damaged_pending_log_is_refused_with_its_advice_once(
        run_copy: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    log = run_copy / "leaderboard.pending.jsonl"
    log.write_text("not a row\n")
    assert _inline(run_copy, tiny_args, budget=2) == 2
    assert _error(capsys) == (f"error: {log}: line 1 is not a leaderboard row; move it away "
                              "or use another --out")


def test_a_finished_run_prints_its_summary_without_starting_ray(
        run_copy: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nas.search.run.make_executor", _never)
    board = (run_copy / "leaderboard.parquet").read_bytes()
    assert main(["--budget", "1", "--executor", "ray", "--out", str(run_copy),
                 *tiny_args]) == 0
    out = capsys.readouterr().out
    assert "1 candidate (1 ok, 0 failed)" in out and "best:" in out
    assert pd.read_parquet(run_copy / "leaderboard.parquet").equals(
        pd.read_parquet(io.BytesIO(board)))


def test_out_that_is_a_file_is_refused_before_any_work(
        tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nas.search.run.load_data", _never)
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    assert _inline(afile, tiny_args) == 2
    assert f"--out {afile} is a file; give a folder" in _error(capsys)
    assert _inline(afile / "run", tiny_args) == 2
    assert f"{afile} is a file, not a folder" in _error(capsys)
    assert afile.read_text() == "keep me" and sorted(tmp_path.iterdir()) == [afile]


def test_unwritable_out_is_refused_before_any_work(
        tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    parent = tmp_path / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: show the check what any other user sees
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
            Path(path) != parent and real_access(path, mode, **kw)))
    monkeypatch.setattr("nas.search.run.load_data", _never)
    try:
        assert _inline(parent / "run", tiny_args) == 2
        assert f"{parent} is not writable by this user" in _error(capsys)
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


@pytest.mark.parametrize(("extra", "message"), [
    (["--max-params", "10"], "--max-params 10 is below the smallest spec of space 'v2b0' "
                             "(538,357 params even with a single class)"),
    (["--max-params", "0.54M"], "--max-params 540,000 is below the smallest spec of space "
                                 "'v2b0' (542,200 params with 4 classes)"),
    (["--max-macs", "1M"], "--max-macs 1,000,000 is below the smallest spec of space "
                                "'v2b0' (1,183,472 MACs at resolution 32)"),
])
def test_impossible_constraints_are_refused_before_ray_and_leave_nothing(
        tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str) -> None:
    monkeypatch.setattr("nas.search.run.make_executor", _never)  # Ray never starts
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new" / "run", empty):
        args = ["--budget", "2", "--out", str(out), *tiny_args, *extra]
        assert main(args) == 2
        assert _error(capsys) == f"error: {message}: no candidate fits; raise " \
                                 f"{extra[0]} or choose a smaller space"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    assert list(empty.iterdir()) == []  # not even a lock file


def test_a_count_that_is_not_one_is_one_line(tmp_path: Path, tiny_args: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--budget", "2", "--out", str(tmp_path / "run"), *tiny_args,
                 "--max-params", "8x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-params '8x': expected an integer with an optional " \
        "K/M/G suffix" in err, err
    assert list(tmp_path.iterdir()) == []


def test_smallest_cost_is_the_minimum_over_every_spec_of_the_space() -> None:
    space = space_from_dict({
        "name": "tiny", "stem_channels": 8, "head_channels": 32,
        "defaults": {"kernels": [3, 5], "expansions": [1, 4], "se_mbconv": [0.0, 0.25]},
        "stages": [
            {"out_channels": 8, "stride": 1, "layers": [1, 2], "blocks": ["fused", "mbconv"]},
            {"out_channels": 16, "stride": 2, "layers": [1, 2], "blocks": ["fused", "mbconv"]},
            {"out_channels": 64, "stride": 2, "layers": 1, "blocks": ["mbconv"],
             "optional": True},
        ],
    })
    specs = set()
    names = [d.name for d in decisions(space)]
    for values in itertools.product(*(d.choices for d in decisions(space))):
        specs.add(from_choices(space, dict(zip(names, values)), num_classes=7))
    assert len(specs) > 100
    assert smallest_cost(space, 7, 32) == (min(count_params(s) for s in specs),
                                           min(count_macs(s, 32) for s in specs))
