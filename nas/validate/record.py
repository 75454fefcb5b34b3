"""A validation's settings, as stored with its rows and in ``validation.json``.

:class:`ValidationSettings` is the record ``validation.parquet``'s metadata holds
(``effnas.validation``, ``results.validation``): the search it validates (``run_id``), the
settings that define the validation (``identity``: ``--k``, ``--seed``, ``--seeds``,
``--long-seeds``, the long training's epochs and recipe, and the proxy recipe validated), the
candidates picked, the whole command (``config``) and the long training's epochs. Its
identity (:meth:`ValidationSettings.identity`) is what a continued validation must share with
the stored one; the candidates follow from the others (and from the search's leaderboard),
so they are named only when nothing else differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.run.identity import Identity
from results.records import RecordError


@dataclass(frozen=True, slots=True)
class ValidationSettings:
    """The settings of one validation (see the module docstring)."""

    run_id: str
    """The validated search's ``run_id``."""
    defining: dict[str, Any]
    """The settings that define the validation (``identity`` in the document)."""
    candidates: tuple[str, ...]
    """The picked candidates' ``arch_hash``, best first."""
    config: dict[str, Any]
    long_epochs: int

    def identity(self) -> Identity:
        return Identity({"run_id": self.run_id, **self.defining,
                         "candidates": list(self.candidates)}, derived=("candidates",))

    def to_document(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "identity": dict(self.defining),
                "candidates": list(self.candidates), "config": dict(self.config),
                "long_epochs": self.long_epochs}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ValidationSettings:
        """Read stored settings; :class:`RecordError` says what they lack."""
        defining, candidates = doc.get("identity"), doc.get("candidates")
        if not isinstance(doc.get("run_id"), str):
            raise RecordError("has no run_id")
        if not isinstance(defining, dict):
            raise RecordError("has no identity")
        if not isinstance(candidates, list):
            raise RecordError("has no candidates")
        return cls(run_id=doc["run_id"], defining=defining,
                   candidates=tuple(str(c) for c in candidates),
                   config=dict(doc.get("config") or {}),
                   long_epochs=int(doc.get("long_epochs") or defining.get("epochs") or 0))


__all__ = ["ValidationSettings"]
