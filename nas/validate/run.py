"""One call that runs (or continues) a validation: the library behind ``nas-validate``.

The order of work makes bad input cost nothing and leave nothing behind: the settings, the
search's folder (it exists, holds a finished search, no other process writes into it), the
candidates (enough ``ok`` rows for ``--k``), the recipes and the hardware are checked first;
then the search's folder (and ``--out``) are claimed with the same one-writer lock a search
takes, the data is loaded as the search loaded it, the jobs are planned, and only then are
the settings written. Every finished job is a row of ``validation.parquet`` at once (a
signal waits for the row), so a validation killed at any moment loses at most the jobs in
flight: the same command continues it and runs no finished job again. At the end come
``validation.json`` (the statistics, ``results.fidelity``), ``validation.png`` and the
long-trained candidates in the search's Optuna journal (study ``validation``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.run.claim import FolderClaim
from nas.run.interrupt import StopSignals
from nas.run.lock import check_free
from nas.run.progress import Bar
from nas.run.proxy_file import apply_proxy_fields, read_proxy_fields
from nas.run.settings import ConfigError
from nas.search.folder import RunFolder
from nas.search.record import RunRecord
from nas.search.reward import RewardConfig
from nas.track.jobs import report_validation
from nas.train.plan import load_recipe_file
from nas.validate.config import IDENTITY, LONG_RECIPES, ValidateConfig
from nas.validate.folder import ValidationFolder
from nas.validate.jobs import JobContext, held_out, run_job, search_row
from nas.validate.plan import (
    LONG,
    Candidate,
    JobPlan,
    ValidationJob,
    long_epochs,
    make_jobs,
    select_candidates,
)
from nas.validate.record import ValidationSettings
from nas.validate.rows import JobOutcome, job_row
from proxy_train.data import load_data
from proxy_train.hardware import PROFILES, HardwareProfile, resolve_hardware
from proxy_train.recipe import Recipe
from results.fidelity import scores, statistics, verdict
from results.leaderboard import Leaderboard
from results.validation import PLOT_FILE, STATS_FILE, ValidationTable, read_validation, write_json
from results.validation_plot import plot_validation
from search_space.messages import counted

Say = Callable[[str], None]
ANOTHER_SEARCH = "give another search's folder"
"""The other way out of a damaged search folder: RUN is the search's, ``--out`` the
validation's own."""


@dataclass(frozen=True, slots=True)
class ValidationSummary:
    out: Path
    statistics: dict[str, Any]
    verdict: str
    ran: int
    """Jobs this command ran."""
    already: int
    """Jobs already finished (or copied) when it started."""


def run_validation(config: ValidateConfig, *, say: Say,
                   signals: StopSignals | None = None) -> ValidationSummary:
    """Validate the proxy of the search in ``config.run`` (see the module docstring).

    Raises ``NasError`` for bad input and ``KeyboardInterrupt`` (``nas.run.interrupt.Interrupted``)
    on SIGINT / SIGTERM."""
    signals = signals or StopSignals()
    run_dir, record = _check_run(config.run)
    folder = ValidationFolder(config.out_dir)
    stored = folder.check()
    profile = _profile(config, record)
    proxy_fields = None if config.proxy is None else read_proxy_fields(config.proxy)
    long_file = None if config.recipe in LONG_RECIPES else load_recipe_file(config.recipe)
    reused = _read_reuse(config.reuse)
    candidates = select_candidates(Leaderboard(run_dir).read(), config.k, config.seed,
                                   str(run_dir))
    search, search_recipe = record.config, Recipe.from_dict(record.recipe or {})  # _check_run
    proxy = apply_proxy_fields(search_recipe, proxy_fields)
    settings = _settings(config, record, candidates, proxy, search_recipe)
    if stored is not None:
        folder.check_same(stored, settings.identity())  # refused before the claim
    with _claimed(run_dir, folder):
        folder.resume(settings.identity())
        say(f"loading data {search['data']} ...")
        data = load_data(search["data"], seed=int(search["seed"]), say=say,
                         progress=config.progress)
        threads = _threads(config, profile)
        plan = make_jobs(config, candidates, search_recipe, proxy, search["data"],
                         int(search["seed"]), data.resolution, cuda=profile.kind == "cuda",
                         threads=threads, long_file=long_file)
        folder.record(settings)
        context = JobContext(data, config.hardware or search["hardware"], threads,
                             RewardConfig(w=float(search["reward_w"]),
                                          estimate=str(record.setting("reward_accuracy")),
                                          v=float(search["reward_v"]),
                                          ref_step_time=float(record.reference.step_time_ms),
                                          ref_params=int(record.reference.params or 1),
                                          reference_arch=record.reference.arch or ""))
        ran, already = _run(config, plan, context, folder.table, reused, signals, profile, say)
        stats = statistics(scores(folder.table.rows()), seed=config.seed)
        _write_results(folder, run_dir, settings, stats)
        report_validation(config.trackers, folder.path, settings.to_document(), stats,
                          verdict(stats), [folder.path / PLOT_FILE, folder.path / STATS_FILE])
    return ValidationSummary(folder.path, stats, verdict(stats), ran, already)


