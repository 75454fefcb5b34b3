"""The folder of a training run (``nas-train --out``): its files, its lock, its record.

Files: ``train.json`` (what is trained, how, and the result), ``metrics.parquet`` (one row per
epoch), ``checkpoint.pt`` (the state after the last finished epoch), ``model.pt`` (final and
EMA weights), ``curves.png`` and ``.lock``. The folder is claimed like a search's
(``nas.run.claim``): one writer at a time, and a command refused before it wrote anything leaves
nothing behind. ``train.json`` is written before the first epoch, so a killed run is found
again; the same command continues it from ``checkpoint.pt``, and a folder that holds another
training, a search or files it cannot read is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nas.run.claim import FolderClaim
from nas.run.settings import ConfigError, check_out
from proxy_train.checkpoint import TrainState, load_checkpoint
from proxy_train.errors import DataError
from proxy_train.files import atomic_write

TRAIN_FILE = "train.json"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
FORMAT = "effnas.train"
VERSION = 1
_SEARCH_FILES = ("leaderboard.parquet", "run.json")
# Recipe fields a continued training may change: they change how fast it runs, not what it
# computes per epoch (a smaller batch after running out of memory, say).
RESUMABLE_CHANGES: tuple[str, ...] = ("batch_size", "eval_batch_size", "cpu_threads")


class TrainFolder:
    """``--out`` of a training (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.train_file = self.path / TRAIN_FILE
        self.checkpoint_file = self.path / CHECKPOINT_FILE
        self.model_file = self.path / MODEL_FILE
        self._claim = FolderClaim(self.path, "nas-train")

    def check(self) -> dict[str, Any] | None:
        """Before any work, without the lock: ``--out`` is usable, free, not a search, and its
        record (if any) readable. Returns the stored record."""
        check_out(self.path)
        for name in _SEARCH_FILES:
            if (self.path / name).exists():
                raise ConfigError(f"--out {self.path} holds a search run ({name}); use another "
                                  "--out for the training")
        return self.stored()

    def claim(self) -> Any:
        """Create (if needed) and lock the folder for the block (``FolderClaim.hold``)."""
        return self._claim.hold()

    def stored(self) -> dict[str, Any] | None:
        if not self.train_file.exists():
            return None
        try:
            record = json.loads(self.train_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{self.train_file} is not a readable training record ({err}); "
                              "move it away or use another --out") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT \
                or not isinstance(record.get("settings"), dict):
            raise ConfigError(f"{self.train_file} is not a nas-train record; move it away or "
                              "use another --out")
        return record

    def check_same(self, stored: dict[str, Any], identity: dict[str, Any]) -> None:
        """Refuse to continue a training whose defining settings differ."""
        difference = _difference(stored["settings"], identity)
        if difference:
            raise ConfigError(f"--out {self.path} holds another training: {difference}; use "
                              "another --out or the same settings")

    def write_record(self, record: dict[str, Any]) -> None:
        data = json.dumps({"format": FORMAT, "version": VERSION, **record}, indent=2,
                          default=str).encode()
        atomic_write(self.train_file, lambda handle: handle.write(data))
        self._claim.keep()

    def checkpoint(self) -> TrainState | None:
        """The state to continue from, or None where no epoch finished yet."""
        if not self.checkpoint_file.exists():
            return None
        try:
            state, _ = load_checkpoint(self.checkpoint_file)
        except DataError as err:
            raise ConfigError(f"{err}; move it away to start the training over") from None
        return state


def identity_of(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` without the recipe fields a continued training may change."""
    recipe = {k: v for k, v in settings["recipe"].items() if k not in RESUMABLE_CHANGES}
    return {**settings, "recipe": recipe}


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    a, b = (identity_of(json.loads(json.dumps(x, default=str))) for x in (old, new))
    for key in sorted(set(a) | set(b)):
        if key == "recipe":
            continue
        if a.get(key) != b.get(key):
            return f"{key} was {a.get(key)!r}, now {b.get(key)!r}"
    ra, rb = a.get("recipe", {}), b.get("recipe", {})
    for key in sorted(set(ra) | set(rb)):
        if ra.get(key) != rb.get(key):
            return f"recipe {key} was {_short(ra.get(key))}, now {_short(rb.get(key))}"
    return None


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


__all__ = ["CHECKPOINT_FILE", "MODEL_FILE", "RESUMABLE_CHANGES", "TRAIN_FILE", "TrainFolder",
           "identity_of"]
