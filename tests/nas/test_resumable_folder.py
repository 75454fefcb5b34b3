"""The resumable folder every job writes into: claim, record, resume, and the settings named
when a folder holds another run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nas.run.folder import ResumableFolder
from nas.run.identity import Identity, changes, differences
from nas.run.lock import LOCK_FILE, RunLock, RunLockedError
from nas.run.settings import ConfigError


@dataclass(frozen=True)
class Note:
    settings: dict[str, Any]

    def identity(self) -> Identity:
        return Identity(self.settings)


class NoteFolder(ResumableFolder[Note]):
    holds = "another note"

    def __init__(self, path: Path) -> None:
        super().__init__(path, "nas-note")
        self.file = self.path / "note.json"

    def read(self) -> Note | None:
        return Note(json.loads(self.file.read_text())) if self.file.exists() else None

    def _write(self, record: Note) -> None:
        self.file.write_text(json.dumps(record.settings))


def test_every_differing_setting_is_named_with_both_values() -> None:
    old = Identity({"k": 10, "seed": 0, "epochs": 8, "recipe": {"lr": 0.1, "epochs": 2}})
    new = Identity({"k": 12, "seed": 0, "epochs": 6, "recipe": {"lr": 0.1, "epochs": 3}})
    assert changes(differences(old, new)) == \
        "k was 10, now 12; epochs was 8, now 6; recipe epochs was 2, now 3"
    assert [d.versus() for d in differences(old, new)][:1] == ["k: 10 vs 12"]
    assert differences(old, old) == []
    # Stored JSON gives lists back for tuples: the same setting, not a difference.
    assert differences(Identity({"sizes": [1, 2]}), Identity({"sizes": (1, 2)})) == []


def test_a_job_words_a_setting_and_derived_settings_come_last() -> None:
    worded = Identity({"objective": "train"}, wording={"objective": "a {old} run, not a {new} one"})
    assert changes(differences(Identity({"objective": "surrogate"}), worded)) == \
        "a surrogate run, not a train one"
    old = Identity({"k": 3, "candidates": ["a", "b", "c"]}, derived=("candidates",))
    assert changes(differences(old, Identity({"k": 4, "candidates": ["a", "b", "c", "d"]}))) == \
        "k was 3, now 4"
    assert changes(differences(old, Identity({"k": 3, "candidates": ["a", "b", "d"]}))) == \
        'candidates was ["a", "b", "c"], now ["a", "b", "d"]'
    long = Identity({"candidates": [f"{i:012d}" for i in range(20)]})
    assert len(differences(Identity({}), long)[0].changed()) < 160  # cut short


def test_claim_record_resume(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    folder = NoteFolder(out)
    assert folder.check() is None and not out.exists()  # checking writes nothing
    with folder.claim():
        assert folder.resume(Identity({"k": 3})) is None
        with pytest.raises(RunLockedError):
            RunLock(out, "other").acquire()  # one writer
        folder.record(Note({"k": 3}))
    assert folder.kept and NoteFolder(out).resume(Identity({"k": 3})) == Note({"k": 3})
    with pytest.raises(ConfigError) as refused:
        NoteFolder(out).resume(Identity({"k": 4}))
    assert str(refused.value) == (f"--out {out} holds another note: k was 3, now 4; use "
                                  "another --out or the same settings")


def test_a_command_that_fails_before_it_records_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with pytest.raises(ValueError, match="bad input"), NoteFolder(out).claim():
        raise ValueError("bad input")
    assert list(tmp_path.iterdir()) == []
    kept = NoteFolder(out)
    with pytest.raises(ValueError, match="later"), kept.claim():
        kept.record(Note({"k": 1}))
        raise ValueError("later")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE, "note.json"]
