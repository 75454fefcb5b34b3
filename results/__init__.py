"""Results of a search: the versioned leaderboard schema, the Parquet leaderboard, best.json,
and the summary table and plots."""

from results.errors import LeaderboardError
from results.pareto import pareto_mask
from results.schema import (
    COLUMNS,
    SCHEMA_VERSION,
    STATUSES,
    Column,
    empty_table,
    schema_markdown,
    validate_row,
)

__all__ = [
    "COLUMNS",
    "Column",
    "LeaderboardError",
    "SCHEMA_VERSION",
    "STATUSES",
    "empty_table",
    "pareto_mask",
    "schema_markdown",
    "validate_row",
]
