"""Run candidates as Ray Tune trials (in-process Ray by default, or an existing cluster).

The only module that imports ray. A small :class:`Searcher` adapter maps Tune's events onto
the driver: ``suggest`` asks :meth:`SearchRun.next_job`, ``on_trial_complete`` hands the
trial's row to :meth:`SearchRun.complete`. Each trial runs :func:`nas.search.trial.evaluate`, the
same code the inline executor runs. The run-wide context and the data set travel once
through Ray's object store (``tune.with_parameters``); an image folder or Parquet source
travels as its cache's path and row numbers only (``proxy_train.cache.rows``): each trial
opens the decoded cache of its own machine, and builds it there first if it has none.

**On a cluster** (``--address``): the address is probed before Ray is asked to join it, and an
authentication token is used when one is present (``nas.search.cluster``), so a wrong address or a
refused token is one line within seconds. Every trial first reports the node it runs on (its
Ray node id, host and IP; every row records it too). A trial whose worker vanishes is retried
up to ``--retries`` times (Tune starts it again, from scratch, wherever resources are free);
after that its row is ``failed`` with the reason ``node lost`` when its node is gone (marked
dead, or its raylet refuses connections) and ``worker died`` otherwise. While no alive node can
run a trial, a watch counts; after ``--node-timeout`` seconds the run stops with an error
instead of waiting for resources that are gone (``nas.search.cluster.NodeWatch``).

**At scale**: Tune saves its experiment state (every trial, its searcher and its stopper)
every 10 s or more; holding the run, the searcher and the stopper used to put the data set and
every row into each save, so the bytes written grew with the square of the trial count. Now
they hand Tune only a key to the run (:class:`_RunLink`), and the state is saved once, when
the tuner ends (``TUNE_GLOBAL_CHECKPOINT_S``): the leaderboard, not Tune's state, is what a
run resumes from. ``bench/scale_1000.py`` measures 1000 candidates.

Interrupts (``nas.run.interrupt``): Tune's own SIGINT handler and the stack dump Ray's core prints
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

import dataclasses
import json
import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from nas.run.interrupt import StopSignals
from nas.run.settings import ConfigError
from nas.search.cluster import (
    AUTH_MODE_VAR,
    ClusterError,
    NodeWatch,
    auth_failure,
    check_reachable,
    node_lost,
    ray_demand,
    token_source,
)
from nas.search.config import SearchConfig, asha_grace_epoch
from nas.search.driver import SearchRun
from nas.search.setup import hardware_profile
from nas.search.trial import Job, TrialContext, evaluate, time_reference
from proxy_train.data import DataSplits
from proxy_train.timing import StepTiming
from results.rows import Outcome
from search_space.spec import ArchSpec

ACCELERATOR_PREFIX = "accelerator_type:"
SCORE = "score"
OUTCOME = "outcome"
NODE = "node"
WATCH_EVERY_S = 1.0
NODE_LOST = "node lost"
WORKER_DIED = "worker died"


def _this_node() -> dict[str, str]:
    return {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
            "ip": ray.util.get_node_ip_address()}


def _trainable(config: dict[str, Any], context: TrialContext, data: DataSplits,
               early_stop: bool, say_node: bool) -> None:
    job = Job.from_config(config["job"])  # the trial boundary: the spec is decoded here, once
    node = _this_node()
    if say_node:  # on a cluster: where it runs, before any work (JSON: Tune flattens dicts)
        tune.report({SCORE: 0.0, NODE: json.dumps(node), "epoch": 0})

    def report(epoch: int, outcome: Outcome) -> bool:
        # Interim outcomes let ASHA compare candidates; if it stops this one, the last
        # interim outcome (status 'stopped') is what the driver records.
        tune.report({SCORE: outcome.reward or 0.0, OUTCOME: outcome, "epoch": epoch})
        return False

    outcome = evaluate(job, context, data, report=report if early_stop else None, node=node)
    tune.report({SCORE: outcome.reward or 0.0, OUTCOME: outcome, "final": True})


_LINKED: dict[int, SearchRun] = {}


def _linked(key: int) -> _RunLink:
    return _RunLink(_LINKED.get(key), key)


class _RunLink:
    """The run, as Tune's objects hold it: Tune pickles its searcher and stopper into its
    experiment state (and ``tuner.pkl``) every time it saves; pickled, a link is only a key
    into this process's live runs, never the run with its data and rows."""

    def __init__(self, run: SearchRun | None, key: int | None = None) -> None:
        self.key = id(run) if key is None else key
        self._run = run
        if run is not None:
            _LINKED[self.key] = run

    @property
    def run(self) -> SearchRun:
        assert self._run is not None, "a run link used outside the process that made it"
        return self._run

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return _linked, (self.key,)

    def close(self) -> None:
        _LINKED.pop(self.key, None)


