"""The folder of a validation (``nas-validate --out``, by default the search's own folder).

A ``nas.run.folder.ResumableFolder`` whose record is the validation's settings
(``nas.validate.record``), kept in ``validation.parquet``'s metadata beside its rows
(``results.validation``): one writer at a time, a command refused before it wrote anything
leaves nothing behind, and a folder holding a validation with other settings is refused
naming every setting that differs.
"""

from __future__ import annotations

import os

from nas.run.folder import ResumableFolder
from nas.run.settings import ConfigError
from nas.validate.record import ValidationSettings
from results.records import RecordError
from results.validation import ValidationError, ValidationTable


class ValidationFolder(ResumableFolder[ValidationSettings]):
    """``--out`` of a validation: its lock, its settings and its rows (:attr:`table`)."""

    holds = "another validation"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, "nas-validate")
        self.table = ValidationTable(self.path)
        """The rows, as read by the last :meth:`read`."""

    def read(self) -> ValidationSettings | None:
        self.table = ValidationTable(self.path)  # read afresh: another writer may have been
        try:
            stored = self.table.settings
        except ValidationError as err:
            raise ConfigError(f"{err}; move it away or use another --out") from None
        if not stored:
            return None
        try:
            return ValidationSettings.from_document(stored)
        except RecordError as err:
            raise ConfigError(f"{self.table.path}: its validation settings {err}; move it "
                              "away or use another --out") from None

    def _write(self, record: ValidationSettings) -> None:
        self.table.set_settings(record.to_document())


__all__ = ["ValidationFolder"]
