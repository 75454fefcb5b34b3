"""``best.json``: made from the best leaderboard row, written once, read back as it was written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from results.best import BestRecord, best_record, read_best, repair_best, write_best
from results.errors import LeaderboardError
from results.leaderboard import Leaderboard
from search_space.codec import decode, from_dict
from search_space.resolve import resolve_arch


def test_best_json_round_trip(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    board = Leaderboard(tmp_path)
    board.extend(rows)
    best = board.best().iloc[0]  # a pandas Series, as the driver gets it
    record = best_record(best, {"epochs": 3, "lr": 0.01}, run_id="r1",
                         reference={"arch": "efficientnet-b4"})
    path = write_best(tmp_path, record)
    assert path == tmp_path / "best.json"
    assert read_best(tmp_path) == read_best(path) == record
    assert record.arch == rows[3]["arch"] and record.arch_hash == rows[3]["arch_hash"]
    assert from_dict(record.spec) == decode(record.arch)
    assert record.metrics["reward"] == rows[3]["reward"]
    assert record.metrics["params"] == rows[3]["params"]
    assert record.provenance["trial_id"] == 3
    assert record.provenance["details"] == {"host": "test"}
    assert record.provenance["started_at"] == "2024-05-01T12:03:00+00:00"
    doc = json.loads(path.read_text())
    assert list(doc) == ["schema_version", "arch", "arch_hash", "spec", "metrics", "recipe",
                         "provenance", "run_id", "reference"]  # the format of version 1
    assert doc["schema_version"] == 1 and doc["reference"] == {"arch": "efficientnet-b4"}
    assert resolve_arch(str(path)) == decode(rows[3]["arch"])


def test_a_file_written_before_the_record_is_read(tmp_path: Path,
                                                  rows: list[dict[str, Any]]) -> None:
    written = {"schema_version": 1, "arch": rows[0]["arch"], "arch_hash": rows[0]["arch_hash"],
               "spec": json.loads(rows[0]["spec_json"]), "metrics": {"reward": 0.5},
               "recipe": {}, "provenance": {"trial_id": 0}, "run_id": "r0",
               "reference": {"name": "efficientnetv2-b0", "step_time_ms": 3.0}}
    (tmp_path / "best.json").write_text(json.dumps(written))
    record = read_best(tmp_path)
    assert record.to_document() == written


def test_best_json_rules(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    with pytest.raises(LeaderboardError, match="best.json needs an ok row; trial 2"):
        best_record(rows[2], {})
    path = write_best(tmp_path, best_record(rows[0], {}))
    doc = json.loads(path.read_text())
    assert "run_id" not in doc and "reference" not in doc
    doc["arch"] = rows[1]["arch"]
    path.write_text(json.dumps(doc))
    with pytest.raises(LeaderboardError, match="disagree"):
        read_best(path)
    del doc["metrics"]
    path.write_text(json.dumps(doc))
    with pytest.raises(LeaderboardError, match="missing field 'metrics'"):
        read_best(path)
    path.write_text(json.dumps({**doc, "schema_version": 2}))
    with pytest.raises(LeaderboardError, match="schema_version 2 not supported"):
        read_best(path)
    path.write_text("{")
    with pytest.raises(LeaderboardError, match="not valid JSON"):
        read_best(path)


def test_repair_rewrites_only_a_file_that_names_another_candidate(
        tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    first, other = best_record(rows[0], {}), best_record(rows[1], {})
    assert repair_best(tmp_path, first)  # missing
    assert not repair_best(tmp_path, first)
    assert repair_best(tmp_path, other)
    assert read_best(tmp_path) == other
    assert isinstance(read_best(tmp_path), BestRecord)
