"""``train.json``: what a training trains, how, on what, and its result, as a typed record.

:class:`TrainRecord` is the file: written before the first epoch (``status`` ``running``),
again if the training fails (``failed``) and at the end (``finished``, with its ``result``).
Its document (``results.records.document``) keeps the file's format, ``effnas.train``
version 1, key for key; :meth:`TrainRecord.from_document` reads it back. The recipe, the
progressive schedule, the command's settings and the device are kept as the documents their
own types write (``Recipe.to_dict``, ``TrainConfig.to_dict``, ``describe_device``).

:meth:`TrainRecord.identity` is what a continued training must share with the stored one:
the model, the data, the seed and the recipe, except the recipe fields that change how fast
a training runs, not what it computes per epoch (:data:`RESUMABLE_CHANGES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.run.identity import Identity
from results.records import RecordError, document, from_document, section, written_when_set

FORMAT = "effnas.train"
VERSION = 1
RESUMABLE_CHANGES: tuple[str, ...] = ("batch_size", "eval_batch_size", "cpu_threads")
"""Recipe fields a continued training may change (a smaller batch after running out of
memory, say)."""
STATUSES: tuple[str, ...] = ("running", "failed", "finished")


@dataclass(frozen=True, slots=True)
class TrainedModel:
    name: str
    source: str
    arch: str
    hash: str
    params: int
    macs_eval: int
    """Multiply-adds per image at the eval size."""


@dataclass(frozen=True, slots=True)
class TrainData:
    source: str
    """``--data`` as given."""
    name: str
    resolution: int
    classes: int
    train: int
    minival: int
    test: int | None


@dataclass(frozen=True, slots=True)
class Provenance:
    effnas: str
    host: str
    argv: tuple[str, ...]
    started_at: str
    """When the training first started (UTC, ISO 8601); kept when it continues."""


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    """The result of a training that ended (``result`` in ``train.json``, and in ``model.pt``)."""

    status: str
    reason: str
    epochs_run: int
    stage: int
    image_size: int
    eval_size: int | None
    minival_top1: float | None
    minival_top1_ema: float | None
    test_top1: float | None
    test_top1_ema: float | None
    test_images: int | None
    wall_time_s: float
    failure_kind: str | None = written_when_set()
    """Why a failed training failed (``proxy_train.records.FailureKind``'s value)."""


@dataclass(frozen=True, slots=True)
class TrainRecord:
    """``train.json`` (see the module docstring)."""

    status: str
    settings: dict[str, Any]
    """What defines the training as run: ``arch``, ``data``, ``seed``, ``recipe``."""
    config: dict[str, Any]
    model: TrainedModel
    recipe: dict[str, Any]
    progressive: dict[str, Any] | None
    notes: tuple[str, ...]
    data: TrainData
    hardware: dict[str, Any]
    provenance: Provenance
    result: TrainOutcome | None = None

    def identity(self) -> Identity:
        return identity_of(self.settings)

    def to_document(self) -> dict[str, Any]:
        """The file's content: its format and version, then the record."""
        return {"format": FORMAT, "version": VERSION, **document(self)}

    @classmethod
    def from_document(cls, doc: object) -> TrainRecord:
        """Read a ``train.json`` document; :class:`RecordError` says what it lacks."""
        if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
            raise RecordError("is not a nas-train record")
        if doc.get("version") != VERSION:
            raise RecordError(f"has version {doc.get('version')!r}; this version reads "
                              f"{VERSION}")
        if not isinstance(doc.get("settings"), dict):
            raise RecordError("has no settings")
        if doc.get("status") not in STATUSES:
            raise RecordError(f"has status {doc.get('status')!r}, not one of {list(STATUSES)}")
        result = doc.get("result")
        provenance = section(doc, "provenance")
        return from_document(
            cls, doc, model=from_document(TrainedModel, section(doc, "model")),
            data=from_document(TrainData, section(doc, "data")),
            provenance=from_document(Provenance, provenance,
                                     argv=tuple(provenance.get("argv") or ())),
            notes=tuple(doc.get("notes") or ()),
            result=None if result is None else from_document(TrainOutcome, result))


def identity_of(settings: Mapping[str, Any]) -> Identity:
    """A training's identity from its settings: the recipe without :data:`RESUMABLE_CHANGES`."""
    recipe = {k: v for k, v in dict(settings.get("recipe") or {}).items()
              if k not in RESUMABLE_CHANGES}
    return Identity({**settings, "recipe": recipe})


__all__ = ["FORMAT", "RESUMABLE_CHANGES", "VERSION", "Provenance", "TrainData", "TrainOutcome",
           "TrainRecord", "TrainedModel", "identity_of"]