class _DriverSearcher(Searcher):
    """Tune search algorithm backed by the driver's strategy (ask on suggest, tell on complete).

    It keeps its own count of running trials (``set_max_concurrency``), freed the moment a
    trial completes, before the candidate is recorded: Tune's own limiter frees a slot only
    after the searcher has recorded, so one exception while recording left it waiting for a
    slot forever. An exception while recording is kept and ends the run instead (the stopper
    ends the tuner, :meth:`RayExecutor.run` raises it)."""

    def __init__(self, link: _RunLink, state: _ExecutorState) -> None:
        super().__init__(metric=SCORE, mode="max")
        self._link = link
        self._state = state
        self._slots = 0
        """Trials at once (0: as many as Tune starts)."""

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self._slots = max_concurrent
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._state.error is not None or 0 < self._slots <= len(self._state.jobs):
            return None
        job = self._link.run.next_job()
        if job is None:
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray documents this sentinel; its annotation omits it
        self._state.jobs[trial_id] = job
        return {"job": job.to_config()}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if NODE in result:
            self._state.nodes[trial_id] = json.loads(result[NODE])

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        job = self._state.jobs.pop(trial_id, None)
        node = self._state.nodes.pop(trial_id, None)
        if job is None:
            return
        run = self._link.run
        if self._state.stopping(run) and (error or not (result or {}).get("final")):
            return  # ended by the stop: not a result, evaluated again when the run continues
        outcome = (result or {}).get(OUTCOME)
        if not isinstance(outcome, Outcome):
            reason = (lost_reason(node, self._state.on_cluster) if error
                      else "trial ended without a result")
            outcome = dataclasses.replace(run.lost(job, reason), node=node)
        try:
            run.complete(job, outcome)
        except Exception as exc:  # noqa: BLE001 - Tune would only log it; the run raises it
            self._state.error = exc


def lost_reason(node: dict[str, Any] | None, on_cluster: bool) -> str:
    """Why a trial's worker vanished: its node is gone, or only its worker process. (In
    process, the node is this machine: only a worker can have been lost.)"""
    if not on_cluster:
        return WORKER_DIED
    if node is None:
        return WORKER_DIED + " before it said where it ran"
    return NODE_LOST if node_lost(_node_entry(node.get("node_id"))) else WORKER_DIED


def _node_entry(node_id: object) -> dict[str, Any] | None:
    return next((n for n in ray.nodes() if n.get("NodeID") == node_id), None)


class _ExecutorState:
    """What the searcher, the stopper and the watch share during one run."""

    def __init__(self, watch: NodeWatch, on_cluster: bool) -> None:
        self.on_cluster = on_cluster
        self.jobs: dict[str, Job] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.watch = watch
        self.failure: str | None = None
        """Why the run must stop (no node could run a trial for too long)."""
        self.error: Exception | None = None
        """What went wrong while a candidate was recorded (the run ends with it)."""

    def stopping(self, run: SearchRun) -> bool:
        return run.stop_requested or self.failure is not None or self.error is not None

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _ExecutorState._empty, ()

    @staticmethod
    def _empty() -> _ExecutorState:
        return _ExecutorState(NodeWatch({}, 0.0, ""), on_cluster=False)


class _StopWhenAsked(Stopper):
    """Ends the whole tuner once the run was asked to stop or the cluster cannot go on."""

    def __init__(self, link: _RunLink, state: _ExecutorState) -> None:
        self._link = link
        self._state = state

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self._state.stopping(self._link.run)


