"""``--tracker``: a search, a training and a validation, read back from each tracker's own
store (MLflow through ``mlflow.search_runs``, TensorBoard through its event reader, W&B
offline through the records of its run files), and a broken store that leaves the search
whole. Every store lives in the test's temporary folder."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nas.cli.search import main as search
from nas.cli.train import main as train
from nas.cli.validate import main as validate
from results.leaderboard import Leaderboard
from tests.nas.conftest import TINY_ARGS

TRAIN = ["--arch", "stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls10",
         "--data", "synthetic:classes=3,per_class=20,test_per_class=4,resolution=24",
         "--hardware", "cpu", "--batch-size", "16", "--epochs", "2", "--stages", "2",
         "--no-progress"]
VALIDATE = ["--k", "3", "--seeds", "1", "--long-seeds", "1", "--epochs", "1", "--executor",
            "inline", "--cpus-per-job", "1", "--no-progress"]


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every tracker writes under ``tmp_path``: MLflow's SQLite store (and its artifacts,
    which MLflow keeps in ``./mlruns`` of the working folder), W&B offline."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "300")  # its service starts slowly on a loaded machine
    return tmp_path


def _mlflow_runs(kind: str) -> pd.DataFrame:
    import mlflow

    runs = mlflow.search_runs(experiment_names=["effnas"])
    return runs[runs["tags.effnas.kind"] == kind].reset_index(drop=True)


def _artifacts(run_id: str) -> set[str]:
    from mlflow.tracking import MlflowClient

    return {a.path for a in MlflowClient().list_artifacts(run_id)}


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    return sorted((m.step, m.value) for m in MlflowClient().get_metric_history(run_id, key))


def _events(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def _scalars(events: Any, tag: str) -> list[tuple[int, float]]:
    return [(e.step, pytest.approx(e.value)) for e in events.Scalars(tag)]


def test_a_search_is_a_parent_run_with_a_child_run_per_candidate(stores: Path) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    out = stores / "run"
    assert search(["--budget", "2", "--executor", "inline", "--out", str(out),
                   "--tracker", "mlflow", "--tracker", "tensorboard", *TINY_ARGS,
                   "--epochs", "2"]) == 0
    rows = Leaderboard(out).read().sort_values("number").to_dict("records")
    curves = {r["arch_hash"]: json.loads(r["provenance_json"])["training"]["accuracy_curve"]
              for r in rows}
    assert all(len(c) == 2 for c in curves.values())
    (parent,) = _mlflow_runs("search").to_dict("records")
    children = _mlflow_runs("candidate")
    assert set(children["tags.mlflow.parentRunId"]) == {parent["run_id"]}
    assert sorted(children["params.arch"]) == sorted(r["arch"] for r in rows)
    assert parent["params.config.budget"] == "2" and parent["status"] == "FINISHED"
    assert parent["metrics.best_reward"] == pytest.approx(max(r["reward"] for r in rows))
    assert [step for step, _ in _history(parent["run_id"], "best_reward")] == [1, 2]
    assert parent["metrics.finished"] == 2 and parent["metrics.failed"] == 0
    assert {"reward.png", "pareto.png", "best.json"} <= _artifacts(parent["run_id"])
    for child in children.to_dict("records"):
        row = next(r for r in rows if r["arch_hash"] == child["params.arch_hash"])
        assert child["params.status"] == row["status"] == "ok"
        assert child["metrics.reward"] == pytest.approx(row["reward"])
        assert child["metrics.step_time_ms"] == pytest.approx(row["step_time_ms"])
        assert child["metrics.macs"] == row["macs"] and child["metrics.params"] == row["params"]
        assert _history(child["run_id"], "interim_accuracy") == [
            (1, pytest.approx(curves[row["arch_hash"]][0])),
            (2, pytest.approx(curves[row["arch_hash"]][1]))]
        assert _history(child["run_id"], "interim_reward")[-1][1] == pytest.approx(row["reward"])
    board = _events(out / "tensorboard")
    assert _scalars(board, "reward") == [(i + 1, pytest.approx(r["reward"]))
                                         for i, r in enumerate(sorted(rows, key=lambda r:
                                                                      r["trial_id"]))]
    assert "reward" in board.Tags()["images"] and "pareto" in board.Tags()["images"]
    candidates = sorted((out / "tensorboard" / "candidates").iterdir())
    assert [p.name for p in candidates] == [f"{r['number']:04d}-{r['arch_hash']}" for r in rows]
    for folder, row in zip(candidates, rows):
        assert [v for _, v in _scalars(_events(folder), "interim_accuracy")] == \
            curves[row["arch_hash"]]


def test_a_broken_store_leaves_the_search_whole(stores: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mlflow")
    blocker = stores / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker / 'mlflow.db'}")
    out = stores / "run"
    assert search(["--budget", "2", "--executor", "inline", "--out", str(out),
                   "--tracker", "mlflow", *TINY_ARGS]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: tracker mlflow stopped") == 1
    assert "the job goes on without it" in err
    rows = Leaderboard(out).read()
    assert len(rows) == 2 and set(rows["status"]) == {"ok"}
    assert (out / "best.json").is_file() and (out / "reward.png").is_file()


def test_a_training_logs_its_epochs_stages_and_files(stores: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    # MLflow's file store (its older default), which it keeps behind an opt-in since 3.x.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (stores / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    out = stores / "train"
    assert train([*TRAIN, "--out", str(out), "--tracker", "mlflow",
                  "--tracker", "tensorboard"]) == 0
    metrics = pd.read_parquet(out / "metrics.parquet")
    (run,) = _mlflow_runs("train").to_dict("records")
    assert run["status"] == "FINISHED" and run["params.config.epochs"] == "2"
    assert _history(run["run_id"], "stage") == [(1, 1.0), (2, 2.0)]
    assert _history(run["run_id"], "image_size") == [(1, 10.0), (2, 24.0)]
    assert [v for _, v in _history(run["run_id"], "minival_top1")] == \
        pytest.approx(metrics["minival_top1"].tolist())
    record = json.loads((out / "train.json").read_text())
    assert run["metrics.test_top1_ema"] == pytest.approx(record["result"]["test_top1_ema"])
    assert {"curves.png", "model.pt"} <= _artifacts(run["run_id"])
    events = _events(out / "tensorboard")
    assert _scalars(events, "stage") == [(1, 1.0), (2, 2.0)]
    assert [v for _, v in _scalars(events, "train_loss")] == metrics["train_loss"].tolist()
    assert "curves" in events.Tags()["images"]


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tracked") / "run"
    assert search(["--budget", "4", "--executor", "inline", "--out", str(out), *TINY_ARGS]) == 0
    return out


def test_a_validation_logs_its_tau_lines_and_plot(stores: Path, finished_search: Path) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    run_dir = stores / "run"
    shutil.copytree(finished_search, run_dir)
    assert validate([str(run_dir), *VALIDATE, "--tracker", "mlflow",
                     "--tracker", "tensorboard"]) == 0
    document = json.loads((run_dir / "validation.json").read_text())
    (run,) = _mlflow_runs("validate").to_dict("records")
    assert run["params.verdict"] == document["verdict"]
    assert {"validation.png", "validation.json"} <= _artifacts(run["run_id"])
    events = _events(run_dir / "tensorboard")
    lines = {k: v for k, v in document["statistics"].items()
             if isinstance(v, dict) and v.get("tau") is not None}
    for name, found in lines.items():
        assert run[f"metrics.{name}.tau"] == pytest.approx(found["tau"])
        assert run[f"metrics.{name}.n"] == found["n"]
        assert _scalars(events, f"{name}.tau") == [(0, pytest.approx(found["tau"]))]
    assert "validation" in events.Tags()["images"]


def wandb_runs(folder: Path) -> list[dict[str, Any]]:
    """Every offline W&B run under ``folder``: its run record, history rows, summary, config
    and exit code, read from its ``.wandb`` file (LevelDB's log format: 32 KiB blocks of
    records, each a 7-byte header, CRC, length and type, then protobuf ``Record`` bytes)."""
    from wandb.proto import wandb_internal_pb2 as pb

    runs = []
    for path in sorted(folder.glob("wandb/offline-run-*/run-*.wandb")):
        data, records, chunk = path.read_bytes(), [], b""
        block, at = 32768, 7  # after the file's own header (":W&B", magic, version)
        while at + 7 <= len(data):
            if block - at % block < 7:
                at += block - at % block
                continue
            length, kind = struct.unpack("<HB", data[at + 4:at + 7])
            chunk += data[at + 7:at + 7 + length]
            at += 7 + length
            if kind in (1, 4):  # a full record, or the last piece of one
                records.append(pb.Record.FromString(chunk))
                chunk = b""
        run = _wandb_run(records)
        assert "job_type" in run, f"{path} holds no run record ({len(records)} records)"
        runs.append(run)
    return runs


def _items(items: Any) -> dict[str, Any]:
    """Key-value items of a record (a key may be written as ``nested_key`` parts)."""
    return {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}


def _wandb_run(records: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"history": [], "summary": {}, "config": {}, "exit": None}
    for rec in records:
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.update(id=rec.run.run_id, group=rec.run.run_group, job_type=rec.run.job_type)
        elif kind == "history":
            out["history"].append(_items(rec.history.item))
        elif kind == "summary":
            out["summary"].update(_items(rec.summary.update))
        elif kind == "config":
            out["config"].update(_items(rec.config.update))
        elif kind == "exit":
            out["exit"] = rec.exit.exit_code
    return out


def test_wandb_offline_runs_of_a_search_and_a_training(stores: Path) -> None:
    pytest.importorskip("wandb")
    out = stores / "run"
    assert search(["--budget", "2", "--executor", "inline", "--out", str(out),
                   "--tracker", "wandb", *TINY_ARGS]) == 0
    assert train([*TRAIN, "--out", str(stores / "train"), "--tracker", "wandb"]) == 0
    import wandb

    wandb.teardown()  # its service may still be writing the files: wait, as a process exit does
    rows = Leaderboard(out).read().to_dict("records")
    runs = {r["job_type"]: r for r in wandb_runs(stores) if r["job_type"] != "candidate"}
    children = [r for r in wandb_runs(stores) if r["job_type"] == "candidate"]
    parent = runs["search"]
    assert parent["exit"] == 0 and [h["reward"] for h in parent["history"]] == \
        pytest.approx([r["reward"] for r in sorted(rows, key=lambda r: r["trial_id"])])
    assert len(children) == 2 and {c["group"] for c in children} == {parent["group"]}
    assert sorted(c["config"]["arch"] for c in children) == sorted(r["arch"] for r in rows)
    for child in children:
        row = next(r for r in rows if r["arch"] == child["config"]["arch"])
        assert child["summary"]["reward"] == pytest.approx(row["reward"])
        assert [h["step"] for h in child["history"]] == [1]
    training = runs["train"]
    assert [h["stage"] for h in training["history"]] == [1, 2]
    assert training["exit"] == 0
