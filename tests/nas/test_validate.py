"""``nas-validate``: the candidates it picks, a whole validation, a killed one continued, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas.cli.validate import main
from nas.run.lock import RunLock
from nas.run.settings import ConfigError
from nas.validate.plan import select_candidates
from results.validation import read_validation

REPO = Path(__file__).resolve().parents[2]
FAST = ["--k", "3", "--seeds", "1", "--long-seeds", "1", "--epochs", "1", "--executor",
        "inline", "--cpus-per-job", "1", "--no-progress"]


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished inline search of 4 candidates (copy it before changing it)."""
    from nas.cli.search import main as search_main
    from tests.nas.conftest import TINY_ARGS

    out = tmp_path_factory.mktemp("validate") / "run"
    assert search_main(["--budget", "4", "--executor", "inline", "--out", str(out),
                        *TINY_ARGS]) == 0
    return out


@pytest.fixture
def run(search: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(search, out)
    return out


def _board(rewards: list[float | None]) -> pd.DataFrame:
    return pd.DataFrame({
        "trial_id": range(len(rewards)), "number": range(len(rewards)),
        "status": ["ok" if r is not None else "failed" for r in rewards], "reward": rewards,
        "arch": [f"a{i}" for i in range(len(rewards))],
        "arch_hash": [f"h{i}" for i in range(len(rewards))],
        "seed": 0, "accuracy": 0.5, "step_time_ms": 1.0, "params": 1, "macs": 1,
        "provenance_json": "{}"})


def test_the_top_three_and_one_candidate_from_each_stratum_of_the_rest() -> None:
    # 20 ok rows (reward 20 - i: row i has rank i + 1), 2 failed rows that never count.
    board = _board([20.0 - i for i in range(20)] + [None, None])
    picked = select_candidates(board, 6, seed=0, where="run")
    ranks = [c.search_rank for c in picked]
    assert ranks[:3] == [1, 2, 3]
    # The other 17 ranks cut into 3 strata: 4-9, 10-14, 15-20; one from each.
    assert 4 <= ranks[3] <= 9 and 10 <= ranks[4] <= 14 and 15 <= ranks[5] <= 20
    assert [c.arch for c in picked] == [f"a{r - 1}" for r in ranks]
    assert [c.search_rank for c in select_candidates(board, 6, seed=0, where="run")] == ranks
    draws = {tuple(c.search_rank for c in select_candidates(board, 6, seed=s, where="run"))
             for s in range(10)}
    assert len(draws) > 1  # the seed decides within the strata
    assert [c.search_rank for c in select_candidates(board, 20, seed=0, where="run")] == \
        list(range(1, 21))
    with pytest.raises(ConfigError, match="has 20 ok candidate"):
        select_candidates(board, 21, seed=0, where="run")


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("Ray was started although every job is finished")


def test_a_validation_runs_every_job_once_and_writes_its_files(
        run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main([str(run), *FAST]) == 0
    out = capsys.readouterr().out
    rows, settings = read_validation(run)
    frame = pd.DataFrame(rows)
    # 3 candidates: the search's own proxy run (copied), one more proxy run, one long run.
    assert sorted(frame.groupby(["kind", "source"]).size().items()) == [
        (("long", "run"), 3), (("proxy", "run"), 3), (("proxy", "search"), 3)]
    assert frame["job_key"].is_unique and set(frame["search_rank"]) == {1, 2, 3}
    long = frame[frame["kind"] == "long"]
    assert (long["eval_split"] == "test").all() and (long["eval_images"] == 4 * 200).all()
    assert settings["candidates"] == list(frame.sort_values("search_rank")["arch_hash"]
                                          .drop_duplicates())
    for name in ("validation.json", "validation.png"):
        assert (run / name).stat().st_size > 0
    assert "proxy seed vs seed" in out and "long seed vs seed" in out
    assert "(6 jobs run, 3 already finished)" in out
    # Every proxy run, the search's own included, records its ranking signals.
    proxy = frame[frame["kind"] == "proxy"]
    for name in ("minival_top1", "minival_loss", "tse", "meco"):
        assert proxy[name].notna().all(), name
    # The search's CPU proxy keeps an EMA, and its accuracy is the EMA weights'.
    assert proxy["minival_top1_ema"].notna().all()
    assert (proxy["minival_top1_ema"] == proxy["accuracy"]).all()
    # A proxy run is scored as the search scored its own (A = the minival likelihood, the
    # default); a long training by its held-out top-1.
    record = json.loads((run / "run.json").read_text())
    factor = (frame["step_time_ms"] / record["reference"]["step_time_ms"]) ** -0.07 * \
        (frame["params"] / record["reference"]["params"]) ** -0.05
    a = np.where(frame["kind"] == "proxy", np.exp(-frame["minival_loss"]), frame["accuracy"])
    assert np.allclose(frame["reward"], a * factor, rtol=1e-9)
    history = json.loads(proxy[proxy["source"] == "run"]["history_json"].iloc[0])
    assert history[-1]["train_loss_sum"] == pytest.approx(
        proxy[proxy["source"] == "run"]["tse"].iloc[0])
    stats = json.loads((run / "validation.json").read_text())["statistics"]
    assert stats["meco_vs_long"]["n"] == 3 and stats["minival_top1_ema_vs_long"]["n"] == 3
    assert "proxy MeCo at initialization vs long" in out
    assert "proxy -TSE (last epoch's summed training loss) vs long" in out
    monkeypatch.setattr("nas.search.ray_executor._start_ray", _never)
    monkeypatch.setattr("nas.search.ray_executor.run_tasks", _never)
    # Everything is finished: nothing runs again, and Ray is not started to do nothing.
    assert main([str(run), *FAST, "--executor", "ray"]) == 0
    assert "(0 jobs run, 9 already finished)" in capsys.readouterr().out
    assert pd.DataFrame(read_validation(run)[0]).equals(frame)


@pytest.mark.parametrize("damaged", ["leaderboard.parquet", "leaderboard.pending.jsonl"])
def test_a_damaged_search_folder_is_refused_naming_the_search_folder(
        damaged: str, run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run / damaged).write_text("not a leaderboard\n")
    out = tmp_path / "validation"
    assert main([str(run), *FAST, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / damaged}") and err.count("\n") == 1, err
    assert err.endswith("; move it away or give another search's folder\n"), err
    assert "--out" not in err and not out.exists()


def test_a_killed_validation_continues_without_running_a_job_twice(
        run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cmd = [sys.executable, "-m", "nas.cli.validate", str(run), *FAST]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240

        def ran() -> int:
            try:
                return sum(r["source"] == "run" for r in read_validation(run)[0])
            except Exception:  # noqa: BLE001 - not written yet, or being replaced
                return 0

        while ran() < 2:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    kept = pd.DataFrame(read_validation(run)[0])
    assert 2 <= (kept["source"] == "run").sum() < 6
    assert main([str(run), *FAST]) == 0
    ran = 9 - len(kept)
    assert f"({ran} job{'' if ran == 1 else 's'} run, {len(kept)} already finished)" in \
        capsys.readouterr().out
    rows = pd.DataFrame(read_validation(run)[0])
    assert len(rows) == 9 and rows["job_key"].is_unique
    pd.testing.assert_frame_equal(rows.iloc[:len(kept)], kept)  # finished rows untouched


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", ["missing", "no search", "k below 3", "fewer ok than k",
                                  "locked", "another validation", "surrogate run"])
def test_bad_input_is_one_line_and_writes_nothing(case: str, run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args, expected = [str(run), *FAST], ""
    if case == "missing":
        args[0], expected = str(tmp_path / "nowhere"), "is not a folder"
    elif case == "no search":
        (tmp_path / "empty").mkdir()
        args[0], expected = str(tmp_path / "empty"), "holds no search"
    elif case == "k below 3":
        args += ["--k", "2"]
        expected = "--k 2 must be a whole number >= 3"
    elif case == "fewer ok than k":
        args += ["--k", "5"]
        expected = "has 4 ok candidates; --k 5 needs at least 5"
    elif case == "surrogate run":
        from nas.cli.search import main as search_main

        run = tmp_path / "surrogate"
        assert search_main(["--budget", "4", "--objective", "surrogate", "--executor",
                            "inline", "--hardware", "cpu", "--out", str(run),
                            "--no-progress"]) == 0
        capsys.readouterr()
        args[0], expected = str(run), "is a surrogate run"
    elif case == "another validation":
        assert main([str(run), *FAST]) == 0
        capsys.readouterr()
        args += ["--seeds", "2", "--epochs", "2"]
        expected = (f"--out {run} holds another validation: seeds was 1, now 2; epochs was "
                    "1, now 2; use another --out or the same settings")
    lock = RunLock(run, "nas-search")
    if case == "locked":
        lock.acquire()
        expected = "is in use by nas-search"
    try:
        before = _snapshot(run)
        assert main(args) == 2
        assert _snapshot(run) == before
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1, err
    assert not (tmp_path / "nowhere").exists()


def test_nas_search_refuses_validate_with_the_surrogate_objective(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli.search import main as search_main

    out = tmp_path / "run"
    assert search_main(["--budget", "4", "--objective", "surrogate", "--validate", "3",
                        "--hardware", "cpu", "--executor", "inline", "--out", str(out),
                        "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--validate needs --objective train" in err and err.count("\n") == 1, err
    assert not out.exists()


def test_nas_search_validate_runs_the_validation_at_the_end(
        tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli.search import main as search_main

    out = tmp_path / "run"
    assert search_main(["--budget", "3", "--validate", "4", "--out", str(out),
                        *tiny_args]) == 2
    assert "--validate 4 picks 4 candidates" in capsys.readouterr().err
    assert not out.exists()  # refused before the search
    assert search_main(["--budget", "3", "--validate", "3", "--executor", "ray", "--out",
                        str(out), *tiny_args]) == 0
    printed = capsys.readouterr().out
    assert "long seed vs seed" in printed and "validation.json" in printed
    frame = pd.DataFrame(read_validation(out)[0])
    assert len(frame) == 3 * (1 + 2 + 2)  # the search's run, 2 more proxy runs, 2 long
    assert (frame["status"] == "ok").all()


def test_the_long_training_is_the_search_proxy_made_long_whatever_proxy_is_validated(
        tmp_path: Path) -> None:
    from dataclasses import replace

    from nas.validate.config import ValidateConfig
    from nas.validate.plan import make_jobs
    from proxy_train.recipe import Recipe

    board = _board([3.0, 2.0, 1.0])
    board["arch"] = [f"stem8-fused_r{r}_k3_s1_e1_c8-head16-cls4" for r in (1, 2, 3)]
    candidates = select_candidates(board, 3, seed=0, where="run")
    search = replace(Recipe.cpu_quick(), seed=5, cpu_threads=2)
    config = ValidateConfig(run=str(tmp_path), seeds=2, long_seeds=2)

    def plan(proxy: Recipe):  # type: ignore[no-untyped-def]
        return make_jobs(config, candidates, search, proxy, "synthetic", 0, 64, cuda=False,
                         threads=1, long_file=None)

    same, other = plan(search), plan(search.replace(lr=0.05, epochs=search.epochs + 1))
    assert len(same.copied) == 3 and not other.copied  # the search's runs count only for it
    assert [j.kind for j in same.jobs] == ["long"] * 6 + ["proxy"] * 6
    long = same.jobs[0].recipe
    assert (long.epochs, long.batch_size, long.eval_resolution, long.ema_decay) == \
        (4 * search.epochs, 64, 82, 0.9999)
    assert [(s.epochs, s.resolution, s.randaug_magnitude, s.dropout) for s in long.stages] == \
        [(4 * search.epochs, 64, 0.0, 0.0)]
    assert (long.optimizer, long.lr, long.crop_area, long.max_train_batches_per_epoch) == \
        (search.optimizer, search.lr, search.crop_area, None)
    assert [j.key for j in same.jobs if j.kind == "long"] == \
        [j.key for j in other.jobs if j.kind == "long"]  # one ruler for every proxy
    keys = [j.key for j in (*same.jobs, *same.copied)]
    assert len(set(keys)) == len(keys)
    assert {j.recipe.lr for j in other.jobs if j.kind == "proxy"} == {0.05}
    # The search ran its candidates with seed 0: the runs copied from it take that seed.
    assert {j.seed for j in same.jobs if j.kind == "proxy"} == {1, 2}
    assert {j.seed for j in other.jobs if j.kind == "proxy"} == {0, 1}


def test_the_report_names_each_signal_beside_the_predictors_without_training() -> None:
    from nas.cli.validate import report_lines

    found = {"n": 10, "tau": 0.5, "tau_ci": [0.2, 0.8], "rho": 0.6}
    lines = report_lines({"minival_loss_vs_long": found, "meco_vs_long": None,
                          "params_vs_long": found}).splitlines()
    labels = [line.split("  ")[0] for line in lines]
    assert labels.index("proxy -minival loss vs long") < labels.index("params alone vs long")
    loss = next(line for line in lines if line.startswith("proxy -minival loss vs long"))
    assert loss.endswith("τ = 0.50 [0.20, 0.80], n = 10  ρ = 0.60")
    meco = next(line for line in lines if line.startswith("proxy MeCo at initialization"))
    assert meco.endswith("τ = n/a")
    assert len([line for line in lines if line.startswith("proxy minival top-1")]) == 2
