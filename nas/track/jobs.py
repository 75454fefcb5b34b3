"""A training (``nas-train``) and a validation (``nas-validate``) as the trackers see them.

A training is one run: its settings as parameters, every epoch's metrics (the columns of
``metrics.parquet``: stage, image size and regularization among them, so each stage change
shows as a step) with the epoch as step, and at the end its result and files (``curves.png``,
``model.pt``). A validation is one run: its settings, each statistic's Kendall τ (with its
interval, Spearman's ρ and n) and the verdict, and its files (``validation.png``,
``validation.json``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.track.base import FAILED, FINISHED, KILLED, RunInfo, Tracker, run_key
from nas.track.guard import Trackers, Warn, open_trackers, warn_on_stderr
from nas.track.search import flatten

EPOCH_METRICS = ("stage", "resolution", "randaug_magnitude", "mixup_alpha", "dropout", "lr",
                 "train_loss", "minival_top1", "minival_top1_ema", "images_per_s",
                 "epoch_time_s")
"""What an epoch logs of ``proxy_train.loop.EpochStats`` (as ``metrics.parquet`` names it)."""
_NAMES = {"resolution": "image_size", "randaug_magnitude": "randaug", "mixup_alpha": "mixup"}


def open_training(names: Sequence[str], folder: Path, record: Mapping[str, Any], *,
                  warn: Warn = warn_on_stderr) -> Trackers:
    """The run of the training described by ``record`` (``train.json``'s content)."""
    started = record.get("provenance", {}).get("started_at", "")
    info = RunInfo(kind="train", name=f"train {Path(folder).name}",
                   key=run_key("train", Path(folder).resolve(), started), folder=Path(folder),
                   tags={"effnas.arch_hash": str(record.get("model", {}).get("hash", ""))})
    trackers = open_trackers(names, info, warn=warn)
    if trackers:
        params = flatten({k: record[k] for k in ("config", "model", "data") if k in record})
        trackers.submit(lambda tracker: tracker.log_params(params))
    return trackers


@dataclass
class JobEnd:
    """What a job's run ends with: set by the job as it learns it."""

    trackers: Trackers
    result: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


@contextmanager
def tracked(trackers: Trackers) -> Iterator[JobEnd]:
    """End the job's run however the block ends: finished, failed (an exception) or killed
    (``KeyboardInterrupt``), with the result and files the block set."""
    end = JobEnd(trackers)
    status = FAILED
    try:
        yield end
        status = FINISHED
    except KeyboardInterrupt:
        status = KILLED
        raise
    finally:
        close_job(trackers, status, result=end.result, files=end.files)


def training_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """A training's result (``train.json``'s ``result``) without what its last epoch logged
    already: a final value never shares a name with a per-epoch one."""
    per_epoch = {_NAMES.get(k, k) for k in EPOCH_METRICS}
    return {k: v for k, v in result.items() if k not in per_epoch}


def log_epoch(trackers: Trackers, stats: Mapping[str, Any]) -> None:
    """One finished epoch (an ``EpochStats`` as a dict)."""
    if not trackers:
        return
    metrics = {_NAMES.get(k, k): stats.get(k) for k in EPOCH_METRICS}
    epoch = int(stats["epoch"])
    trackers.submit(lambda tracker: tracker.log_metrics(metrics, step=epoch))


def close_job(trackers: Trackers, status: str = FINISHED, *,
              result: Mapping[str, Any] | None = None, files: Sequence[Path] = ()) -> None:
    """End a job's run: its final metrics and the files that exist."""
    if not trackers:
        return
    metrics = dict(result or {})
    present = [Path(f) for f in files if Path(f).is_file()]

    def log(tracker: Tracker) -> None:
        tracker.log_metrics(metrics)
        for path in present:
            tracker.log_artifact(path)

    trackers.submit(log)
    trackers.close(status)


def report_validation(names: Sequence[str], folder: Path, settings: Mapping[str, Any],
                      statistics: Mapping[str, Any], verdict: str, files: Sequence[Path], *,
                      warn: Warn = warn_on_stderr) -> None:
    """A finished validation as one run (``settings`` as ``results.validation`` stores
    them, ``statistics`` as ``results.fidelity.statistics`` returns them)."""
    if not names:
        return
    run_id = str(settings.get("run_id", ""))
    info = RunInfo(kind="validate", name=f"validate {Path(folder).name}",
                   key=run_key("validate", Path(folder).resolve(), run_id,
                               flatten(settings.get("identity", {}))),
                   folder=Path(folder), tags={"effnas.run_id": run_id})
    trackers = open_trackers(names, info, warn=warn)
    params = {**flatten(settings.get("config", {})), "verdict": verdict,
              "candidates": ",".join(settings.get("candidates", []))}
    trackers.submit(lambda tracker: tracker.log_params(params))
    close_job(trackers, result=tau_metrics(statistics), files=files)


def tau_metrics(statistics: Mapping[str, Any]) -> dict[str, Any]:
    """Each τ line's numbers as ``<statistic>.tau`` (``.tau_low``, ``.tau_high``, ``.rho``,
    ``.n``); and where the proxy's best and the search's pick rank in the long training."""
    out: dict[str, Any] = {}
    for name, found in statistics.items():
        if not isinstance(found, Mapping) or "tau" not in found:
            continue
        low, high = (list(found.get("tau_ci") or []) + [None, None])[:2]
        out.update({f"{name}.tau": found["tau"], f"{name}.tau_low": low,
                    f"{name}.tau_high": high, f"{name}.rho": found.get("rho"),
                    f"{name}.n": found.get("n")})
    best = statistics.get("best") or {}
    for key in ("proxy_best", "search_best"):
        if isinstance(best.get(key), Mapping):
            out[f"{key}.long_rank"] = best[key].get("long_rank")
    return out


__all__ = ["JobEnd", "close_job", "log_epoch", "open_training", "report_validation",
           "tau_metrics", "tracked", "training_result"]
