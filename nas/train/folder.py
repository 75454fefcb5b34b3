"""The folder of a training run (``nas-train --out``): its files, its lock, its record.

Files: ``train.json`` (the record: what is trained, how, and the result;
``nas.train.record``), ``metrics.parquet`` (one row per epoch), ``checkpoint.pt`` (the state
after the last finished epoch), ``model.pt`` (final and EMA weights), ``curves.png`` and
``.lock``. The folder is a ``nas.run.folder.ResumableFolder``: one writer at a time, and a
command refused before it wrote anything leaves nothing behind. ``train.json`` is written
before the first epoch, so a killed run is found again; the same command continues it from
``checkpoint.pt``, and a folder that holds another training, a search or files it cannot read
is refused.
"""

from __future__ import annotations

import json
import os

from nas.run.folder import ResumableFolder
from nas.run.settings import ConfigError
from nas.train.record import TrainRecord
from proxy_train.checkpoint import TrainState, load_checkpoint
from proxy_train.errors import DataError
from results.records import RecordError, write_json_record

TRAIN_FILE = "train.json"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
_SEARCH_FILES = ("leaderboard.parquet", "run.json")


class TrainFolder(ResumableFolder[TrainRecord]):
    """``--out`` of a training (see the module docstring)."""

    holds = "another training"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, "nas-train")
        self.train_file = self.path / TRAIN_FILE
        self.checkpoint_file = self.path / CHECKPOINT_FILE
        self.model_file = self.path / MODEL_FILE

    def read(self) -> TrainRecord | None:
        for name in _SEARCH_FILES:
            if (self.path / name).exists():
                raise ConfigError(f"--out {self.path} holds a search run ({name}); use another "
                                  "--out for the training")
        if not self.train_file.exists():
            return None
        try:
            doc = json.loads(self.train_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{self.train_file} is not a readable training record ({err}); "
                              "move it away or use another --out") from None
        try:
            return TrainRecord.from_document(doc)
        except RecordError as err:
            what = "" if str(err) == "is not a nas-train record" else f" (it {err})"
            raise ConfigError(f"{self.train_file} is not a nas-train record{what}; move it "
                              "away or use another --out") from None

    def _write(self, record: TrainRecord) -> None:
        write_json_record(self.train_file, record.to_document())

    def checkpoint(self) -> TrainState | None:
        """The state to continue from, or None where no epoch finished yet."""
        if not self.checkpoint_file.exists():
            return None
        try:
            state, _ = load_checkpoint(self.checkpoint_file)
        except DataError as err:
            raise ConfigError(f"{err}; move it away to start the training over") from None
        return state


__all__ = ["CHECKPOINT_FILE", "MODEL_FILE", "TRAIN_FILE", "TrainFolder"]
