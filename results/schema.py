"""The leaderboard schema: one row per candidate, the same columns whatever was sampled.

``COLUMNS`` is the single source of truth: the Parquet schema (:func:`arrow_schema`), row
validation (:func:`validate_row`) and the column documentation (:func:`schema_markdown`) are
all derived from it. Bump ``SCHEMA_VERSION`` whenever a column is added, removed, renamed or
changes meaning; a reader refuses files of another version instead of guessing, except for
the older versions :data:`UPGRADES` describes exactly (the columns added since, with the value
every row of that version has): those are read as the current version.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from results.errors import LeaderboardError
from results.signals import SIGNALS

SCHEMA_VERSION = 3
STATUSES: tuple[str, ...] = ("ok", "failed", "stopped")
_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class Column:
    """One leaderboard column: name, Arrow type, whether it may be null, and its meaning."""

    name: str
    type: pa.DataType
    nullable: bool
    description: str


def _c(name: str, type_: pa.DataType, nullable: bool, description: str) -> Column:
    return Column(name, type_, nullable, description)


S, I, F, B = pa.string(), pa.int64(), pa.float64(), pa.bool_()  # noqa: E741 - a table's types

COLUMNS: tuple[Column, ...] = (
    _c("run_id", S, False, "The run: its UTC start time, ISO 8601 with microseconds."),
    _c("trial_id", I, False, "0-based index of the row in the run, in completion order."),
    _c("number", I, False, "Proposal number given by the strategy (ask order)."),
    _c("arch", S, False, "Canonical architecture string (`search_space.codec.encode`)."),
    _c("arch_hash", S, False, "First 12 hex chars of the SHA-256 of `arch`."),
    _c("spec_json", S, False, "The spec as JSON (`search_space.codec.to_json`)."),
    _c("strategy", S, False, "Search strategy that proposed the candidate."),
    _c("objective", S, False, "`train` (proxy-trained and timed) or `surrogate` "
                              "(`nas.search.surrogate`: a deterministic function of the spec; nothing "
                              "trained or timed)."),
    _c("status", S, False, "`ok`, `failed` or `stopped` (early-stopped)."),
    _c("failure_reason", S, True, "Why the candidate failed or stopped; null when ok."),
    _c("accuracy", F, True, "Proxy-training top-1 accuracy on the minival split, in [0, 1]."),
    *(_c(s.name, F, True, s.description) for s in SIGNALS),
    _c("step_time_ms", F, True, "Median training step time in milliseconds."),
    _c("step_time_spread", F, True, "Relative spread of step times: interquartile range / median."),
    _c("step_time_steps", I, True, "Number of timed steps."),
    _c("step_time_norm", F, True, "S: step time divided by the reference architecture's."),
    _c("params", I, False, "Trainable parameters (analytic count from the spec)."),
    _c("params_norm", F, True, "P: params divided by the reference architecture's."),
    _c("macs", I, True, "Multiply-adds per image at `timing_resolution`."),
    _c("reward", F, True, "A * S^w * P^v, A as `--reward-accuracy` says (`likelihood`: "
                          "exp(-minival_loss); `top1`: `accuracy`); null when the candidate "
                          "did not finish."),
    _c("epochs", I, True, "Proxy-training epochs actually run."),
    _c("proxy_resolution", I, True, "Image size used for proxy training."),
    _c("timing_resolution", I, True, "Image size used for step timing."),
    _c("timing_batch", I, True, "Batch size used for step timing."),
    _c("hardware", S, True, "Hardware profile name (`--hardware`)."),
    _c("device_name", S, True, "Device the candidate was timed on, as reported by torch."),
    _c("precision", S, True, "Numeric precision of timing and training (e.g. `bf16`)."),
    _c("torch_version", S, True, "torch version used."),
    _c("node_id", S, True, "Ray node id of the node that evaluated the candidate (or lost it); "
                           "null under `--executor inline`."),
    _c("host", S, True, "Host name of the machine that evaluated the candidate."),
    _c("provenance_json", S, True, "Further provenance as JSON: `timing` (the step timing "
                                   "with its device, driver and step policy), `training` "
                                   "(policy, curves, `history`: every epoch's learning rate, "
                                   "mean and summed training loss, minival top-1 and loss; "
                                   "`meco`), `node` (where it ran: node id, host, IP "
                                   "address)."),
    _c("seed", I, True, "Seed of the candidate's proxy training."),
    _c("started_at", _TIMESTAMP, True, "When the trial started (UTC)."),
    _c("finished_at", _TIMESTAMP, True, "When the trial finished (UTC)."),
    _c("wall_time_s", F, True, "Wall-clock seconds of the whole trial."),
    _c("pareto", B, False, "On the non-dominated front (max accuracy, min step time, min "
                           "params) among ok rows."),
    _c("schema_version", I, False, f"Leaderboard schema version ({SCHEMA_VERSION})."),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
OBJECTIVES: tuple[str, ...] = ("train", "surrogate")

_SIGNALS_UNKNOWN: dict[str, Any] = {s.name: None for s in SIGNALS}
UPGRADES: dict[int, dict[str, Any]] = {
    1: {"objective": "train", "node_id": None, "host": None, **_SIGNALS_UNKNOWN},
    2: dict(_SIGNALS_UNKNOWN),
}
"""For each older version still read: the columns added since, and the value each of its rows
gets (version 1 knew only trained candidates, and did not record the node; versions 1 and 2
did not record the ranking signals of ``results.signals``)."""

_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
_JSON_COLUMNS = frozenset({"spec_json", "provenance_json"})
# Required columns with a natural default, so a caller need not fill them.
_DEFAULTS: dict[str, Any] = {"pareto": False, "schema_version": SCHEMA_VERSION}


def upgrade(table: pa.Table, version: int) -> pa.Table:
    """``table``, written with schema ``version``, as the current version: the columns added
    since filled with their value for that version (see :data:`UPGRADES`). Raises
    :class:`LeaderboardError` for a version it cannot upgrade or columns that do not match."""
    added = UPGRADES.get(version)
    old_names = tuple(name for name in COLUMN_NAMES if name not in (added or {}))
    if added is None or tuple(table.column_names) != old_names:
        raise LeaderboardError(f"does not have the leaderboard columns of schema version "
                               f"{version}")
    columns = []
    for col in COLUMNS:
        if col.name == "schema_version":
            columns.append(pa.array([SCHEMA_VERSION] * table.num_rows, I))
        elif col.name in added:
            columns.append(pa.array([added[col.name]] * table.num_rows, col.type))
        else:
            columns.append(table.column(col.name))
    return pa.Table.from_arrays(columns, schema=arrow_schema(table.schema.metadata))


def upgrade_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row (a dict) of an older version that :data:`UPGRADES` describes, as the
    current version (other rows unchanged; :func:`validate_row` checks them)."""
    version = row.get("schema_version")
    added = UPGRADES.get(version) if isinstance(version, int) else None
    if added is None:
        return dict(row)
    return {**added, **row, "schema_version": SCHEMA_VERSION}


