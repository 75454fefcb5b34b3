"""Errors a user of the scaling tools can cause."""

from __future__ import annotations

from search_space.errors import NasError


class ScalingError(NasError, ValueError):
    """A scaling request breaks a rule: unknown target, impossible budget, bad size cap, ..."""
