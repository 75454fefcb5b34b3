"""The leaderboard's append-only log: rows recorded but not yet in the Parquet file.

``<run_dir>/leaderboard.pending.jsonl`` holds one JSON line per row, ``{"index": i, "row":
{...}}``, where ``i`` is the row's position in the leaderboard. Appending a row writes one line
and fsyncs it, a cost that does not grow with the number of rows, so a row is durable the
moment it is recorded; the Parquet file is rewritten from memory only now and then
(``results.leaderboard``) and the log emptied once the file holds its rows.

Reading tolerates what a crash can leave: a last line cut short is ignored (the next writer
cuts it off before appending), and lines whose rows the Parquet file already holds (a crash
between rewriting the file and emptying the log) are skipped by their index. Any other line
that cannot be read is refused, naming the file and the line (what to do about it is the
reader's to say: a search asks to move it away or use another ``--out``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from results.errors import LeaderboardError

PENDING_FILE = "leaderboard.pending.jsonl"


class PendingLog:
    """The log of one leaderboard (see the module docstring). One writer at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / PENDING_FILE
        self._complete_size: int | None = None
        """Bytes up to the end of the last complete line, once read."""

    def read(self, start: int) -> list[dict[str, Any]]:
        """The rows at positions ``start``, ``start + 1``, ... that the log holds, in order."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self._complete_size = 0
            return []
        except OSError as exc:
            raise LeaderboardError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        end = data.rfind(b"\n") + 1  # a last line without its newline was cut short
        self._complete_size = end
        rows: list[dict[str, Any]] = []
        for number, line in enumerate(data[:end].splitlines(), start=1):
            entry = _entry(line)
            if entry is None:
                raise LeaderboardError(f"{self.path}: line {number} is not a leaderboard row")
            index, row = entry
            if index == start + len(rows):
                rows.append(row)
            elif index >= start + len(rows):
                raise LeaderboardError(f"{self.path}: line {number} holds row {index}, but row "
                                       f"{start + len(rows)} is missing")
        return rows

    def append(self, first_index: int, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append ``rows`` (validated) at positions ``first_index``, ...; one write and one
        fsync. On any error the log is cut back to what it was. Returns the bytes written."""
        text = "".join(json.dumps({"index": first_index + i, "row": row}, default=_json_default,
                                  sort_keys=False) + "\n" for i, row in enumerate(rows))
        data = text.encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if self._complete_size is not None and size > self._complete_size:
                os.ftruncate(fd, self._complete_size)  # a line a crash cut short
                size = self._complete_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except BaseException:
                with suppress(OSError):
                    os.ftruncate(fd, size)
                raise
            self._complete_size = size + len(data)
        finally:
            os.close(fd)
        return len(data)

    def clear(self) -> None:
        """Empty the log (its rows are in the Parquet file now)."""
        with suppress(FileNotFoundError):
            os.unlink(self.path)
        self._complete_size = 0


def _entry(line: bytes) -> tuple[int, dict[str, Any]] | None:
    try:
        entry = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("index"), int) \
            or not isinstance(entry.get("row"), dict):
        return None
    return entry["index"], entry["row"]


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


__all__ = ["PENDING_FILE", "PendingLog"]
