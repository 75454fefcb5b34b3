"""The one exception hierarchy for errors a user can cause.

Every message names the offending value and the rule it broke, so that a command-line
tool can print it as one line and exit non-zero.
"""

from __future__ import annotations


class NasError(Exception):
    """Base of every error caused by user input (a spec, a space, a file, an argument)."""


class SpecError(NasError, ValueError):
    """An architecture spec, string or JSON document breaks a rule."""


class SpaceError(NasError, ValueError):
    """A search space definition, or a spec checked against a space, breaks a rule."""


class ConstraintError(NasError, ValueError):
    """A spec exceeds a cost constraint (parameters, MACs)."""
