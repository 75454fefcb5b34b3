"""An outcome becomes a row in one place; a stored row gives back what a search replays."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys

import pytest

from proxy_train.loop import EpochStats, TrainResult
from proxy_train.timing import StepTiming
from results.rows import Outcome, RunInfo, outcome_row, scored
from results.schema import COLUMN_NAMES, validate_row
from results.signals import SIGNAL_NAMES
from search_space.codec import decode, encode, spec_hash
from search_space.cost import count_macs, count_params

SPEC = decode("stem16-fused_r1_k3_s1_e1_c16-mbconv_r2_k3_s2_e4_c24_se0.25-head64-cls10")
RUN = RunInfo(run_id="r1", strategy="random", hardware="cpu", objective="train", timing_resolution=32,
              timing_batch=4, ref_step_time_ms=20.0, ref_params=40_000)
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)


def _timing(ok: bool = True) -> StepTiming:
    return StepTiming(status="ok" if ok else "failed", reason="" if ok else "out of memory: x",
                      median_ms=10.0 if ok else None, spread=0.03 if ok else None,
                      mean_ms=10.5 if ok else None, steps=25 if ok else 0, warmup_steps=10,
                      peak_memory_bytes=None, images_per_s=400.0 if ok else None,
                      device_name="cpu-model", driver=None, torch_version="2.13.0",
                      batch_size=4, resolution=32, precision="fp32",
                      memory_format="channels_last", time_s=3.0, hardware="cpu")


def _epoch(epoch: int, loss: float, top1: float) -> EpochStats:
    return EpochStats(epoch=epoch, stage=1, resolution=16, randaug_magnitude=0.0,
                      mixup_alpha=0.0, dropout=0.0, lr=0.1, train_loss=loss, minival_top1=top1,
                      minival_top1_ema=None, images_per_s=100.0, epoch_time_s=1.0)


def _training(status: str = "ok", reason: str = "") -> TrainResult:
    return TrainResult(status=status, reason=reason,
                       accuracy=None if status == "failed" else 0.6,
                       epochs_run=2, steps_run=10, wall_time_s=5.0,
                       seed=7, resolution=16, device="cpu", precision="fp32", params=1,
                       history=(_epoch(1, 2.0, 0.5), _epoch(2, 1.5, 0.6)))


def _outcome(**fields: object) -> Outcome:
    base = dict(number=3, spec=SPEC, seed=7, started_at=T0,
                finished_at=T0 + dt.timedelta(seconds=9), wall_time_s=9.0)
    return Outcome(**{**base, **fields})  # type: ignore[arg-type]


def test_ok_outcome_row() -> None:
    row = outcome_row(_outcome(timing=_timing(), training=_training(), reward=0.55), RUN, 4)
    assert set(row) == set(COLUMN_NAMES) - {"pareto", "schema_version"}
    stored = validate_row(row)
    assert (stored["status"], stored["failure_reason"]) == ("ok", None)
    assert (stored["trial_id"], stored["number"], stored["seed"]) == (4, 3, 7)
    assert stored["arch"] == encode(SPEC) and stored["arch_hash"] == spec_hash(SPEC)
    assert stored["params"] == count_params(SPEC)
    assert stored["params_norm"] == pytest.approx(count_params(SPEC) / 40_000)
    assert stored["macs"] == count_macs(SPEC, 32)
    assert (stored["accuracy"], stored["reward"]) == (0.6, 0.55)
    assert (stored["step_time_ms"], stored["step_time_norm"]) == (10.0, 0.5)
    assert (stored["step_time_spread"], stored["step_time_steps"]) == (0.03, 25)
    assert (stored["epochs"], stored["proxy_resolution"]) == (2, 16)
    assert (stored["device_name"], stored["precision"], stored["torch_version"]) == \
        ("cpu-model", "fp32", "2.13.0")
    assert stored["started_at"] == T0  # microseconds kept
    details = json.loads(stored["provenance_json"])
    assert details["timing"]["median_ms"] == 10.0
    assert details["training"]["accuracy_curve"] == [0.5, 0.6]


@pytest.mark.parametrize(("fields", "reason"), [
    ({"timing": None}, "never timed"),
    ({"timing": _timing(ok=False)}, "step timing: out of memory: x"),
    ({"timing": _timing(), "training": _training("failed", "loss became nan at step 3")},
     "loss became nan at step 3"),
    ({"timing": _timing(), "training": _training(), "failure": "worker died"}, "worker died"),
])
def test_failed_outcomes(fields: dict, reason: str) -> None:
    outcome = _outcome(**fields, reward=0.5)
    assert (outcome.status, outcome.reason) == ("failed", reason)
    row = validate_row(outcome_row(outcome, RUN, 0))
    assert (row["status"], row["failure_reason"]) == ("failed", reason)
    assert row["reward"] is None and row["accuracy"] is None
    assert row["params"] == count_params(SPEC)  # known without running anything
    if not (fields.get("timing") and fields["timing"].ok):
        assert row["step_time_ms"] is None and row["step_time_norm"] is None


def test_stopped_outcome_keeps_its_partial_reward() -> None:
    training = dataclasses.replace(_training("stopped", "stopped early after epoch 1"),
                                   epochs_run=1)
    row = validate_row(outcome_row(_outcome(timing=_timing(), training=training, reward=0.4),
                                   RUN, 0))
    assert (row["status"], row["failure_reason"], row["epochs"]) == \
        ("stopped", "stopped early after epoch 1", 1)
    assert row["reward"] == 0.4


def test_the_last_epochs_signals_are_columns_and_every_epoch_is_in_the_provenance() -> None:
    history = (dataclasses.replace(_epoch(1, 2.0, 0.5), minival_loss=1.9, train_loss_sum=20.0),
               dataclasses.replace(_epoch(2, 1.5, 0.6), minival_top1_ema=0.65,
                                   minival_loss=1.4, train_loss_sum=15.0))
    training = dataclasses.replace(_training(), history=history, meco=3.25)
    row = validate_row(outcome_row(_outcome(timing=_timing(), training=training, reward=0.5),
                                   RUN, 0))
    assert [row[name] for name in SIGNAL_NAMES] == [0.6, 0.65, 1.4, 15.0, 3.25]
    details = json.loads(row["provenance_json"])["training"]
    assert [e["train_loss_sum"] for e in details["history"]] == [20.0, 15.0]  # TSE-E from here
    assert [e["minival_loss"] for e in details["history"]] == [1.9, 1.4]
    assert details["meco"] == 3.25
    failed = dataclasses.replace(training, status="failed", reason="loss became nan at step 3")
    row = validate_row(outcome_row(_outcome(timing=_timing(), training=failed), RUN, 0))
    assert all(row[name] is None for name in SIGNAL_NAMES)
    surrogate = dataclasses.replace(RUN, objective="surrogate")
    row = validate_row(outcome_row(_outcome(timing=_timing(), training=training, reward=0.5),
                                   surrogate, 0))
    assert all(row[name] is None for name in SIGNAL_NAMES)  # a surrogate measures nothing


def test_scored_view_of_stored_rows() -> None:
    ok = validate_row(outcome_row(_outcome(timing=_timing(), training=_training(), reward=0.55),
                                  RUN, 0))
    view = scored(ok)
    assert (view.number, view.status, view.reward) == (3, "ok", 0.55)
    assert view.objectives == (0.6, 10.0, float(count_params(SPEC)))
    failed = scored(validate_row(outcome_row(_outcome(failure="lost"), RUN, 1)))
    assert (failed.status, failed.reward, failed.objectives) == ("failed", None, None)
    assert scored({**ok, "reward": float("nan")}).reward is None


def test_the_results_package_imports_without_torch() -> None:
    # Rows are made from torch-free records: reading results needs no torch.
    code = ("import sys, results.rows, results.schema, results.leaderboard; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
