"""Errors a user can cause in proxy training: bad data, missing hardware, a bad recipe, bad
timing settings, a model that cannot be exported."""

from __future__ import annotations

from search_space.errors import NasError


class DataError(NasError, ValueError):
    """A data source is missing, empty, undecodable or in an unexpected format."""


class HardwareError(NasError, RuntimeError):
    """A requested accelerator or hardware profile is unknown or not present."""


class RecipeError(NasError, ValueError):
    """A training recipe has an unknown field or a value outside its allowed range."""


class TimingError(NasError, ValueError):
    """A step-timing setting (batch, resolution, step counts, budget) is out of range."""


class ExportError(NasError, ValueError):
    """A model cannot be exported (a missing optional package, a failed output check)."""