def _run(config: ValidateConfig, plan: JobPlan, context: JobContext, table: ValidationTable,
         reused: dict[str, dict[str, Any]], signals: StopSignals, profile: HardwareProfile,
         say: Say) -> tuple[int, int]:
    """Copy what is finished, run the rest; returns the jobs run and those already finished."""
    for line in _plan_lines(plan, context, config):
        say(line)
    before = len(table)
    already = _copy_finished(table, plan, context, reused)
    waiting = [job for job in plan.jobs if job.key not in table.keys()]
    if before:
        say(f"continuing: {already} of "
            f"{counted(len(plan.jobs) + len(plan.copied), 'job')} already finished")
    elif len(table):
        say(f"{counted(len(table), 'job')} copied: the search's own proxy runs"
            + (" and finished jobs of --reuse" if reused else ""))
    _run_jobs(config, waiting, context, table, signals, profile)
    return len(waiting), already


def _write_results(folder: ValidationFolder, run_dir: Path, settings: ValidationSettings,
                   stats: dict[str, Any]) -> None:
    """``validation.json``, ``validation.png`` and the journal's ``validation`` study."""
    rows = folder.table.rows()
    document = {"verdict": verdict(stats), "statistics": stats,
                "settings": settings.to_document(), "rows": len(rows)}
    write_json(folder.path / STATS_FILE, document)
    plot_validation(rows, stats, folder.path / PLOT_FILE)
    _record_in_journal(run_dir, rows, settings)


def _check_run(path: str) -> tuple[Path, RunRecord]:
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise ConfigError(f"RUN {path!r} is not a folder; give the folder of a finished search")
    record = RunFolder(run_dir, "nas-validate", elsewhere=ANOTHER_SEARCH).read()
    if record is None:
        raise ConfigError(f"RUN {path!r} holds no search (no run.json and no leaderboard "
                          "settings)")
    if record.recipe is None or record.reference.params is None:
        raise ConfigError(f"RUN {path!r}: its run settings have no proxy recipe or no "
                          "reference params; give the folder of a search this version ran")
    if record.setting("objective") != "train":
        raise ConfigError(f"RUN {path!r} is a surrogate run (--objective surrogate): nothing "
                          "was trained, so there is no proxy to validate; give a search that "
                          "trained its candidates")
    check_free(run_dir)
    return run_dir, record


