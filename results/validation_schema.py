"""The columns of ``validation.parquet``: one row per candidate x kind x seed.

``COLUMNS`` is the single source of truth, as ``results.schema`` is the leaderboard's: the
Arrow schema (:func:`arrow_schema`), the column documentation (:func:`schema_markdown`) and
the upgrade path are derived from it. Bump ``SCHEMA_VERSION`` whenever a column is added,
removed, renamed or changes meaning; a reader refuses files of another version, except for
the older versions :data:`UPGRADES` describes exactly (the columns added since, with the value
every row of that version has): those are read as the current version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from results.errors import LeaderboardError
from results.schema import Column
from results.signals import SIGNALS

SCHEMA_VERSION = 2
KINDS: tuple[str, ...] = ("proxy", "long")
SOURCES: tuple[str, ...] = ("search", "run", "reused")

S, I, F = pa.string(), pa.int64(), pa.float64()  # noqa: E741 - a table's types
T = pa.timestamp("us", tz="UTC")

COLUMNS: tuple[Column, ...] = (
    Column("job_key", S, False, "The job: its kind, architecture, seed, recipe and data. A "
                                "validation run again skips every job whose key is here."),
    Column("kind", S, False, "`proxy` (the proxy recipe) or `long` (the long training)."),
    Column("source", S, False, "`search`: the search's own proxy run, copied from its "
                               "leaderboard; `run`: run by this validation; `reused`: copied "
                               "from another validation's file (`--reuse`)."),
    Column("replica", I, False, "0-based index of the run among the candidate's runs of this "
                                "kind."),
    Column("seed", I, False, "Seed of the run's training."),
    Column("arch", S, False, "Canonical architecture string."),
    Column("arch_hash", S, False, "First 12 hex chars of the SHA-256 of `arch`."),
    Column("search_rank", I, False, "The candidate's rank in the search by reward (1: best)."),
    Column("status", S, False, "`ok` or `failed`."),
    Column("failure_reason", S, True, "Why the run failed; null when ok."),
    Column("accuracy", F, True, "Proxy: minival top-1 of the weights the recipe evaluates; "
                                "long: top-1 on `eval_split`."),
    Column("eval_split", S, True, "The split `accuracy` was measured on."),
    Column("eval_images", I, True, "Images in `eval_split`."),
    Column("eval_resolution", I, True, "Image size `accuracy` was measured at."),
    Column("reward", F, True, "The search's reward recomputed with the candidate's step time "
                              "and params: a proxy run's `A` as the search scores it "
                              "(`--reward-accuracy`), a long training's its `accuracy`."),
    Column("interim_epoch", I, True, "Proxy runs: the epoch an ASHA scheduler first compares "
                                     "candidates at."),
    Column("interim_accuracy", F, True, "Proxy runs: the accuracy at `interim_epoch`."),
    Column("interim_reward", F, True, "Proxy runs: the reward at `interim_epoch`."),
    *(Column(s.name, F, True, "Proxy runs: " + s.description) for s in SIGNALS),
    Column("step_time_ms", F, True, "The candidate's step time (copied from the search)."),
    Column("params", I, False, "The candidate's parameters (copied from the search)."),
    Column("macs", I, True, "The candidate's MACs (copied from the search)."),
    Column("epochs", I, True, "Epochs run."),
    Column("resolution", I, True, "Image size of the last training stage."),
    Column("history_json", S, True, "Every epoch as JSON: minival top-1 of the trained and "
                                    "EMA weights and minival loss, learning rate, mean and "
                                    "summed training loss."),
    Column("recipe_json", S, False, "The recipe the job ran, as JSON."),
    Column("device", S, True, "Device the job trained on."),
    Column("host", S, True, "Host name of the machine that ran (or copied) the job."),
    Column("torch_version", S, True, "torch version used."),
    Column("started_at", T, True, "When the job started (UTC)."),
    Column("finished_at", T, True, "When the job finished (UTC)."),
    Column("wall_time_s", F, True, "Wall-clock seconds of the job."),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

UPGRADES: dict[int, dict[str, Any]] = {1: {s.name: None for s in SIGNALS}}
"""For each older version still read: the columns added since, and the value each of its rows
gets (version 1 did not record the ranking signals of ``results.signals``)."""


def arrow_schema(metadata: Mapping[str, str] | None = None) -> pa.Schema:
    """The Arrow schema of ``validation.parquet``, with optional key-value metadata."""
    fields = [pa.field(c.name, c.type, nullable=c.nullable) for c in COLUMNS]
    return pa.schema(fields, metadata=dict(metadata) if metadata else None)


def upgrade(table: pa.Table, version: int) -> pa.Table:
    """``table``, written with schema ``version``, as the current version (the columns added
    since filled with their value for that version, :data:`UPGRADES`). Raises
    :class:`LeaderboardError` for a version it cannot upgrade or columns that do not match."""
    if version == SCHEMA_VERSION and tuple(table.column_names) == COLUMN_NAMES:
        return table
    added = UPGRADES.get(version)
    old_names = tuple(name for name in COLUMN_NAMES if name not in (added or {}))
    if added is None or tuple(table.column_names) != old_names:
        raise LeaderboardError(f"is not a validation file of schema version {SCHEMA_VERSION}")
    columns = [pa.array([added[c.name]] * table.num_rows, c.type) if c.name in added
               else table.column(c.name) for c in COLUMNS]
    return pa.Table.from_arrays(columns, schema=arrow_schema(table.schema.metadata))


def schema_markdown() -> str:
    """The column documentation as a Markdown table, generated from ``COLUMNS``."""
    names = {S: "string", I: "int64", F: "float64", T: "timestamp[us, UTC]"}
    lines = [f"Validation schema version {SCHEMA_VERSION}: one row per candidate x kind x seed.",
             "", "| column | type | nullable | description |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {names.get(c.type, str(c.type))} | "
              f"{'yes' if c.nullable else 'no'} | {c.description} |" for c in COLUMNS]
    return "\n".join(lines) + "\n"


__all__ = ["COLUMNS", "COLUMN_NAMES", "KINDS", "SCHEMA_VERSION", "SOURCES", "UPGRADES",
           "arrow_schema", "schema_markdown", "upgrade"]
