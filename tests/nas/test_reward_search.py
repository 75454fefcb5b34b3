"""The reward a search records: ``A`` as ``--reward-accuracy`` says, for every candidate."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from nas.cli.search import main


def _row(out) -> pd.Series:
    return pd.read_parquet(out / "leaderboard.parquet").iloc[0]


@pytest.mark.parametrize("estimate", ["likelihood", "top1"])
def test_the_leaderboard_reward_is_its_estimate_times_s_and_p(tmp_path, tiny_args, estimate):
    out = tmp_path / estimate
    extra = [] if estimate == "likelihood" else ["--reward-accuracy", "top1"]
    assert main(["--budget", "1", "--executor", "inline", "--out", str(out), *tiny_args,
                 *extra]) == 0
    row = _row(out)
    a = math.exp(-row["minival_loss"]) if estimate == "likelihood" else row["accuracy"]
    assert row["reward"] == pytest.approx(
        a * row["step_time_norm"] ** -0.07 * row["params_norm"] ** -0.05, rel=1e-12)
    assert json.loads((out / "run.json").read_text())["config"]["reward_accuracy"] == estimate


def test_a_run_continues_only_with_the_same_estimate(tmp_path, tiny_args, capsys):
    out = tmp_path / "run"
    assert main(["--budget", "1", "--executor", "inline", "--out", str(out), *tiny_args]) == 0
    assert main(["--budget", "2", "--executor", "inline", "--out", str(out), *tiny_args,
                 "--reward-accuracy", "top1"]) == 2
    assert "reward_accuracy was 'likelihood', now 'top1'" in capsys.readouterr().err
    assert len(pd.read_parquet(out / "leaderboard.parquet")) == 1


def test_an_unknown_estimate_is_one_line(tmp_path, tiny_args, capsys):
    out = tmp_path / "run"
    assert main(["--budget", "1", "--executor", "inline", "--out", str(out), *tiny_args,
                 "--reward-accuracy", "top5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: unknown --reward-accuracy 'top5'; expected one of "
                   "['likelihood', 'top1']")
    assert not out.exists()
