"""Honest interrupts: SIGINT and SIGTERM stop a search cleanly, whatever runs the candidates.

A signal raises :class:`Interrupted` at once wherever stopping at once loses nothing that could
be kept (set-up, a candidate being evaluated: it is evaluated again when the run continues).
Code that must not be cut short defers it with :meth:`StopSignals.graceful`: recording a
finished candidate (the row, the strategy, ``best.json``) always completes first, and the Ray
executor turns a SIGINT into a clean stop of its tuner. Either way every finished row stays on
disk and the command exits 130 (SIGINT) or 143 (SIGTERM) with one line saying what was saved.
A second signal always stops at once.

Handlers can only be installed from the main thread; elsewhere :class:`StopSignals` does
nothing and the process keeps its default behaviour.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal. A ``KeyboardInterrupt``, so that code which catches
    ``Exception`` (a candidate's evaluation does) never records an interrupt as a failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.saved: int | None = None
        """Finished candidates on disk when the run stopped; None if no run was stored."""

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class StopSignals:
    """Turns SIGINT and SIGTERM into :class:`Interrupted` or into a stop request.

    ``with StopSignals() as signals:`` installs the handlers and restores the previous ones on
    exit; entered again inside (a command's ``main()`` around a library call that enters it
    too), only the outermost exit restores them. By default a signal raises at once. Inside ``signals.graceful(...)`` the first of
    the named signals only sets :attr:`requested`; leaving the block raises it, unless the
    surrounding code defers that signal too.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        """The first signal received, if any."""
        self._deferred: frozenset[int] = frozenset()
        self._previous: dict[int, Any] = {}
        self._depth = 0

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.received is not None

    def install(self) -> None:
        """Install (or re-install, e.g. after a library replaced them) the handlers."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in SIGNALS:
            previous = signal.signal(sig, self._handle)
            if previous != self._handle:
                self._previous.setdefault(sig, previous)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    @contextmanager
    def graceful(self, signals: tuple[int, ...] = SIGNALS) -> Iterator[None]:
        """Inside the block the first of ``signals`` only requests a stop."""
        outer = self._deferred
        self._deferred = outer | frozenset(int(s) for s in signals)
        try:
            yield
        finally:
            self._deferred = outer
        if self.received is not None and self.received not in outer:
            raise Interrupted(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if not first or signum not in self._deferred:
            raise Interrupted(self.received or signum)

    def __enter__(self) -> StopSignals:
        self._depth += 1
        self.install()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.restore()


__all__ = ["Interrupted", "SIGNALS", "StopSignals"]
