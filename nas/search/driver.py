"""The search loop's owner: asks the strategy, hands jobs to an executor, records results.

The driver is executor-agnostic: an executor only calls :meth:`SearchRun.next_job` to get
work and :meth:`SearchRun.complete` with the outcome :func:`nas.search.trial.evaluate` produced. Every
finished candidate is written to the leaderboard at once (atomically), so a run killed at any
moment loses at most the candidates in flight; re-running with the same ``--out`` replays the
leaderboard into the strategy and continues up to exactly ``--budget`` finished candidates.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nas.run.interrupt import StopSignals
from nas.run.progress import Progress
from nas.search.config import SearchConfig
from nas.search.folder import RunFolder
from nas.search.record import RunRecord
from nas.search.setup import RunSetup, Say
from nas.search.study_journal import StudyJournal
from nas.search.trial import Job, TrialContext, now
from nas.strategies import Observation, Proposal, make_strategy, replay
from nas.track.search import Interim, SearchTracking
from results.best import (
    BEST_FILE,
    BestRecord,
    best_record,
    remove_best,
    repair_best,
    write_best,
)
from results.records import document
from results.rows import Outcome, RunInfo, Scored, outcome_row, scored
from search_space.codec import decode, spec_hash
from search_space.cost import count_params
from search_space.errors import ConstraintError, NasError
from search_space.messages import counted
from search_space.sampling import check_constraints

MAX_REJECTED = 1000


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_dir: Path
    finished: int
    ok: int
    failed: int
    best: dict[str, Any] | None
    wall_time_s: float


def job_seed(run_seed: int, number: int) -> int:
    """A per-candidate seed that differs between candidates and between runs."""
    digest = hashlib.sha256(f"{run_seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class SearchRun:
    """State of one run: settings, leaderboard, strategy, and the jobs in flight.

    Creating it stores the run's settings (both copies, see ``nas.search.folder``), replays the
    leaderboard into the strategy and re-derives ``best.json`` if it is missing or unreadable
    (or removes one that no leaderboard row backs).
    Once ``signals`` received a stop request no new job is handed out, and recording a
    finished candidate is never cut short by a signal. ``say`` prints progress lines, ``note``
    what was repaired.
    """

    def __init__(self, config: SearchConfig, setup: RunSetup, folder: RunFolder,
                 stored: RunRecord | None, *, signals: StopSignals | None = None,
                 say: Say = lambda line: None, note: Say = lambda line: None) -> None:
        self.config = config
        self.run_dir = folder.path
        self.setup = setup
        self.context: TrialContext = setup.context
        self.leaderboard = folder.leaderboard
        rows = self.leaderboard.read()
        # Settings without a row start a new run (nas.search.folder): it gets an id of its own.
        self.run_id: str = stored.run_id if stored is not None and len(rows) \
            else _new_run_id()
        self.info = RunInfo(run_id=self.run_id, strategy=config.strategy,
                            hardware=self.context.hardware, objective=config.objective,
                            timing_resolution=self.context.timing_resolution,
                            timing_batch=self.context.timing_batch,
                            ref_step_time_ms=self.context.reward.ref_step_time,
                            ref_params=int(self.context.reward.ref_params))
        record = setup.record(self.run_id, config)
        folder.record(record)
        self.strategy = make_strategy(
            config.strategy, self.setup.space, seed=config.seed, num_classes=self.setup.num_classes
        )
        self.finished_hashes: set[str] = set()
        self.next_number = 0
        self.ok = 0  # finished without failing: status 'ok' or 'stopped' (early-stopped)
        self.failed = 0
        self.best: tuple[float, dict[str, Any]] | None = None
        """The best reward so far and its row."""
        self._replay(rows)
        if self.finished:
            say(f"continuing run {self.run_id}: {self.finished} of "
                f"{counted(config.budget, 'candidate')} "
                "already finished")
        repaired = self._repair_best()
        if repaired:
            note(repaired)
        self._signals = signals or StopSignals()
        self.journal = StudyJournal.open(self.run_dir, self.setup.space, self.leaderboard.rows(),
                                         {"run_id": self.run_id, "strategy": config.strategy})
        self.in_flight: dict[int, Proposal] = {}
        self._started = time.perf_counter()
        self.progress = Progress(config.budget, initial=self.finished, enabled=config.progress)
        self.progress.update(self.ok, self.failed, self._best_reward())
        settings = {k: v for k, v in record.to_document().items() if k != "space"}
        self.tracking = SearchTracking(config.trackers, run_dir=self.run_dir,
                                       run_id=self.run_id, settings=settings,
                                       warn=self.progress.write)

    # -- bookkeeping ---------------------------------------------------------------------

    @property
    def finished(self) -> int:
        return self.ok + self.failed

    @property
    def stop_requested(self) -> bool:
        """Whether the run was asked to stop (no new job is handed out)."""
        return self._signals.requested

    @property
    def remaining(self) -> int:
        return max(0, self.config.budget - self.finished - len(self.in_flight))

    def _replay(self, rows: Any) -> None:
        history = []
        for row in rows.sort_values("number").to_dict("records") if len(rows) else []:
            view = scored(row)
            history.append((decode(view.arch), _observation(view)))
            self.finished_hashes.add(view.arch_hash)
            self.next_number = max(self.next_number, view.number + 1)
            self._count(view, row)
        replay(self.strategy, history)

    def _count(self, view: Scored, row: dict[str, Any]) -> None:
        if view.status == "failed":
            self.failed += 1
            return
        self.ok += 1
        if view.status != "ok" or view.reward is None:
            return  # early-stopped candidates keep their partial reward but never win
        if self.best is None or view.reward > self.best[0]:
            self.best = (view.reward, row)

    def _best_reward(self) -> float | None:
        return None if self.best is None else self.best[0]

    # -- the executor's interface --------------------------------------------------------

    def next_job(self) -> Job | None:
        """The next candidate to evaluate, or ``None`` once the budget is handed out."""
        if self.remaining <= 0 or self.stop_requested:
            return None
        for _ in range(MAX_REJECTED):
            proposal = self.strategy.ask()
            try:
                check_constraints(
                    proposal.spec,
                    max_params=self.config.max_params,
                    max_macs=self.config.max_macs,
                    resolution=self.context.timing_resolution,
                )
            except ConstraintError:
                # Constraints are checked before anything trains; the strategy learns the
                # proposal was unusable, and it does not count against the budget.
                self.strategy.tell(proposal, Observation(status="failed", reward=None, objectives=None))
                continue
            if spec_hash(proposal.spec) in self.finished_hashes:
                self.strategy.tell(proposal, Observation(status="failed", reward=None, objectives=None))
                continue
            number = self.next_number
            self.next_number += 1
            self.in_flight[number] = proposal
            return Job(number=number, spec=proposal.spec, seed=job_seed(self.config.seed, number))
        raise NasError(
            f"{MAX_REJECTED} proposals in a row broke the constraints (max params "
            f"{self.config.max_params}, max MACs {self.config.max_macs}); loosen them or change the space"
        )

    @staticmethod
    def lost(job: Job, reason: str) -> Outcome:
        """The outcome of a candidate whose worker died (no result came back)."""
        at = now()
        return Outcome(number=job.number, spec=job.spec, seed=job.seed, started_at=at,
                       finished_at=at, wall_time_s=0.0, failure=reason)

    def complete(self, job: Job, outcome: Outcome) -> None:
        """Record a finished candidate: leaderboard, strategy, best.json, progress. A signal
        meanwhile takes effect once the candidate is recorded."""
        with self._signals.graceful():
            self._record(job, outcome)

    def _record(self, job: Job, outcome: Outcome) -> None:
        proposal = self.in_flight.pop(job.number)
        row = self.leaderboard.append(outcome_row(outcome, self.info, trial_id=self.finished))
        self.journal.record(row)
        view = scored(row)
        self.finished_hashes.add(view.arch_hash)
        previous_best = self.best
        self._count(view, row)
        self.strategy.tell(proposal, _observation(view))
        if self.best is not previous_best and self.best is not None:
            write_best(self.run_dir, self._best_record(self.best[1]))
        self.progress.update(self.ok, self.failed, self._best_reward())
        self.tracking.candidate(row, _interim(outcome, self.context), finished=self.finished,
                                best_reward=self._best_reward())

    def _best_record(self, row: dict[str, Any]) -> BestRecord:
        return best_record(row, self.context.recipe.to_dict(), run_id=self.run_id,
                           reference=document(self.setup.reference_record()))

    def _repair_best(self) -> str | None:
        """Make ``best.json`` the leaderboard's best row's: re-derived if it is missing,
        unreadable or names another candidate, removed if no row backs it. Says what was
        repaired (None: nothing)."""
        best = self.run_dir / BEST_FILE
        if self.best is None:
            return f"{best} was removed: no leaderboard row backs it" \
                if remove_best(self.run_dir) else None
        if repair_best(self.run_dir, self._best_record(self.best[1])):
            return f"{best} was missing, unreadable or out of date; rewritten from the leaderboard"
        return None

    def close(self) -> RunSummary:
        self.progress.close()
        self.leaderboard.mark_pareto()
        self._repair_best()
        return RunSummary(
            run_dir=self.run_dir,
            finished=self.finished,
            ok=self.ok,
            failed=self.failed,
            best=None if self.best is None else self.best[1],
            wall_time_s=time.perf_counter() - self._started,
        )


def _observation(view: Scored) -> Observation:
    if view.reward is None:
        return Observation(status="failed", reward=None, objectives=None)
    return Observation(status="ok", reward=view.reward, objectives=view.objectives)


def _interim(outcome: Outcome, context: TrialContext) -> list[Interim]:
    """The accuracy and reward after each epoch of a trained candidate (for the trackers)."""
    training, timing = outcome.training, outcome.timing
    if context.surrogate is not None or training is None or timing is None \
            or timing.median_ms is None:
        return []
    params = count_params(outcome.spec)
    return [(stats.epoch, accuracy,
             context.reward.proxy(accuracy, stats.minival_loss, timing.median_ms, params))
            for stats, accuracy in zip(training.history, training.accuracy_curve)]


def _new_run_id() -> str:
    """The run's start in UTC, ISO 8601 with microseconds (``2025-01-31T09:15:02.123456Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


__all__ = ["SearchRun", "RunSummary", "job_seed"]