def _profile(config: ValidateConfig, record: RunRecord) -> HardwareProfile:
    name = config.hardware or str(record.config["hardware"])
    if config.address is None:
        return resolve_hardware(name).profile
    if name.lower() not in PROFILES:
        raise ConfigError(f"unknown hardware {name!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[name.lower()]


def _read_reuse(path: str | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return {}
    rows, _ = read_validation(path)
    return {str(r["job_key"]): r for r in rows if r["status"] == "ok"}


@contextmanager
def _claimed(run_dir: Path, folder: ValidationFolder) -> Iterator[None]:
    """Hold the search folder's lock and the validation folder's (one lock where they are
    one folder); the search folder is kept, like the validation's, once it records."""
    search = None if folder.path.resolve() == run_dir.resolve() \
        else FolderClaim(run_dir, "nas-validate")
    with ExitStack() as stack:
        if search is not None:
            stack.enter_context(search.hold())
        stack.enter_context(folder.claim())
        try:
            yield
        finally:
            if search is not None and folder.kept:
                search.keep()


def _threads(config: ValidateConfig, profile: HardwareProfile) -> int:
    if config.cpus_per_job is not None:
        return max(1, int(config.cpus_per_job))
    if config.address is None:
        return max(1, (os.cpu_count() or 1) // config.workers)
    return 1 if profile.kind == "cuda" else 2


def _settings(config: ValidateConfig, record: RunRecord, candidates: list[Candidate],
              proxy: Recipe, search_recipe: Recipe) -> ValidationSettings:
    defining = {name: getattr(config, name) for name in IDENTITY}
    defining["epochs"] = long_epochs(config, search_recipe)
    defining["proxy"] = {k: v for k, v in proxy.to_dict().items()
                         if k not in ("cpu_threads", "seed")}
    return ValidationSettings(run_id=record.run_id, defining=defining,
                              candidates=tuple(c.arch_hash for c in candidates),
                              config=config.to_dict(), long_epochs=defining["epochs"])


def _plan_lines(plan: JobPlan, context: JobContext, config: ValidateConfig) -> list[str]:
    data = context.data
    split, held = held_out(data)
    long = next(job.recipe for job in plan.jobs if job.kind == LONG)
    sizes = sorted({int(stage.resolution or 0) for stage in long.plan(data.resolution)})
    return [
        f"validating {counted(len(plan.candidates), 'candidate')}: the proxy "
        f"({counted(plan.proxy.epochs, 'epoch')} at {plan.proxy.train_resolution(data.resolution)}"
        f" px) {counted(config.seeds, 'more time')}"
        + (" beside the search's own run" if plan.copied else ""),
        f"long training: {_long_name(config.recipe)}, {counted(plan.long_epochs, 'epoch')}, "
        f"{sizes[0]}->{sizes[-1]} px, evaluated at {long.eval_size(data.resolution)} px on "
        f"the {split} split ({counted(len(held), 'image')}), {counted(config.long_seeds, 'seed')}",
        *plan.notes,
    ]


def _long_name(recipe: str) -> str:
    if recipe == "proxy":
        return "the proxy's recipe on whole epochs at full size (nas-train's plan)"
    return f"nas-train's {recipe} recipe"


def _copy_finished(table: ValidationTable, plan: JobPlan, context: JobContext,
                   reused: dict[str, dict[str, Any]]) -> int:
    """Add the search's own runs and the reusable rows not in the table yet; returns how many
    jobs are finished now."""
    done = table.keys()
    for job in plan.copied:
        if job.key not in done:
            table.append(search_row(job, context))
    for job in plan.jobs:
        if job.key not in done and job.key in reused:
            table.append(_reused(reused[job.key], job))
    keys = table.keys()
    return sum(job.key in keys for job in (*plan.copied, *plan.jobs))


def _reused(row: dict[str, Any], job: ValidationJob) -> dict[str, Any]:
    """Another validation's row for the same job, as this validation's."""
    return {**row, "source": "reused", "replica": job.replica,
            "search_rank": job.candidate.search_rank}


def _run_jobs(config: ValidateConfig, jobs: list[ValidationJob], context: JobContext,
              table: ValidationTable, signals: StopSignals,
              profile: HardwareProfile) -> None:
    if not jobs:
        return
    bar = Bar(len(jobs), desc="jobs", unit="job", enabled=config.progress)

    def done(job: ValidationJob, row: Any) -> None:
        from nas.search.ray_executor import TaskLost  # only reached on the Ray executor

        if isinstance(row, TaskLost):
            row = _lost(job, context, row.reason)
        table.append(row)
        bar.set_postfix_str(f"last: {job.kind} {job.candidate.arch_hash} "
                            f"{'failed' if row['status'] == 'failed' else row['accuracy']}")
        bar.update(1)

    try:
        if config.executor == "inline":
            for job in jobs:
                row = run_job(job, context)
                with signals.graceful():
                    table.append(row)
                    bar.update(1)
        else:
            from nas.search.ray_executor import run_tasks

            run_tasks(run_job, jobs, shared=context, done=done, workers=config.workers,
                      cpus=float(context.threads or 1),
                      gpus=1.0 if profile.kind == "cuda" else 0.0, address=config.address,
                      signals=signals)
    finally:
        bar.close()


def _lost(job: ValidationJob, context: JobContext, reason: str) -> dict[str, Any]:
    return job_row(job, JobOutcome.lost(reason), context)


def _record_in_journal(run_dir: Path, rows: list[dict[str, Any]],
                       settings: ValidationSettings) -> None:
    """Each candidate whose long runs all finished, as a trial of the journal's
    ``validation`` study (value: its mean long accuracy)."""
    from nas.search.study_journal import record_validation

    tag = json.dumps(settings.defining, sort_keys=True, default=str)
    by_hash: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_hash.setdefault(str(row["arch_hash"]), []).append(row)
    for arch_hash, mine in by_hash.items():
        long = [r for r in mine if r["kind"] == LONG]
        if not long or any(r["status"] != "ok" for r in long):
            continue
        proxy = [r["accuracy"] for r in mine if r["kind"] != LONG and r["status"] == "ok"]
        accuracy = sum(r["accuracy"] for r in long) / len(long)
        record_validation(run_dir, arch=str(long[0]["arch"]), accuracy=accuracy,
                          key=f"{arch_hash}@{_short(tag)}",
                          attrs={"search_rank": long[0]["search_rank"],
                                 "long_accuracies": json.dumps([r["accuracy"] for r in long]),
                                 "proxy_accuracy_mean": sum(proxy) / len(proxy) if proxy
                                 else None,
                                 "long_epochs": settings.long_epochs,
                                 "eval_split": long[0]["eval_split"]})


def _short(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


__all__ = ["ValidationSummary", "run_validation"]
