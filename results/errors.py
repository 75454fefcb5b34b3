"""Errors of the results package."""

from __future__ import annotations

from search_space.errors import NasError


class LeaderboardError(NasError):
    """A leaderboard row or file breaks a rule (unknown column, wrong type, unreadable file)."""


class MetricsError(NasError):
    """A training run's metrics file is missing, unreadable or not a metrics table."""