class _ClusterWatch(Callback):
    """Once a second: can some alive node still run a trial (and does the leaderboard file
    lag)? Also says when a trial whose worker or node was lost is tried again."""

    def __init__(self, link: _RunLink, state: _ExecutorState) -> None:
        self._link = link
        self._state = state
        self._last = 0.0

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        now = time.monotonic()
        if now - self._last < WATCH_EVERY_S or self._state.failure is not None:
            return
        self._last = now
        self._state.failure = self._state.watch.update(ray.nodes())
        self._link.run.leaderboard.flush_if_stale()  # rows waiting while candidates run

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any,
                         **info: Any) -> None:
        job = self._state.jobs.get(trial.trial_id)
        node = self._state.nodes.pop(trial.trial_id, None)
        if job is None:
            return
        where = "" if node is None else f" on {node.get('host')} (node {node.get('node_id')})"
        self._link.run.progress.write(
            f"candidate {job.number}: {lost_reason(node, self._state.on_cluster)}{where}; "
            "trying it again "
            f"(retry {trial.num_failures} of {self._link.run.config.retries})")


class RayExecutor:
    """Runs the search on Ray Tune; starts Ray in-process unless ``config.address`` is set."""

    def __init__(self, config: SearchConfig, signals: StopSignals | None = None) -> None:
        self.config = config
        self._signals = signals or StopSignals()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
            # The leaderboard is the record of every trial; Tune's own per-trial JSON/CSV/
            # TensorBoard logs would only duplicate it (and cannot log an Outcome).
            os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
            # Nor does a run resume from Tune's experiment state: saved once, at the end.
            os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(10**9))
            # Signals are ours (nas.run.interrupt): no Tune SIGINT handler.
            os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
        where = _start_ray(config.address, self._signals)
        self._started_ray = where is not None
        self.address = where or "this process"
        self._resources = self._trial_resources()

    def _trial_resources(self) -> dict[str, float]:
        profile = hardware_profile(self.config)
        resources: dict[str, float] = {}
        if profile.kind == "cuda" and self.config.objective == "train":
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

    def _watch(self, context: TrialContext) -> NodeWatch:
        return NodeWatch(ray_demand(self._resources_for(context)), self.config.node_timeout,
                         self.address)

    def time_reference(self, spec: ArchSpec, context: TrialContext) -> StepTiming:
        if context.surrogate is not None:
            return time_reference(spec, context)  # nothing to measure: no worker needed
        resources = self._resources_for(context)
        remote = ray.remote(time_reference).options(
            num_cpus=resources.pop("cpu"), num_gpus=resources.pop("gpu", 0.0), resources=resources or None
        )
        ref = remote.remote(spec, context)
        watch = self._watch(context)
        while not ray.wait([ref], timeout=WATCH_EVERY_S)[0]:
            failure = watch.update(ray.nodes())
            if failure is not None:
                ray.cancel(ref, force=True)
                raise ClusterError(failure)
        return ray.get(ref)

    def run(self, run: SearchRun) -> None:
        if run.remaining <= 0:
            return
        link = _RunLink(run)
        state = _ExecutorState(self._watch(run.context), self.config.address is not None)
        try:
            self._fit(run, link, state)
        finally:
            link.close()
        if state.error is not None:
            raise state.error
        if state.failure is not None and not run.stop_requested:
            raise ClusterError(state.failure)

    def _fit(self, run: SearchRun, link: _RunLink, state: _ExecutorState) -> None:
        early_stop = self.config.early_stop == "asha"
        trainable = tune.with_parameters(
            _trainable, context=run.context, data=run.setup.data, early_stop=early_stop,
            say_node=self.config.address is not None,  # in-process, a lost node is this one
        )
        trainable = tune.with_resources(trainable, self._resources_for(run.context))
        scheduler = None
        if early_stop:
            epochs = run.context.recipe.epochs
            scheduler = ASHAScheduler(time_attr="epoch", max_t=epochs,
                                      grace_period=asha_grace_epoch(epochs))
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=_DriverSearcher(link, state),
                scheduler=scheduler,
                num_samples=run.remaining,
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
                stop=_StopWhenAsked(link, state),
                callbacks=[_ClusterWatch(link, state)],
            ),
        )
        # A lost trial is said in one line (above) and recorded with its reason; Tune would
        # also log its traceback.
        tune_log = logging.getLogger("ray.tune.execution.tune_controller")
        level = tune_log.level
        tune_log.setLevel(logging.CRITICAL)
        try:
            with self._signals.graceful():
                tuner.fit()
        finally:
            tune_log.setLevel(level)

    def shutdown(self) -> None:
        if self._started_ray:
            ray.shutdown()


