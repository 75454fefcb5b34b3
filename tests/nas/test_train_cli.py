"""``nas-train``: a staged run's outputs, continuing, refusing, running out of memory."""

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
import torch

import proxy_train.loop as loop
from nas.cli.train import main
from proxy_train.checkpoint import load_checkpoint
from proxy_train.model_file import load_model
from results.metrics import COLUMNS, read_metrics

REPO = Path(__file__).resolve().parents[2]
ARCH = "stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls10"
DATA = "synthetic:classes=3,per_class=20,test_per_class=4,resolution=24"
BASE = ["--arch", ARCH, "--data", DATA, "--hardware", "cpu", "--batch-size", "16",
        "--no-progress"]
NUMBERS = ["epoch", "stage", "image_size", "randaug", "mixup", "dropout", "lr", "train_loss",
           "minival_top1", "minival_top1_ema"]


@pytest.fixture(scope="module")
def two_stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-stage, 2-epoch training on the built-in data (built once)."""
    out = tmp_path_factory.mktemp("train") / "run"
    assert main([*BASE, "--epochs", "2", "--stages", "2", "--out", str(out)]) == 0
    return out


def test_two_stages_change_size_and_regularization_at_the_boundary(two_stage: Path) -> None:
    metrics = read_metrics(two_stage / "metrics.parquet")
    assert list(metrics.columns) == list(COLUMNS) and len(metrics) == 2
    first, second = metrics.iloc[0], metrics.iloc[1]
    # Algorithm 1 between the model's minimum and maximum: an arch string trains up to the
    # data's own 24 px, starting at 128 / 300 of it; RandAugment 5 -> 15, dropout 0.1 -> 0.3.
    assert (first["stage"], first["image_size"], second["stage"], second["image_size"]) == \
        (1, 10, 2, 24)
    assert (first["randaug"], second["randaug"]) == (5.0, 15.0)
    assert (first["dropout"], second["dropout"]) == pytest.approx((0.1, 0.3))
    assert metrics["minival_top1_ema"].notna().all()  # the EMA is evaluated every epoch
    assert (metrics["images_per_s"] > 0).all() and (metrics["lr"] > 0).all()


def test_outputs_of_a_finished_training(two_stage: Path, capsys: pytest.CaptureFixture) -> None:
    record = json.loads((two_stage / "train.json").read_text())
    assert record["status"] == "finished"
    assert record["model"]["arch"] == ARCH.replace("cls10", "cls3")  # the data's 3 classes
    result = record["result"]
    assert result["epochs_run"] == 2 and result["eval_size"] == 31  # 24 * 384 / 300
    assert 0 <= result["test_top1_ema"] <= 1 and result["test_images"] == 12
    assert [s["resolution"] for s in record["recipe"]["stages"]] == [10, 24]
    assert record["recipe"]["optimizer"] == "rmsprop" and record["recipe"]["drop_path"] == 0.2
    assert record["recipe"]["ema_decay"] == 0.9999
    model = load_model(two_stage / "model.pt")
    assert model.eval_size == 31 and model.ema is not None and model.num_classes == 3
    net = model.build("ema")
    assert net(torch.zeros(1, 3, 31, 31)).shape == (1, 3)
    assert (two_stage / "curves.png").stat().st_size > 10_000
    # the same command again: nothing to do, the stored result is printed
    assert main([*BASE, "--epochs", "2", "--stages", "2", "--out", str(two_stage)]) == 0
    out = capsys.readouterr()
    assert "already finished" in out.err and "test top-1" in out.out


def test_a_folder_holding_another_training_is_refused(two_stage: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    before = sorted(p.name for p in two_stage.iterdir())
    assert main([*BASE, "--epochs", "3", "--stages", "2", "--out", str(two_stage)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --out {two_stage} holds another training: recipe epochs was "
                          "2, now 3")
    assert sorted(p.name for p in two_stage.iterdir()) == before


def _run(out: Path, epochs: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "nas.cli.train", *BASE, "--epochs", str(epochs), "--stages",
           "2", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_kill_9_then_resume_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    proc = _run(killed, 5)
    try:
        deadline = time.monotonic() + 120
        while not (killed / "metrics.parquet").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # in epoch 2, or writing epoch 2's checkpoint
    finally:
        proc.wait()
    state, _ = load_checkpoint(killed / "checkpoint.pt")
    assert 1 <= state.epochs_run < 5
    record = json.loads((killed / "train.json").read_text())
    assert record["status"] == "running"
    for out in (killed, whole):  # continue the killed one; train the other in one go
        finished = _run(out, 5)
        _, err = finished.communicate(timeout=300)
        assert finished.returncode == 0, err
    a, b = (read_metrics(p / "metrics.parquet")[NUMBERS] for p in (killed, whole))
    pd.testing.assert_frame_equal(a, b)
    ra, rb = (json.loads((p / "train.json").read_text())["result"] for p in (killed, whole))
    assert (ra["test_top1"], ra["test_top1_ema"]) == (rb["test_top1"], rb["test_top1_ema"])


def test_sigterm_keeps_the_finished_epochs_and_says_how_to_continue(tmp_path: Path) -> None:
    out = tmp_path / "stopped"
    proc = _run(out, 30)
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.parquet").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == (
        f"interrupted by SIGTERM: finished epochs are saved; run the same command with --out "
        f"{out} to continue")
    state, _ = load_checkpoint(out / "checkpoint.pt")
    assert len(read_metrics(out / "metrics.parquet")) == state.epochs_run >= 1


def test_out_of_memory_names_stage_size_and_batch_and_keeps_the_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    original = loop.TrainStep.__call__

    def step(self: loop.TrainStep, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 24 and x.shape[0] == 16:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return original(self, x, y)

    monkeypatch.setattr(loop.TrainStep, "__call__", step)
    out = tmp_path / "oom"
    args = [*BASE, "--epochs", "2", "--stages", "2", "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: out of memory in stage 2 of 2 (image size 24 px, batch 16): the "
                   f"last checkpoint (epoch 1 of 2) is kept in {out / 'checkpoint.pt'}; run the "
                   "same command with a smaller --batch-size (e.g. 8) to continue")
    assert json.loads((out / "train.json").read_text())["status"] == "failed"
    smaller = [a if a != "16" else "8" for a in args]
    assert main(smaller) == 0  # continues from epoch 1 with the smaller batch
    metrics = read_metrics(out / "metrics.parquet")
    assert list(metrics["epoch"]) == [1, 2]
    assert "continued from epoch 1 (its checkpoint)" in capsys.readouterr().out


def _nothing_written(out: Path) -> None:
    assert not out.exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--arch", "no-such-model"], "'no-such-model' is not a preset, a file or an architecture"),
    (["--sizes", "4:100"], "--sizes 4:100: sizes must be >= 8 px"),
    (["--sizes", "100:50"], "--sizes 100:50: MIN must not exceed MAX"),
    (["--sizes", "big"], "--sizes 'big' must be MIN:MAX"),
    (["--epochs", "0"], "--epochs 0 must be a whole number >= 1"),
    (["--stages", "5", "--epochs", "2"], "--stages 5 must not exceed --epochs 2"),
    (["--ema", "1.5"], "--ema 1.5 must be a number in [0, 1)"),
    (["--recipe", "missing.json"], "--recipe 'missing.json' is neither progressive nor fixed"),
    (["--hardware", "v100"], "hardware 'v100' not found on this machine"),
    (["--target", "L"], "--target 'L' picks a model of a nas-scale output"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  extra: list[str], message: str) -> None:
    out = tmp_path / "never"
    assert main([*BASE, "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    _nothing_written(out)


@pytest.mark.parametrize(("recipe", "message"), [
    ({"training": {"optimiser": "sgd"}}, "training: unknown field 'optimiser'; allowed: "),
    ({"training": {"epochs": 5}}, "training: unknown field 'epochs'; allowed: "),
    ({"progressive": {"randaug": [5, 99]}}, "randaug [5, 99]: each must be a number in [0, 30]"),
    ({"progressive": {"image_size": [64, 32]}}, "image_size [64, 32]: min 64 is above max 32"),
    ({"training": {"crop_area": 0}}, "crop_area 0 must be a number in"),
    ({"schedule": {}}, "unknown field 'schedule'; allowed: progressive, training"),
])
def test_bad_recipe_files(tmp_path: Path, capsys: pytest.CaptureFixture, recipe: dict,
                          message: str) -> None:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    out = tmp_path / "never"
    assert main([*BASE, "--out", str(out), "--recipe", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    _nothing_written(out)


def test_a_recipe_file_sets_the_schedule(tmp_path: Path) -> None:
    path = tmp_path / "recipe.toml"
    path.write_text('[progressive]\nimage_size = [12, 20]\nrandaug = [0, 4]\nstages = 2\n'
                    '[training]\noptimizer = "adamw"\nlr = 0.01\n')
    out = tmp_path / "run"
    assert main([*BASE, "--out", str(out), "--recipe", str(path), "--epochs", "2"]) == 0
    record = json.loads((out / "train.json").read_text())
    stages = record["recipe"]["stages"]
    assert [(s["resolution"], s["randaug_magnitude"]) for s in stages] == [(12, 0), (20, 4)]
    assert (record["recipe"]["optimizer"], record["recipe"]["lr"]) == ("adamw", 0.01)


def test_other_folders_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    search = tmp_path / "search"
    search.mkdir()
    (search / "leaderboard.parquet").write_bytes(b"")
    assert main([*BASE, "--out", str(search)]) == 2
    assert "holds a search run (leaderboard.parquet)" in capsys.readouterr().err
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "train.json").write_text("{")
    assert main([*BASE, "--out", str(garbage)]) == 2
    assert "is not a readable training record" in capsys.readouterr().err
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main([*BASE, "--out", str(a_file)]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_scale_outputs_need_a_target_when_they_hold_several(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    from nas.cli.scale import main as scale
    from nas.cli.train import train_model
    from nas.train.config import TrainConfig
    from nas.train.plan import make_plan

    report = tmp_path / "scaled.json"
    assert scale(["--base", "efficientnetv2-s", "--target", "M,L", "--out", str(report)]) == 0
    capsys.readouterr()
    assert main([*BASE[2:], "--arch", str(report), "--out", str(tmp_path / "x")]) == 2
    assert "holds several models ['M', 'L']: choose one with --target" in capsys.readouterr().err
    config = TrainConfig(arch=str(report), out=str(tmp_path / "y"), target="l", epochs=8)
    model = train_model(config)
    plan = make_plan(config, model, 64, cuda=False)
    # its nas-scale recipe (Table 6, L), shrunk to 8 epochs and fitted to 64 px data
    assert model.name == "L" and plan.progressive.randaug == (5, 25)
    assert [s.resolution for s in plan.recipe.stages] == [22, 36, 50, 64]
    assert plan.recipe.eval_resolution == round(64 * model.eval_size / model.train_size)
