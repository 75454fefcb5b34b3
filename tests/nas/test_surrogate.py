"""``--objective surrogate``: a deterministic function of the spec that runs the whole machinery
(strategy, driver, executors, leaderboard, resume) without training, in rows that say so; a
surrogate run and a trained run never continue each other."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pandas as pd
import pytest

from nas.cli.search import main
from nas.search.surrogate import Surrogate
from search_space.codec import decode
from search_space.cost import count_params
from search_space.presets import get_preset
from search_space.sampling import sample
from search_space.space_files import load_space

PAPER = load_space("paper")
B4 = get_preset("efficientnet-b4").spec
# A fixed spec of the paper space and what the surrogate says of it at 224 px against
# EfficientNet-B4 (problem seed 0): bench/strategy_quality.py's figures rest on these values.
FIXED = sample(PAPER, random.Random(7))
GOLDEN = (0.761988201592, 4.962997424, 40_949_376)


def test_the_same_spec_always_gets_the_same_figures() -> None:
    one = Surrogate(PAPER, B4, 224)
    two = pickle.loads(pickle.dumps(Surrogate(PAPER, B4, 224)))  # as a Ray worker gets it
    specs = [sample(PAPER, random.Random(i)) for i in range(50)]
    assert [one(s) for s in specs] == [two(s) for s in specs]
    accuracy, step_ms, params = one(FIXED)
    assert (round(accuracy, 12), round(step_ms, 9), params) == GOLDEN
    assert params == count_params(FIXED)
    other = Surrogate(PAPER, B4, 224, problem_seed=1)
    assert other(FIXED)[0] != accuracy and other(FIXED)[1:] == (step_ms, params)


def test_bigger_is_more_accurate_and_slower_with_diminishing_returns() -> None:
    surrogate = Surrogate(PAPER, B4, 224)
    specs = sorted((sample(PAPER, random.Random(i)) for i in range(200)),
                   key=lambda s: surrogate.step_time_ms(s))
    small, large = specs[:50], specs[-50:]
    mean = lambda group: sum(surrogate.accuracy(s) for s in group) / len(group)  # noqa: E731
    assert mean(large) > mean(small) + 0.02
    assert all(0.0 <= surrogate.accuracy(s) <= 1.0 for s in specs)
    # MBConv costs 2.5x per MAC: the same network with fused stages is faster
    spec = decode("stem24-mbconv_r2_k3_s1_e4_c24_se0.25-mbconv_r2_k3_s2_e4_c48_se0.25-head256-cls10")
    fused = decode("stem24-fused_r2_k3_s1_e4_c24-fused_r2_k3_s2_e4_c48-head256-cls10")
    assert surrogate.step_time_ms(fused) < surrogate.step_time_ms(spec) * 2.5


def _surrogate_run(out: Path, tiny_args: list[str], *extra: str, budget: int = 6) -> int:
    return main(["--budget", str(budget), "--objective", "surrogate", "--out", str(out),
                 *tiny_args, *extra])


def test_surrogate_rows_are_deterministic_on_both_executors(tmp_path, tiny_args) -> None:
    assert _surrogate_run(tmp_path / "a", tiny_args, "--executor", "inline") == 0
    assert _surrogate_run(tmp_path / "b", tiny_args, "--executor", "inline") == 0
    assert _surrogate_run(tmp_path / "ray", tiny_args, "--executor", "ray", "--workers", "2") == 0
    a, b, on_ray = (pd.read_parquet(tmp_path / n / "leaderboard.parquet").sort_values("number")
                    .reset_index(drop=True) for n in ("a", "b", "ray"))
    assert len(a) == 6 and (a["objective"] == "surrogate").all() and (a["status"] == "ok").all()
    figures = ["arch", "accuracy", "step_time_ms", "params", "reward"]
    pd.testing.assert_frame_equal(a[figures], b[figures])
    pd.testing.assert_frame_equal(a[figures], on_ray[figures])
    # nothing measured, nothing claimed
    for column in ("epochs", "proxy_resolution", "step_time_steps", "device_name", "precision",
                   "torch_version"):
        assert a[column].isna().all(), column
    assert a["node_id"].isna().all() and on_ray["node_id"].notna().all()
    provenance = json.loads(a["provenance_json"][0])
    assert provenance["surrogate"]["function"] == "nas.search.surrogate.Surrogate"
    assert "timing" not in provenance and "training" not in provenance
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["config"]["objective"] == "surrogate"
    assert run["reference"]["timing"]["device_name"] == "surrogate"


def test_surrogate_and_trained_runs_refuse_each_others_folders(
        tmp_path, tiny_args, run_copy, capsys) -> None:
    trained = (run_copy / "leaderboard.parquet").read_bytes()
    assert _surrogate_run(run_copy, tiny_args, "--executor", "inline") == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: --out {run_copy} holds a different run: a train run, not a "
                   "surrogate one; use another --out or the same settings")
    assert (run_copy / "leaderboard.parquet").read_bytes() == trained

    out = tmp_path / "dry"
    assert _surrogate_run(out, tiny_args, "--executor", "inline", budget=2) == 0
    dry = (out / "leaderboard.parquet").read_bytes()
    capsys.readouterr()
    assert main(["--budget", "3", "--executor", "inline", "--out", str(out), *tiny_args]) == 2
    assert "holds a different run: a surrogate run, not a train one" in capsys.readouterr().err
    assert (out / "leaderboard.parquet").read_bytes() == dry
    assert _surrogate_run(out, tiny_args, "--executor", "inline", budget=4) == 0  # it continues
    assert len(pd.read_parquet(out / "leaderboard.parquet")) == 4


def test_runs_stored_before_the_objective_existed_are_trained_runs(
        run_copy, tiny_args, capsys) -> None:
    record = json.loads((run_copy / "run.json").read_text())
    del record["config"]["objective"]
    (run_copy / "run.json").write_text(json.dumps(record))
    from results.leaderboard import Leaderboard

    board = Leaderboard(run_copy)
    board.set_settings(record)
    assert _surrogate_run(run_copy, tiny_args, "--executor", "inline") == 2
    assert "a train run, not a surrogate one" in capsys.readouterr().err
    assert main(["--budget", "2", "--executor", "inline", "--out", str(run_copy),
                 *tiny_args]) == 0


def test_asha_needs_a_trained_objective(tmp_path, tiny_args, capsys) -> None:
    assert _surrogate_run(tmp_path / "x", tiny_args, "--early-stop", "asha") == 2
    assert "--early-stop asha needs --objective train" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("hardware", ["v100", "h100"])
def test_a_surrogate_run_takes_any_known_hardware_as_a_label(tmp_path, tiny_args,
                                                             hardware) -> None:
    args = [*tiny_args, "--hardware", hardware]
    assert _surrogate_run(tmp_path / "x", args, "--executor", "inline", budget=2) == 0
    assert set(pd.read_parquet(tmp_path / "x" / "leaderboard.parquet")["hardware"]) == {hardware}
