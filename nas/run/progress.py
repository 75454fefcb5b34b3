"""Progress of a run on the terminal: done, failed, best reward so far, and an ETA; and the
set-up lines every command says before its bar (:func:`say_on_stderr`, or :func:`silent` with
``--no-progress``).

Bars are for terminals. Where stderr is not one (a log file, a pipe, a job scheduler's
output), a :class:`Bar` prints a plain line now and then instead of redrawing itself: when
a unit finishes (a candidate, a job) or when its owner reports (an epoch), saying what the
bar would have said::

    candidates: 3/16, 1:15 elapsed, about 5:25 left (ok=3 failed=0 best=0.4213)
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from search_space.messages import counted  # here too: the commands' counted nouns


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def silent(line: str) -> None:
    return None


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real stream
        return False


class Bar:
    """Progress over ``total`` units: a tqdm bar where stderr is a terminal, else plain lines
    (see the module docstring). ``line_per_unit``: a line for every :meth:`update` (units
    worth a line: candidates, jobs), or only on :meth:`report` (steps of an epoch). The
    method names are tqdm's. Disabled, it prints nothing."""

    def __init__(self, total: int, *, desc: str, unit: str, initial: int = 0,
                 enabled: bool = True, line_per_unit: bool = True, smoothing: float = 0.1,
                 noun: str = "") -> None:
        self._lines = enabled and not is_terminal(sys.stderr)
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                         disable=not enabled or self._lines, file=sys.stderr,
                         dynamic_ncols=True, smoothing=smoothing)
        self._total, self._initial, self._n = total, initial, initial
        self._desc, self._postfix, self._noun = desc, "", noun
        self._line_per_unit = line_per_unit
        self._started = time.monotonic()

    def update(self, n: int = 1) -> None:
        self._n += n
        self._bar.update(n)
        if self._line_per_unit:
            self.report()

    def set_description_str(self, text: str, refresh: bool = True) -> None:
        self._desc = text
        self._bar.set_description_str(text, refresh=refresh)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self._postfix = text
        self._bar.set_postfix_str(text, refresh=refresh)

    def report(self) -> None:
        """In line mode, print the line now (on a terminal the bar shows it already)."""
        if self._lines:
            print(self.line(), file=sys.stderr, flush=True)

    def line(self) -> str:
        """What the bar says, as one plain line."""
        elapsed = time.monotonic() - self._started
        done = self._n - self._initial
        left = (tqdm.format_interval(elapsed / done * (self._total - self._n)) if done > 0
                else "?")
        count = f"{self._n}/{self._total}" + (f" {self._noun}" if self._noun else "")
        postfix = f" ({self._postfix})" if self._postfix else ""
        return (f"{self._desc}: {count}, {tqdm.format_interval(elapsed)} elapsed, about "
                f"{left} left{postfix}")

    def write(self, line: str) -> None:
        self._bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()


class Progress:
    """The search's bar over its budget of candidates."""

    def __init__(self, total: int, *, initial: int = 0, enabled: bool = True) -> None:
        self._bar = Bar(total, desc="candidates", unit="cand", initial=initial,
                        enabled=enabled)
        self._done = initial

    def update(self, ok: int, failed: int, best_reward: float | None) -> None:
        best = "-" if best_reward is None else f"{best_reward:.4f}"
        self._bar.set_postfix_str(f"ok={ok} failed={failed} best={best}", refresh=True)
        done = ok + failed
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done

    def write(self, line: str) -> None:
        self._bar.write(line)

    def close(self) -> None:
        self._bar.close()


__all__ = ["Bar", "Progress", "counted", "is_terminal", "say_on_stderr", "silent"]
