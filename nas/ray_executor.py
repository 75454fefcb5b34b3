"""Run candidates as Ray Tune trials (in-process Ray by default, or an existing cluster).

The only module that imports ray. A small :class:`Searcher` adapter maps Tune's events onto
the driver: ``suggest`` asks :meth:`SearchRun.next_job`, ``on_trial_complete`` hands the
trial's row to :meth:`SearchRun.complete`. Each trial runs :func:`nas.trial.evaluate`, the
same code the inline executor runs. The data set and the run-wide context travel once
through Ray's object store (``tune.with_parameters``).

Interrupts (``nas.interrupt``): Tune's own SIGINT handler and the stack dump Ray's core prints
on SIGTERM are switched off before Ray starts, and the Ray processes this command starts
inherit a blocked SIGTERM (Ray blocks SIGINT for them itself): a signal sent to the whole
process group (Ctrl-C, ``kill -TERM -PGID``, a job scheduler) reaches only this process. It is
a clean stop of the tuner: a :class:`Stopper` ends it, Tune stops the trials in flight, the
searcher hands out nothing new and records only final results; ``shutdown`` then ends Ray.

:func:`run_tasks` runs any list of independent jobs the same way, as plain Ray tasks
(``nas-validate``'s trainings): at most ``workers`` at once, each result handed back to the
caller as it finishes, the tasks in flight cancelled on a stop request.

Step timing never shares a device: a GPU trial holds whole GPUs, and on a cluster
``--hardware`` adds a tiny demand for Ray's ``accelerator_type:<TYPE>`` resource so that
trials land only on nodes with that accelerator.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from nas.config import ConfigError, SearchConfig
from nas.driver import SearchRun
from nas.interrupt import StopSignals
from nas.setup import hardware_profile
from nas.trial import Job, TrialContext, evaluate, time_reference
from proxy_train.data import DataSplits
from proxy_train.timing import StepTiming
from results.rows import Outcome
from search_space.spec import ArchSpec

ACCELERATOR_PREFIX = "accelerator_type:"
SCORE = "score"
OUTCOME = "outcome"


def _trainable(config: dict[str, Any], context: TrialContext, data: DataSplits,
               early_stop: bool) -> None:
    job = Job.from_config(config["job"])  # the trial boundary: the spec is decoded here, once

    def report(epoch: int, outcome: Outcome) -> bool:
        # Interim outcomes let ASHA compare candidates; if it stops this one, the last
        # interim outcome (status 'stopped') is what the driver records.
        tune.report({SCORE: outcome.reward or 0.0, OUTCOME: outcome, "epoch": epoch})
        return False

    outcome = evaluate(job, context, data, report=report if early_stop else None)
    tune.report({SCORE: outcome.reward or 0.0, OUTCOME: outcome, "final": True})


class _DriverSearcher(Searcher):
    """Tune search algorithm backed by the driver's strategy (ask on suggest, tell on complete)."""

    def __init__(self, run: SearchRun) -> None:
        super().__init__(metric=SCORE, mode="max")
        self._run = run
        self._jobs: dict[str, Job] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        job = self._run.next_job()
        if job is None:
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray documents this sentinel; its annotation omits it
        self._jobs[trial_id] = job
        return {"job": job.to_config()}

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        job = self._jobs.pop(trial_id, None)
        if job is None:
            return
        if self._run.stop_requested and (error or not (result or {}).get("final")):
            return  # ended by the stop: not a result, evaluated again when the run continues
        outcome = (result or {}).get(OUTCOME)
        if not isinstance(outcome, Outcome):
            outcome = self._run.lost(job, "worker died (retries exhausted)" if error
                                     else "trial ended without a result")
        self._run.complete(job, outcome)


class _StopWhenAsked(Stopper):
    """Ends the whole tuner once the run was asked to stop (Tune then stops every trial)."""

    def __init__(self, run: SearchRun) -> None:
        self._run = run

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self._run.stop_requested


