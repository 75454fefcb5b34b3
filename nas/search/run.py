"""One call that runs (or continues) a whole search: the library behind ``nas-search``.

The order of work makes bad input cost nothing and leave nothing behind:

1. the settings, ``--out``, hardware, space and reference are checked (milliseconds), and a
   ``--address`` is resolved and probed (seconds at most: ``nas.search.cluster``);
2. ``--out`` is claimed: created if needed and locked, so a folder another process writes into
   is refused at once; the run stored there is checked against the settings;
3. the data is loaded and the constraints are checked against the space's smallest spec;
4. only then does Ray start and is the reference timed (or read back from the stored run).
   A continued run's reference is stored, so while in-process Ray starts, a thread replays
   the stored rows into the run (``_Background``): a resume proposes sooner. A run that has
   finished its budget starts no executor at all: its summary is printed at once.

A failure before the run's settings are first stored removes what the claim created. SIGINT
and SIGTERM stop the run honestly (``nas.run.interrupt``): finished rows are kept, candidates in
flight are ended, and :class:`~nas.run.interrupt.Interrupted` says how many candidates are saved.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Protocol

from nas.run.interrupt import Interrupted, StopSignals
from nas.run.progress import say_on_stderr, silent
from nas.run.settings import check_out
from nas.search.config import SearchConfig
from nas.search.driver import RunSummary, SearchRun
from nas.search.folder import RunFolder
from nas.search.record import RunRecord
from nas.search.setup import RunSetup, Say, check_settings, prepare_setup, time_reference_once
from nas.search.trial import TrialContext
from nas.track.base import FAILED, FINISHED, KILLED
from proxy_train.data import load_data
from proxy_train.timing import StepTiming
from results.errors import LeaderboardError
from search_space.spec import ArchSpec


class Executor(Protocol):
    def time_reference(self, spec: ArchSpec, context: TrialContext) -> StepTiming: ...

    def run(self, run: SearchRun) -> None: ...

    def shutdown(self) -> None: ...


def make_executor(config: SearchConfig, signals: StopSignals | None = None) -> Executor:
    if config.executor == "inline":
        from nas.search.inline_executor import InlineExecutor

        return InlineExecutor()
    from nas.search.ray_executor import RayExecutor  # imported lazily: Ray is slow to import

    return RayExecutor(config, signals)


def run_search(config: SearchConfig, *, say: Say | None = None,
               signals: StopSignals | None = None) -> tuple[RunSummary, list[Path]]:
    """Run the search described by ``config`` up to its budget; return its summary and plots.

    ``say`` prints the set-up's progress lines (default: to stderr unless ``config.progress``
    is off). ``signals``: the caller's installed handlers, if it has them already. Raises
    ``NasError`` for bad input and :class:`Interrupted` on SIGINT / SIGTERM.
    """
    tell: Say = say or (say_on_stderr if config.progress else silent)
    signals = signals or StopSignals()
    folder = RunFolder(config.out, paced=True)
    stored: RunRecord | None = None
    try:
        with signals:
            check_out(config.out)
            plan = check_settings(config)
            if config.executor == "ray" and config.address is not None:
                tell(f"looking for the Ray cluster at {config.address} ...")
                from nas.search.ray_executor import resolve_address

                resolve_address(config.address)
            with folder.claim():
                stored = folder.resume(config.identity())
                for line in (folder.restored, folder.starts_over):
                    if line:
                        say_on_stderr(line)  # said even without progress
                tell(f"loading data {config.data} ...")
                data = load_data(config.data, seed=config.seed, say=tell,
                                 progress=config.progress)
                run = _run(config, prepare_setup(config, plan, data), folder, stored, signals,
                           tell)
                summary = run.close()
                plots = _end(run, FINISHED, summary)
    except Interrupted as stop:
        stop.saved = len(folder.leaderboard) if stored is not None or folder.kept else None
        raise
    return summary, plots


def _run(config: SearchConfig, setup: RunSetup, folder: RunFolder, stored: RunRecord | None,
         signals: StopSignals, tell: Say) -> SearchRun:
    """The run, evaluated up to its budget. A run that has finished its budget starts no
    executor (Ray would take seconds to do nothing)."""

    def prepare(timed: RunSetup) -> SearchRun:
        return SearchRun(config, timed, folder, stored, signals=signals, say=tell,
                         note=say_on_stderr)

    if stored is not None and len(folder.leaderboard) >= config.budget:
        return prepare(time_reference_once(setup, stored, _never, tell))
    run: SearchRun | None = None
    executor: Executor | None = None
    ended = FAILED
    try:
        if stored is not None and config.executor == "ray" and config.address is None:
            timed = time_reference_once(setup, stored, _never, tell)
            preparing = _Background(lambda: prepare(timed))
            try:
                executor = _start_executor(config, signals, tell)
            finally:
                run = preparing.result()
        else:
            executor = _start_executor(config, signals, tell)
            run = prepare(time_reference_once(setup, stored, executor.time_reference, tell))
        executor.run(run)
        ended = FINISHED
    except KeyboardInterrupt:
        ended = KILLED
        raise
    finally:
        if run is not None:
            run.progress.close()  # before any message: never glued to the bar
            _flush(run)
        if executor is not None:
            executor.shutdown()
        if run is not None and ended != FINISHED:
            with suppress(Exception):  # never hides why the run ended
                _end(run, ended)  # what was saved is plotted and tracked all the same
    assert run is not None, "a run that did not raise was prepared"
    return run


def _end(run: SearchRun, status: str, summary: RunSummary | None = None) -> list[Path]:
    """The plots of the rows saved so far (also when the run stops early); then the trackers'
    run ends, with the plots and ``best.json``. Returns the plots."""
    from results.report import plot_run  # matplotlib: only once there is a run

    plots = plot_run(run.leaderboard.read(), run.run_dir)
    counts = None if summary is None else {
        "finished": summary.finished, "ok": summary.ok, "failed": summary.failed,
        "wall_time_s": summary.wall_time_s}
    run.tracking.close(status, summary=counts, files=[*plots, run.run_dir / "best.json"])
    return plots


def _flush(run: SearchRun) -> None:
    """Bring the Parquet leaderboard up to date with its log, however the run ends (a failure
    here costs nothing: the log keeps the rows, and the next start folds them in)."""
    try:
        run.leaderboard.flush()
    except (LeaderboardError, OSError):
        pass


class _Background:
    """``make()`` run in a thread of its own; :meth:`result` waits for it and returns what it
    returned or raises what it raised. (Ray itself must start in the main thread: the
    processes it starts die with the thread that started them.)"""

    def __init__(self, make: Callable[[], SearchRun]) -> None:
        self._made: SearchRun | None = None
        self._error: BaseException | None = None

        def work() -> None:
            try:
                self._made = make()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
                self._error = exc

        self._thread = threading.Thread(target=work, name="prepare-run", daemon=True)
        self._thread.start()

    def result(self) -> SearchRun:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._made is not None
        return self._made


def _start_executor(config: SearchConfig, signals: StopSignals, say: Say) -> Executor:
    if config.executor == "ray":
        say("starting Ray ..." if config.address is None
            else f"connecting to the Ray cluster at {config.address} ...")
    return make_executor(config, signals)


def _never(spec: ArchSpec, context: TrialContext) -> StepTiming:
    raise AssertionError("a continued run's reference is stored, never measured again")
