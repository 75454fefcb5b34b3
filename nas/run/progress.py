"""Progress of a run on the terminal: done, failed, best reward so far, and an ETA; and the
set-up lines every command says before its bar (:func:`say_on_stderr`, or :func:`silent` with
``--no-progress``)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def silent(line: str) -> None:
    return None


def counted(n: int, noun: str) -> str:
    """``counted(1, "epoch") == "1 epoch"``, ``counted(4, "epoch") == "4 epochs"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class Progress:
    """A progress bar over the budget. Disabled, it prints nothing."""

    def __init__(self, total: int, *, initial: int = 0, enabled: bool = True) -> None:
        self._bar = tqdm(
            total=total,
            initial=initial,
            desc="candidates",
            unit="cand",
            disable=not enabled,
            file=sys.stderr,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self._done = initial

    def update(self, ok: int, failed: int, best_reward: float | None) -> None:
        done = ok + failed
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done
        best = "-" if best_reward is None else f"{best_reward:.4f}"
        self._bar.set_postfix_str(f"ok={ok} failed={failed} best={best}", refresh=True)

    def write(self, line: str) -> None:
        self._bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()
