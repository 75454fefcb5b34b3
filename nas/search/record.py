"""``run.json``: a search's settings, space, recipe, data, timing and reference, as a record.

:class:`RunRecord` is what a run folder stores twice (``run.json`` and the leaderboard's
``effnas.settings``, see ``nas.search.folder``), written by the one writer
:meth:`RunRecord.to_document`. :meth:`RunRecord.from_document` reads both copies back and
refuses a document that is not a run's settings, saying what it lacks. The space, recipe,
data summary and timing settings are kept as the documents their own types write
(``space_to_dict``, ``Recipe.to_dict``); records written by hand or by the first versions
may lack them (None).

Two identities come from a record: :meth:`RunRecord.identity`, what a continued run must
share with the command (``nas.search.config``'s defining settings), and
:meth:`RunRecord.copy_identity`, what the two stored copies must agree on (that, the run's id
and its reference).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.run.identity import Identity
from nas.search.config import IDENTITY_DEFAULTS, IDENTITY_FIELDS, identity_of
from results.records import RecordError, document, from_document
from search_space.checks import is_number


@dataclass(frozen=True, slots=True)
class Reference:
    """The model that normalizes every candidate's step time and parameters, and its timing."""

    step_time_ms: float
    name: str | None = None
    arch: str | None = None
    params: int | None = None
    timing: dict[str, Any] | None = None
    """The reference's ``StepTiming.to_dict`` (empty for a surrogate run)."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """``run.json`` (see the module docstring)."""

    run_id: str
    config: dict[str, Any]
    """``SearchConfig.to_dict()`` of the command that last ran (or continued) the run."""
    reference: Reference
    space: dict[str, Any] | None = None
    recipe: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    timing: dict[str, Any] | None = None
    """``batch`` and ``resolution`` of the step timing."""

    def setting(self, name: str) -> Any:
        """A defining setting; for one added later than this record, the value it had."""
        return self.config[name] if name in self.config else IDENTITY_DEFAULTS[name]

    def identity(self) -> Identity:
        return identity_of({name: self.setting(name) for name in IDENTITY_FIELDS})

    def copy_identity(self) -> Identity:
        """What two copies of this record must agree on."""
        settings = {"run_id": self.run_id, **self.identity().settings,
                    "reference arch": self.reference.arch,
                    "reference step_time_ms": self.reference.step_time_ms}
        return Identity(settings)

    def to_document(self) -> dict[str, Any]:
        doc = document(self)
        return {key: value for key, value in doc.items() if value is not None}

    @classmethod
    def from_document(cls, doc: object) -> RunRecord:
        """Read a stored copy; :class:`RecordError` says why it is not a run's settings."""
        if not isinstance(doc, Mapping):
            raise RecordError("is not a JSON object")
        if not isinstance(doc.get("run_id"), str) or not doc["run_id"]:
            raise RecordError("has no run_id")
        config = doc.get("config")
        if not isinstance(config, dict):
            raise RecordError("has no config")
        missing = [name for name in IDENTITY_FIELDS
                   if name not in config and name not in IDENTITY_DEFAULTS]
        if missing:
            raise RecordError(f"has no setting {missing[0]!r}")
        reference = doc.get("reference")
        step_ms: Any = reference.get("step_time_ms") if isinstance(reference, dict) else None
        if not is_number(step_ms) or step_ms <= 0:
            raise RecordError("has no reference step time")
        return from_document(cls, doc, reference=from_document(Reference, reference))


__all__ = ["Reference", "RunRecord"]
