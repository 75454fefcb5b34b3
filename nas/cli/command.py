"""The one ``main()`` every command runs: parse the arguments, run, and turn whatever stops the
run into one line and an exit status.

* Bad input (a ``NasError``, or argparse's own errors: ``nas.cli.parser``): one
  ``error: ...`` line on stderr, exit status 2; a long value in it is cut
  (``search_space.messages.one_line``). So is a path too long for the file system (the
  ``OSError`` of its first use, wherever that is).
* SIGINT / SIGTERM (``nas.run.interrupt``): the line the command keeps ready in
  :attr:`Invocation.interrupted` (what is saved, how to continue), exit status 130 / 143;
  another signal while that line is made and printed is ignored.
* A closed stdout pipe (``nas-arch sample --n 2000 | head -1``): nothing more is written and
  the status is 141, that of a process ended by SIGPIPE, as ``seq 1000000 | head -1`` gives.
"""

from __future__ import annotations

import argparse
import errno
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from nas.run.interrupt import SIGNALS, Interrupted, StopSignals
from search_space.errors import NasError
from search_space.messages import one_line, shown

CLOSED_PIPE_STATUS = 128 + signal.SIGPIPE


def nothing_written(signal_name: str) -> str:
    """The interrupt line of a command that writes its files only once they are whole."""
    return f"interrupted by {signal_name}: nothing was written; run the command again"


class Invocation:
    """One run of a command: its arguments, its installed signal handlers, and the line it
    would print if a signal stopped it now (replace :attr:`interrupted` once there is more to
    say than :func:`nothing_written`)."""

    def __init__(self, args: argparse.Namespace, signals: StopSignals) -> None:
        self.args = args
        self.signals = signals
        self.interrupted: Callable[[str], str] = nothing_written


Run = Callable[[Invocation], int]


def run_command(parser: argparse.ArgumentParser, run: Run, argv: list[str] | None) -> int:
    """Parse ``argv`` with ``parser``, call ``run`` and return the exit status (see the module
    docstring); ``run`` returns the status of a run that ended by itself."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    invocation: Invocation | None = None
    try:
        with StopSignals() as signals:
            invocation = Invocation(args, signals)
            status = run(invocation)
            sys.stdout.flush()  # a closed pipe shows here, where it is handled below
            return status
    except NasError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        name = stop.signal_name if isinstance(stop, Interrupted) else "SIGINT"
        say = invocation.interrupted if invocation is not None else nothing_written
        with _signals_ignored():  # one more Ctrl-C must not cut the line short
            print(say(name), file=sys.stderr)
        return stop.exit_code if isinstance(stop, Interrupted) else 130
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # another pipe or socket broke: not the reader of our output going away
        _discard_stdout()
        return CLOSED_PIPE_STATUS
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:
            raise
        # A path a user gave, too long for the file system (wherever it was first used).
        name = "" if err.filename is None else f": {shown(err.filename)}"
        print(f"error: file name too long{name}", file=sys.stderr)
        return 2


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored for the moment the interrupt line is made (it may read the
    run folder) and printed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stdout_closed() -> bool:
    """Whether the reader of stdout went away (a pipe whose other end is closed reports an
    error condition when polled)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's capture)
        return False


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush at exit does not fail
    again (and print an ``Exception ignored`` traceback)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


__all__ = ["CLOSED_PIPE_STATUS", "Invocation", "Run", "nothing_written", "run_command"]