class RayExecutor:
    """Runs the search on Ray Tune; starts Ray in-process unless ``config.address`` is set."""

    def __init__(self, config: SearchConfig, signals: StopSignals | None = None) -> None:
        self.config = config
        self._signals = signals or StopSignals()
        self._started_ray = False
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
            # The leaderboard is the record of every trial; Tune's own per-trial JSON/CSV/
            # TensorBoard logs would only duplicate it (and cannot log an Outcome).
            os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
            # Signals are ours (nas.interrupt): no Tune SIGINT handler, and no stack dump from
            # Ray's core (absl's failure signal handler) when SIGTERM arrives.
            os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
            os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
            kwargs: dict[str, Any] = dict(
                include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
            )
            if config.address is None:
                # "local": always a new in-process instance, never a cluster that `ray start`
                # left running on this machine (which ray.init() would otherwise join).
                kwargs.update(address="local", num_cpus=os.cpu_count() or 1)
            else:
                kwargs["address"] = config.address
            with _sigterm_blocked_for_ray(self._signals):
                ray.init(**kwargs)
                self._started_ray = True
        self._resources = self._trial_resources()

    def _trial_resources(self) -> dict[str, float]:
        profile = hardware_profile(self.config)
        resources: dict[str, float] = {}
        if profile.kind == "cuda":
            resources["gpu"] = float(self.config.gpus_per_trial or 1)
            if self.config.address is not None and profile.ray_accelerator:
                key = ACCELERATOR_PREFIX + profile.ray_accelerator
                present = sorted(
                    k[len(ACCELERATOR_PREFIX):] for k in ray.cluster_resources() if k.startswith(ACCELERATOR_PREFIX)
                )
                if key not in ray.cluster_resources():
                    raise ConfigError(
                        f"no node of the Ray cluster has hardware {self.config.hardware!r} "
                        f"(Ray accelerator type {profile.ray_accelerator}); accelerator types present: {present or 'none'}"
                    )
                resources[key] = 0.001
        return resources

    def _resources_for(self, context: TrialContext) -> dict[str, float]:
        # The run's context already holds the CPUs per trial (--cpus-per-trial or its default).
        return {**self._resources, "cpu": float(context.threads or 1)}

    def time_reference(self, spec: ArchSpec, context: TrialContext) -> StepTiming:
        resources = self._resources_for(context)
        remote = ray.remote(time_reference).options(
            num_cpus=resources.pop("cpu"), num_gpus=resources.pop("gpu", 0.0), resources=resources or None
        )
        return ray.get(remote.remote(spec, context))

    def run(self, run: SearchRun) -> None:
        remaining = run.remaining
        if remaining <= 0:
            return
        early_stop = self.config.early_stop == "asha"
        trainable = tune.with_parameters(
            _trainable, context=run.context, data=run.setup.data, early_stop=early_stop
        )
        trainable = tune.with_resources(trainable, self._resources_for(run.context))
        scheduler = None
        if early_stop:
            epochs = run.context.recipe.epochs
            scheduler = ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=max(1, epochs // 4))
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=_DriverSearcher(run),
                scheduler=scheduler,
                num_samples=remaining,
                max_concurrent_trials=self.config.workers,
                reuse_actors=True,  # one worker process per slot, not one per candidate
                metric=SCORE,
                mode="max",
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(Path(run.run_dir).resolve() / "ray"),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=self.config.retries),
                stop=_StopWhenAsked(run),
            ),
        )
        with self._signals.graceful():
            tuner.fit()

    def shutdown(self) -> None:
        if self._started_ray:
            ray.shutdown()


@contextmanager
def _sigterm_blocked_for_ray(signals: StopSignals) -> Iterator[None]:
    """Block SIGTERM while Ray starts its processes, which inherit the blocked signal: like
    SIGINT, which Ray blocks for them itself, a group-wide SIGTERM then leaves them to this
    process's clean stop (Ray ends them on shutdown: SIGTERM, then SIGKILL after a second).
    Starting Ray replaces the SIGTERM handler, so ours is installed again before unblocking."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
        signals.install()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a pending SIGTERM arrives now


class TaskLost:
    """What :func:`run_tasks` hands over for a task that returned nothing: why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def run_tasks(function: Callable[[Any, Any], Any], items: Sequence[Any], *, shared: Any,
              done: Callable[[Any, Any], None], workers: int, cpus: float, gpus: float = 0.0,
              address: str | None = None, retries: int = 1,
              signals: StopSignals | None = None) -> None:
    """Run ``function(item, shared)`` for every item as Ray tasks, at most ``workers`` at
    once, and call ``done(item, result)`` in this process as each one finishes (``result`` is
    what the function returned, or a :class:`TaskLost` naming why there is none: its worker
    died ``retries`` + 1 times, or it raised). ``shared`` travels once through the object
    store. Ray is started in this process (or joins ``address``) unless it already runs, and
    shut down again if it was started here.

    A stop request of ``signals`` (SIGINT / SIGTERM) hands out nothing more, cancels the
    tasks in flight (they ran for nothing: not results) and raises ``Interrupted`` once the
    ``done`` in progress has returned."""
    signals = signals or StopSignals()
    started = _start_ray(address, signals)
    try:
        shared_ref = ray.put(shared)
        remote = ray.remote(function).options(num_cpus=cpus, num_gpus=gpus,
                                              max_retries=retries)
        waiting = list(items)
        flying: dict[Any, Any] = {}
        with signals.graceful():
            while (waiting or flying) and not signals.requested:
                while waiting and len(flying) < workers:
                    item = waiting.pop(0)
                    flying[remote.remote(item, shared_ref)] = item
                ready, _ = ray.wait(list(flying), num_returns=1, timeout=0.5)
                for ref in ready:
                    item = flying.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        result = TaskLost(_lost_reason(exc))
                    done(item, result)
            for ref in flying:
                ray.cancel(ref, force=True)
    finally:
        if started:
            ray.shutdown()


def _lost_reason(exc: BaseException) -> str:
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if exc.cause is not None else exc
        return f"{type(cause).__name__}: {str(cause).splitlines()[-1] if str(cause) else ''}"
    return f"worker died (retries exhausted): {type(exc).__name__}"


def _start_ray(address: str | None, signals: StopSignals) -> bool:
    """Start Ray in this process (or join ``address``) with the settings of
    :class:`RayExecutor`; returns whether this call started it."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR,
                                  log_to_driver=False)
    if address is None:
        kwargs.update(address="local", num_cpus=os.cpu_count() or 1)
    else:
        kwargs["address"] = address
    with _sigterm_blocked_for_ray(signals):
        ray.init(**kwargs)
    return True
