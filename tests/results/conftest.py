from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from search_space.codec import encode, spec_hash, to_json
from search_space.sampling import sample
from search_space.space_files import load_space


def make_row(i: int, status: str = "ok", **overrides: Any) -> dict[str, Any]:
    """A complete, realistic leaderboard row for candidate ``i``."""
    spec = sample(load_space("v2b0"), i, num_classes=10)
    ok = status == "ok"
    start = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=i)
    row: dict[str, Any] = {
        "run_id": "run-a", "trial_id": i, "number": i, "arch": encode(spec),
        "arch_hash": spec_hash(spec), "spec_json": to_json(spec), "strategy": "random", "objective": "train",
        "status": status, "failure_reason": None if ok else "out of memory",
        "accuracy": 0.5 + 0.01 * i if ok else None,
        "step_time_ms": 10.0 + (i % 4) if ok else None, "step_time_spread": 0.02 if ok else None,
        "step_time_steps": 20 if ok else None,
        "step_time_norm": (10.0 + (i % 4)) / 12.0 if ok else None,
        "params": 4_000_000 + 100_000 * i, "params_norm": (4_000_000 + 100_000 * i) / 5e6,
        "macs": 390_000_000 + i, "reward": (0.5 + 0.01 * i) * 0.98 if ok else None,
        "epochs": 3, "proxy_resolution": 64, "timing_resolution": 224, "timing_batch": 32,
        "hardware": "cpu", "device_name": "cpu", "precision": "fp32", "torch_version": "2.13.0",
        "provenance_json": json.dumps({"host": "test"}), "seed": 1000 + i,
        "started_at": start, "finished_at": start + dt.timedelta(seconds=42),
        "wall_time_s": 42.0,
    }
    row.update(overrides)
    return row


@pytest.fixture(name="make_row")
def make_row_fixture() -> Any:
    return make_row


@pytest.fixture()
def rows() -> list[dict[str, Any]]:
    return [make_row(0), make_row(1), make_row(2, "failed"), make_row(3), make_row(4, "stopped")]