_INIT: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR,
                             log_to_driver=False)


def resolve_address(address: str) -> str:
    """``--address`` as ``HOST:PORT``: ``auto`` is what Ray itself would join (``RAY_ADDRESS``,
    the last ``ray start`` on this machine, or a Ray cluster running here). Raises
    :class:`ClusterError` if ``auto`` finds none, or if the address does not answer."""
    given = address
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address

        try:
            resolved = canonicalize_bootstrap_address("auto")
        except (ConnectionError, ValueError):
            resolved = None
        if not resolved:
            raise ClusterError(
                "--address auto found no running Ray cluster (looked at RAY_ADDRESS, the "
                "address the last `ray start` on this machine recorded, and the Ray processes "
                "running here); start one with `ray start --head`, or give --address HOST:PORT")
        address = resolved
    check_reachable(address, given)
    return address


def _join(given: str) -> str:
    """Join the cluster at ``given``; one :class:`ClusterError` line if it fails."""
    address = resolve_address(given)
    source = token_source()
    with _stderr_captured() as captured:
        if not os.environ.get(AUTH_MODE_VAR) and source is not None:
            # A token is present: use it, as Ray does itself for a cluster it finds on its
            # own (and have Ray read RAY_AUTH_MODE again: it read it when it was imported).
            from ray._private.authentication.authentication_token_setup import (
                maybe_enable_token_auth_if_token_available,
            )

            maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
        try:
            ray.init(address=address, **_INIT)
        except Exception as exc:  # noqa: BLE001 - every way of failing becomes one line
            said = f"{captured()}\n{exc!r}\n{exc.__cause__!r}"
            if "InvalidAuthToken" in said or "AuthenticationError" in said:
                raise auth_failure(address, source) from None
            raise ClusterError(f"could not join the Ray cluster at {address}: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                               ) from None
    return address


@contextmanager
def _stderr_captured() -> Iterator[Any]:
    """Send this process's file descriptor 2 to a temporary file for the block: Ray's core
    prints a warning per retry there while it connects. Yields a function that returns what
    was written."""
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)

        def text() -> str:
            sink.seek(0)
            return sink.read().decode("utf-8", "replace")

        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextmanager
def _sigterm_blocked_for_ray(signals: StopSignals) -> Iterator[None]:
    """Block SIGTERM in this thread while Ray starts its processes, which inherit the blocked
    signal: like SIGINT, which Ray blocks for them itself, a group-wide SIGTERM then leaves
    them to this process's clean stop (Ray ends them on shutdown: SIGTERM, then SIGKILL after
    a second). Starting Ray in the main thread replaces the SIGTERM handler, so ours is
    installed again before unblocking (in another thread Ray leaves the handlers alone)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
        if threading.current_thread() is threading.main_thread():
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
    started = _start_ray(address, signals) is not None
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
                        result = TaskLost(_task_failure(exc))
                    done(item, result)
            for ref in flying:
                ray.cancel(ref, force=True)
    finally:
        if started:
            ray.shutdown()


def _task_failure(exc: BaseException) -> str:
    """What a validation task's exception says, as a row's failure reason."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if exc.cause is not None else exc
        return f"{type(cause).__name__}: {str(cause).splitlines()[-1] if str(cause) else ''}"
    return f"worker died (retries exhausted): {type(exc).__name__}"


def _start_ray(address: str | None, signals: StopSignals) -> str | None:
    """Start Ray in this process, or join the cluster at ``address`` (token authentication
    included: :func:`_join`). Returns where it runs (``"this process"`` or the cluster's
    address), or None if Ray was running already (then it is not this call's to stop)."""
    if ray.is_initialized():
        return None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # No stack dump from Ray's core (absl's failure signal handler) when SIGTERM arrives:
    # signals are ours (nas.run.interrupt).
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    with _sigterm_blocked_for_ray(signals):
        if address is not None:
            return _join(address)
        # "local": always a new in-process instance, never a cluster that `ray start` left
        # running on this machine (which ray.init() would join).
        ray.init(address="local", num_cpus=os.cpu_count() or 1, **_INIT)
        return "this process"
