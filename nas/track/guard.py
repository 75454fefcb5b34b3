"""Trackers that can neither fail nor slow the job they watch.

Every tracker of a job gets a :class:`Guarded` wrapper with a thread of its own: the job only
puts work (a function of the tracker) into its queue, which never waits, and the thread does
the work in order. The first exception (a store that cannot be written, a server gone)
prints one warning and switches that tracker off for the rest of the job; the job goes on,
and its own files (the leaderboard, ``metrics.parquet``, ``validation.parquet``) remain the
record. A tracker that falls :data:`MAX_QUEUED` calls behind is switched off the same way.

:meth:`Trackers.close` lets each thread finish what is queued, waiting at most
:data:`STALL_S` seconds for any one call (a server that stopped answering), or
:data:`START_S` for the first (importing the framework and opening its store: a new MLflow
SQLite store takes tens of seconds on a busy machine): a tracker that lags is then left
behind with a warning. A wait of more than a few seconds is said in one line.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence

from nas.track.base import FINISHED, RunInfo, Tracker, make_tracker

Work = Callable[[Tracker], None]
Warn = Callable[[str], None]
MAX_QUEUED = 100_000
STALL_S = 30.0
"""How long closing waits for one call of a tracker before leaving it behind."""
START_S = 300.0
"""... and for its first call, which imports the framework and opens the run."""
SAY_AFTER_S = 3.0


def warn_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Guarded:
    """One tracker, driven by a thread of its own (see the module docstring)."""

    def __init__(self, name: str, tracker: Tracker, warn: Warn) -> None:
        self.name = name
        self._tracker = tracker
        self._warn = warn
        self._queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._queued = 0
        self._done = 0
        self.failed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=f"tracker-{name}", daemon=True)
        self._thread.start()

    def submit(self, work: Work) -> None:
        """Queue ``work(tracker)``; returns at once."""
        if self.failed:
            return
        if self._queued - self._done >= MAX_QUEUED:
            self._fail(f"fell {MAX_QUEUED} calls behind")
            return
        self._queued += 1
        self._queue.put(work)

    def _work(self) -> None:
        while (work := self._queue.get()) is not None:
            if not self.failed:
                try:
                    work(self._tracker)
                except Exception as exc:  # noqa: BLE001 - a tracker never takes the job down
                    text = str(exc).strip().splitlines()
                    self._fail(f"{type(exc).__name__}: {text[0] if text else ''}")
            self._done += 1

    def _fail(self, why: str) -> None:
        with self._lock:
            first, self.failed = not self.failed, True
        if first:
            self._warn(f"warning: tracker {self.name} stopped ({why}); the job goes on "
                       "without it, its own files are the record")

    def close(self, status: str) -> None:
        """Close the tracker's run after what is queued, then end the thread; wait at most
        :data:`STALL_S` for any one call."""
        self.submit(lambda tracker: tracker.close(status))
        self._queue.put(None)
        done, since, said = self._done, time.monotonic(), False
        while self._thread.is_alive():
            self._thread.join(timeout=0.2)
            limit = START_S if self._done == 0 else STALL_S
            if self._done != done:
                done, since = self._done, time.monotonic()
            elif time.monotonic() - since > limit:
                self._warn(f"warning: tracker {self.name} did not answer for {limit:g} s; "
                           f"{self._queued - self._done} of its calls are not sent")
                return
            if not said and time.monotonic() - since > SAY_AFTER_S:
                said = True
                self._warn(f"waiting for tracker {self.name} to send "
                           f"{self._queued - self._done} calls ...")


class Trackers:
    """The trackers of one job (none, one or several), each :class:`Guarded`."""

    def __init__(self, guarded: Sequence[Guarded] = ()) -> None:
        self._guarded = list(guarded)

    def __bool__(self) -> bool:
        return bool(self._guarded)

    @property
    def names(self) -> list[str]:
        return [g.name for g in self._guarded]

    def submit(self, work: Work) -> None:
        """Queue ``work(tracker)`` for every tracker."""
        for guarded in self._guarded:
            guarded.submit(work)

    def close(self, status: str = FINISHED) -> None:
        for guarded in self._guarded:
            guarded.close(status)
        self._guarded = []


def open_trackers(names: Sequence[str], info: RunInfo, *, warn: Warn = warn_on_stderr,
                  make: Callable[[str], Tracker] = make_tracker) -> Trackers:
    """Start a run described by ``info`` in each tracker of ``names`` (in the background)."""
    opened = []
    for name in dict.fromkeys(names):  # each once, in the order given
        guarded = Guarded(name, make(name), warn)
        guarded.submit(lambda tracker: tracker.start_run(info))
        opened.append(guarded)
    return Trackers(opened)


__all__ = ["MAX_QUEUED", "STALL_S", "Guarded", "Trackers", "open_trackers", "warn_on_stderr"]
