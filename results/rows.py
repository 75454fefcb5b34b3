"""From an evaluated candidate to a leaderboard row, and back to what a search needs of a row.

:class:`Outcome` is what evaluating one candidate produced: its step timing, its training, or
the failure that stopped it before either, as typed, frozen data. :func:`outcome_row` is the
one place that turns it into a row and so the one place that names leaderboard columns
(``results.schema`` defines them); :func:`scored` reads back, from a stored row, the few
values a search replays into its strategy.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy_train.records import StepTiming, TrainResult
from results.signals import epoch_record, final_signals
from search_space.codec import encode, spec_hash, to_json
from search_space.cost import count_macs, count_params
from search_space.spec import ArchSpec


@dataclass(frozen=True, slots=True)
class Outcome:
    """What evaluating one candidate produced.

    ``timing`` is None when the candidate was never timed, ``training`` when it was never
    trained (its timing failed, or evaluation stopped before). ``failure`` is a reason that
    belongs to neither (a lost worker, an error in the evaluation code); it makes the
    outcome failed whatever else it holds.
    """

    number: int
    spec: ArchSpec
    seed: int
    started_at: dt.datetime
    finished_at: dt.datetime
    wall_time_s: float
    timing: StepTiming | None = None
    training: TrainResult | None = None
    failure: str | None = None
    reward: float | None = None
    """``A * S^w * P^v``; None unless the candidate trained without failing."""
    node: Mapping[str, Any] | None = None
    """Where it ran (``host``, and on Ray ``node_id`` and ``ip``), if known."""

    @property
    def status(self) -> str:
        if self.failure is not None or self.timing is None or not self.timing.ok \
                or self.training is None:
            return "failed"
        return self.training.status

    @property
    def reason(self) -> str | None:
        if self.failure is not None:
            return self.failure
        if self.timing is None:
            return "never timed"
        if not self.timing.ok:
            return f"step timing: {self.timing.reason}"
        if self.training is None:
            return "never trained"
        return self.training.reason or None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The columns every row of one run shares, and the reference that normalizes it."""

    run_id: str
    strategy: str
    hardware: str
    objective: str
    timing_resolution: int
    timing_batch: int
    ref_step_time_ms: float
    ref_params: int


def outcome_row(outcome: Outcome, run: RunInfo, trial_id: int) -> dict[str, Any]:
    """The leaderboard row of ``outcome`` (validated when the leaderboard stores it)."""
    spec, timing, training = outcome.spec, outcome.timing, outcome.training
    status = outcome.status
    params = count_params(spec)
    step_ms = timing.median_ms if timing is not None and timing.ok else None
    trained = training if status != "failed" else None
    # A surrogate run measures nothing: its rows leave the measurement columns empty.
    measured = run.objective == "train"
    timing_kept, training_kept = (timing, training) if measured else (None, None)
    node = dict(outcome.node or {})
    provenance = _provenance(outcome, measured)
    return {
        "run_id": run.run_id,
        "trial_id": trial_id,
        "number": outcome.number,
        "arch": encode(spec),
        "arch_hash": spec_hash(spec),
        "spec_json": to_json(spec),
        "strategy": run.strategy,
        "objective": run.objective,
        "status": status,
        "failure_reason": outcome.reason if status != "ok" else None,
        "accuracy": trained.accuracy if trained is not None else None,
        **final_signals(trained if measured else None),
        "step_time_ms": step_ms,
        "step_time_spread": timing_kept.spread if step_ms is not None and timing_kept else None,
        "step_time_steps": timing_kept.steps if step_ms is not None and timing_kept else None,
        "step_time_norm": step_ms / run.ref_step_time_ms if step_ms is not None else None,
        "params": params,
        "params_norm": params / run.ref_params,
        "macs": count_macs(spec, run.timing_resolution),
        "reward": outcome.reward if status != "failed" else None,
        "epochs": training_kept.epochs_run if training_kept is not None else None,
        "proxy_resolution": training_kept.resolution if training_kept is not None else None,
        "timing_resolution": run.timing_resolution,
        "timing_batch": run.timing_batch,
        "hardware": run.hardware,
        "device_name": timing_kept.device_name if timing_kept is not None else None,
        "precision": timing_kept.precision if timing_kept is not None else None,
        "torch_version": timing_kept.torch_version if timing_kept is not None else None,
        "node_id": node.get("node_id"),
        "host": node.get("host"),
        "provenance_json": json.dumps(provenance, sort_keys=True, default=str),
        "seed": outcome.seed,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "wall_time_s": outcome.wall_time_s,
    }


def _provenance(outcome: Outcome, measured: bool) -> dict[str, Any]:
    """What ``provenance_json`` holds: the step timing, the training (policy, curves, every
    epoch's record and the MeCo score) and the node; a surrogate's description instead."""
    timing, training = outcome.timing, outcome.training
    provenance: dict[str, Any] = {}
    if not measured:
        provenance["surrogate"] = training.policy if training is not None else {}
    elif timing is not None:
        provenance["timing"] = timing.to_dict()
    if measured and training is not None:
        provenance["training"] = {"policy": training.policy, "device": training.device,
                                  "loss_curve": list(training.loss_curve),
                                  "accuracy_curve": list(training.accuracy_curve),
                                  "history": [epoch_record(e) for e in training.history],
                                  "meco": training.meco}
    if outcome.node:
        provenance["node"] = dict(outcome.node)
    return provenance


@dataclass(frozen=True, slots=True)
class Scored:
    """What a search replays of a stored row: identity, status and the scores."""

    number: int
    arch: str
    arch_hash: str
    status: str
    reward: float | None
    """None for failed rows and rows without a finite reward."""
    objectives: tuple[float, float, float] | None
    """``(accuracy, step time ms, params)`` when the row has a reward."""


def scored(row: Mapping[str, Any]) -> Scored:
    """The :class:`Scored` view of a leaderboard row (a dict or a pandas row)."""
    reward = _finite(row.get("reward")) if row["status"] != "failed" else None
    objectives = None
    if reward is not None:
        objectives = (float(row["accuracy"]), float(row["step_time_ms"]), float(row["params"]))
    return Scored(number=int(row["number"]), arch=str(row["arch"]),
                  arch_hash=str(row["arch_hash"]), status=str(row["status"]), reward=reward,
                  objectives=objectives)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


__all__ = ["Outcome", "RunInfo", "Scored", "outcome_row", "scored"]