def arrow_schema(metadata: Mapping[str, str] | None = None) -> pa.Schema:
    """The Arrow schema of the leaderboard, with optional key-value metadata."""
    fields = [pa.field(c.name, c.type, nullable=c.nullable) for c in COLUMNS]
    return pa.schema(fields, metadata=dict(metadata) if metadata else None)


def empty_table() -> pa.Table:
    """A leaderboard table with every column and no rows."""
    return arrow_schema().empty_table()


def validate_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Check one row against the schema and return it normalised, in column order.

    Missing nullable columns become ``None``; ``pareto`` defaults to False and
    ``schema_version`` to ``SCHEMA_VERSION``. Integers may be any integral number (not bool),
    floats any real number, timestamps a ``datetime`` (naive means UTC) or an ISO-8601
    string, and the ``*_json`` columns a JSON string or a JSON-able dict. Raises
    :class:`LeaderboardError` naming the column for an unknown column, a missing required
    one, or a value of the wrong type.
    """
    if not isinstance(row, Mapping):
        raise LeaderboardError(f"a leaderboard row must be a mapping, got {type(row).__name__}")
    unknown = [k for k in row if k not in _BY_NAME]
    if unknown:
        raise LeaderboardError(f"unknown column {unknown[0]!r}; expected columns: "
                               f"{', '.join(COLUMN_NAMES)}")
    out: dict[str, Any] = {}
    for col in COLUMNS:
        value = row.get(col.name, _DEFAULTS.get(col.name))
        value = _normalise(col, value)
        if value is None and not col.nullable:
            raise LeaderboardError(f"column {col.name!r}: a value is required")
        out[col.name] = value
    if out["status"] not in STATUSES:
        raise LeaderboardError(f"column 'status': {out['status']!r} not in {STATUSES}")
    if out["objective"] not in OBJECTIVES:
        raise LeaderboardError(f"column 'objective': {out['objective']!r} not in {OBJECTIVES}")
    if out["schema_version"] != SCHEMA_VERSION:
        raise LeaderboardError(f"column 'schema_version': {out['schema_version']} != "
                               f"{SCHEMA_VERSION}")
    return out


def _normalise(col: Column, value: Any) -> Any:
    # pandas writes missing values as NaN, NA or NaT.
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) \
            and math.isnan(value):
        if col.nullable:
            return None
        raise _type_error(col, value, "a value (not NaN)")
    kind = col.type
    if kind == I:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise _type_error(col, value, "an integer")
        return int(value)
    if kind == F:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _type_error(col, value, "a number")
        return float(value)
    if kind == B:
        if not isinstance(value, bool) and type(value).__name__ not in ("bool", "bool_"):
            raise _type_error(col, value, "true or false")
        return bool(value)
    if kind == _TIMESTAMP:
        return _timestamp(col, value)
    if col.name in _JSON_COLUMNS:
        return _json_text(col, value)
    if not isinstance(value, str):
        raise _type_error(col, value, "a string")
    return value


def _timestamp(col: Column, value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _type_error(col, value, "an ISO-8601 timestamp") from None
    if not isinstance(value, dt.datetime):
        raise _type_error(col, value, "a datetime")
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _json_text(col: Column, value: Any) -> str:
    if isinstance(value, Mapping):
        try:
            return json.dumps(value, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise LeaderboardError(f"column {col.name!r}: not JSON-serialisable: {exc}") from None
    if not isinstance(value, str):
        raise _type_error(col, value, "a JSON string or a dict")
    try:
        json.loads(value)
    except json.JSONDecodeError as exc:
        raise LeaderboardError(f"column {col.name!r}: invalid JSON: {exc.msg}") from None
    return value


def _type_error(col: Column, value: Any, expected: str) -> LeaderboardError:
    return LeaderboardError(f"column {col.name!r}: {value!r} ({type(value).__name__}) must be "
                            f"{expected}")


def schema_markdown() -> str:
    """The column documentation as a Markdown table, generated from ``COLUMNS``."""
    lines = [
        f"Leaderboard schema version {SCHEMA_VERSION}: one row per candidate.",
        "",
        "| column | type | nullable | description |",
        "|---|---|---|---|",
    ]
    for col in COLUMNS:
        lines.append(f"| `{col.name}` | {_type_name(col.type)} | "
                     f"{'yes' if col.nullable else 'no'} | {col.description} |")
    return "\n".join(lines) + "\n"


def _type_name(type_: pa.DataType) -> str:
    if type_ == _TIMESTAMP:
        return "timestamp[us, UTC]"
    return {S: "string", I: "int64", F: "float64", B: "bool"}.get(type_, str(type_))
