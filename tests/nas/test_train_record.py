"""``train.json`` as a typed record: the files written before it are read, and written back
key for key; a file that is not one says what it lacks."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from nas.run.settings import ConfigError
from nas.train.folder import TrainFolder
from nas.train.record import TrainRecord

# A train.json as nas-train wrote it before the record existed (format effnas.train, version 1).
WRITTEN: dict[str, Any] = {
    "format": "effnas.train", "version": 1, "status": "finished",
    "settings": {"arch": "stem8-fused_r1_k3_s2_e1_c8-head32-cls3", "data": "synthetic",
                 "seed": 0, "recipe": {"epochs": 2, "batch_size": 16, "lr": 0.016}},
    "config": {"arch": "stem8", "out": "runs/t", "sizes": [10, 24]},
    "model": {"name": "stem8", "source": "string", "arch": "stem8-fused_r1_k3_s2_e1_c8-head32-cls3",
              "hash": "0123456789ab", "params": 1000, "macs_eval": 20000},
    "recipe": {"epochs": 2, "batch_size": 16, "stages": [{"resolution": 10}]},
    "progressive": {"stages": 2}, "notes": ["image sizes scaled"],
    "data": {"source": "synthetic", "name": "synthetic", "resolution": 24, "classes": 3,
             "train": 60, "minival": 12, "test": 12},
    "hardware": {"name": "cpu", "device": "cpu", "threads": 1},
    "provenance": {"effnas": "0.1.0", "host": "vm", "argv": ["nas-train", "--arch", "stem8"],
                   "started_at": "2026-11-23T22:32:34.249090+00:00"},
    "result": {"status": "ok", "reason": "", "epochs_run": 2, "stage": 2, "image_size": 24,
               "eval_size": 31, "minival_top1": 0.5, "minival_top1_ema": 0.6,
               "test_top1": 0.4, "test_top1_ema": 0.45, "test_images": 12,
               "wall_time_s": 3.5},
}


def test_a_file_written_before_the_record_reads_and_writes_back_the_same(tmp_path: Path) -> None:
    (tmp_path / "train.json").write_text(json.dumps(WRITTEN, indent=2))
    folder = TrainFolder(tmp_path)
    record = folder.read()
    assert isinstance(record, TrainRecord) and record.result is not None
    assert record.result.epochs_run == 2 and record.model.params == 1000
    assert record.provenance.argv == ("nas-train", "--arch", "stem8")
    assert json.loads(json.dumps(record.to_document())) == WRITTEN
    assert list(record.to_document()) == list(WRITTEN)  # the same keys in the same order
    folder.record(record)
    assert json.loads((tmp_path / "train.json").read_text()) == WRITTEN


def test_the_batch_size_may_change_but_not_the_recipe(tmp_path: Path) -> None:
    record = TrainRecord.from_document(WRITTEN)
    smaller = copy.deepcopy(WRITTEN["settings"])
    smaller["recipe"]["batch_size"] = 8
    (tmp_path / "train.json").write_text(json.dumps(WRITTEN))
    TrainFolder(tmp_path).check_same(record, TrainRecord.from_document(
        {**WRITTEN, "settings": smaller}).identity())
    longer = copy.deepcopy(WRITTEN["settings"])
    longer["recipe"]["epochs"], longer["seed"] = 3, 1
    with pytest.raises(ConfigError, match="seed was 0, now 1; recipe epochs was 2, now 3; use"):
        TrainFolder(tmp_path).check_same(record, TrainRecord.from_document(
            {**WRITTEN, "settings": longer}).identity())


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "other"}, "is not a nas-train record; move it away"),
    ({"model": None}, "is not a nas-train record (it has no model); move it away"),
    ({"status": "paused"}, "(it has status 'paused', not one of"),
])
def test_a_file_that_is_not_a_record_says_what_it_lacks(tmp_path: Path, change: dict[str, Any],
                                                        message: str) -> None:
    (tmp_path / "train.json").write_text(json.dumps({**WRITTEN, **change}))
    with pytest.raises(ConfigError) as refused:
        TrainFolder(tmp_path).read()
    assert message in str(refused.value)


def test_a_failure_kind_is_written_only_when_there_is_one(tmp_path: Path) -> None:
    failed = copy.deepcopy(WRITTEN)
    failed["result"].update(status="failed", reason="out of memory", failure_kind="oom")
    record = TrainRecord.from_document(failed)
    assert record.result is not None and record.result.failure_kind == "oom"
    assert record.to_document()["result"]["failure_kind"] == "oom"
    assert "failure_kind" not in TrainRecord.from_document(WRITTEN).to_document()["result"]
