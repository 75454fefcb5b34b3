"""``best.json``: a search's best candidate, its metrics, recipe and provenance, as a record.

:class:`BestRecord` is the file, made from the best ``ok`` leaderboard row by
:func:`best_record` and written by the one writer :func:`write_best` (atomically). Its
document: ``schema_version`` (:data:`BEST_SCHEMA_VERSION`), ``arch`` (canonical string),
``arch_hash``, ``spec`` (``codec.to_dict``), ``metrics`` (the row's metric columns),
``recipe``, ``provenance`` (the row's provenance columns plus ``details`` from
``provenance_json``), and for a search's file ``run_id`` and ``reference`` (the model that
normalized the metrics). Every command that takes an architecture accepts the file
(``search_space.resolve.resolve_arch``); :func:`read_best` reads it back and checks that its
``arch`` and ``spec`` agree.

A ``best.json`` is only ever a leaderboard row's: :func:`repair_best` re-derives it when it is
missing, unreadable or names another candidate, and :func:`remove_best` removes one that no
row backs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results.errors import LeaderboardError
from results.records import RecordError, document, from_document, write_json_record
from results.schema import validate_row
from search_space.codec import decode, encode, from_dict
from search_space.errors import SpecError

BEST_FILE = "best.json"
BEST_SCHEMA_VERSION = 1
METRICS: tuple[str, ...] = ("accuracy", "reward", "step_time_ms", "step_time_spread",
                            "step_time_steps", "step_time_norm", "params", "params_norm", "macs")
"""The leaderboard columns ``metrics`` holds."""
PROVENANCE: tuple[str, ...] = (
    "run_id", "trial_id", "number", "strategy", "objective", "seed", "epochs",
    "proxy_resolution", "timing_resolution", "timing_batch", "hardware", "device_name",
    "precision", "torch_version", "node_id", "host", "started_at", "finished_at", "wall_time_s")
"""The leaderboard columns ``provenance`` holds (besides ``details``)."""


@dataclass(frozen=True, slots=True)
class BestRecord:
    """``best.json`` (see the module docstring)."""

    arch: str
    arch_hash: str
    spec: dict[str, Any]
    metrics: dict[str, Any]
    recipe: dict[str, Any]
    provenance: dict[str, Any]
    run_id: str | None = None
    reference: dict[str, Any] | None = None

    def to_document(self) -> dict[str, Any]:
        doc = {"schema_version": BEST_SCHEMA_VERSION, **document(self)}
        return {key: value for key, value in doc.items() if value is not None}


def best_record(row: Mapping[str, Any], recipe: Mapping[str, Any], *,
                run_id: str | None = None,
                reference: Mapping[str, Any] | None = None) -> BestRecord:
    """The record of an ``ok`` leaderboard ``row`` (a dict or a pandas Series, e.g.
    ``leaderboard.best().iloc[0]``) trained with ``recipe``."""
    stored = validate_row(dict(row))
    if stored["status"] != "ok":
        raise LeaderboardError(f"best.json needs an ok row; trial {stored['trial_id']} has "
                               f"status {stored['status']!r}")
    provenance: dict[str, Any] = {k: _json_value(stored[k]) for k in PROVENANCE}
    provenance["details"] = json.loads(stored["provenance_json"] or "{}")
    return BestRecord(arch=stored["arch"], arch_hash=stored["arch_hash"],
                      spec=json.loads(stored["spec_json"]),
                      metrics={k: stored[k] for k in METRICS}, recipe=dict(recipe),
                      provenance=provenance, run_id=run_id,
                      reference=None if reference is None else dict(reference))


def write_best(run_dir: str | os.PathLike[str], record: BestRecord) -> Path:
    """Write ``<run_dir>/best.json`` atomically; returns its path."""
    path = Path(run_dir) / BEST_FILE
    doc = record.to_document()
    try:
        json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise LeaderboardError(f"best.json: not JSON-serialisable: {exc}") from None
    try:
        return write_json_record(path, doc)
    except OSError as exc:
        raise LeaderboardError(f"could not write {path}: {exc}") from None


def read_best(path: str | os.PathLike[str]) -> BestRecord:
    """Read and check a ``best.json`` (or the one inside a run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / BEST_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LeaderboardError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LeaderboardError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise LeaderboardError(f"{path}: expected a JSON object")
    if "schema_version" in doc and doc["schema_version"] != BEST_SCHEMA_VERSION:
        raise LeaderboardError(f"{path}: schema_version {doc['schema_version']!r} not supported; "
                               f"expected {BEST_SCHEMA_VERSION}")
    try:
        if "schema_version" not in doc:
            raise RecordError("has no 'schema_version'")
        record = from_document(BestRecord, doc)
    except RecordError as exc:
        raise LeaderboardError(f"{path}: missing field {str(exc).removeprefix('has no ')}") \
            from None
    try:
        spec = from_dict(record.spec)
        if decode(record.arch) != spec:
            raise LeaderboardError(f"{path}: 'arch' {record.arch!r} and 'spec' "
                                   f"({encode(spec)!r}) disagree")
    except SpecError as exc:
        raise LeaderboardError(f"{path}: {exc}") from None
    return record


def repair_best(run_dir: str | os.PathLike[str], record: BestRecord) -> bool:
    """Rewrite ``<run_dir>/best.json`` as ``record`` unless the file is readable and already
    names its architecture; returns whether it was rewritten."""
    try:
        current: BestRecord | None = read_best(Path(run_dir) / BEST_FILE)
    except LeaderboardError:
        current = None
    if current is not None and current.arch_hash == record.arch_hash:
        return False
    write_best(run_dir, record)
    return True


def remove_best(run_dir: str | os.PathLike[str]) -> bool:
    """Remove ``<run_dir>/best.json`` (no leaderboard row backs it); returns whether there
    was one."""
    try:
        (Path(run_dir) / BEST_FILE).unlink()
    except FileNotFoundError:
        return False
    return True


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


__all__ = ["BEST_FILE", "BEST_SCHEMA_VERSION", "METRICS", "PROVENANCE", "BestRecord",
           "best_record", "read_best", "remove_best", "repair_best", "write_best"]
