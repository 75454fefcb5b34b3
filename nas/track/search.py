"""A search as the trackers see it: one run for the search, a child run per candidate.

The driver calls :meth:`SearchTracking.candidate` with every row it records (whatever the
executor) and the run ends with :meth:`SearchTracking.close`. The search's run holds the
settings, after every candidate its reward, accuracy and the best reward so far (step: the
candidates finished), and at the end the counts (``finished``, ``ok``, ``failed``) and the files
(plots, ``best.json``). A final metric never shares a name with a stepped one. A
candidate's run holds its spec string, hash, number, seed, status and failure reason as
parameters; its interim accuracy and reward after every epoch (step: the epoch); and its
final metrics (accuracy, reward, step time, params, MACs and their normalized values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.track.base import FAILED, FINISHED, RunInfo, Tracker, run_key
from nas.track.guard import Warn, open_trackers, warn_on_stderr

Interim = tuple[int, float, float | None]
"""``(epoch, accuracy, reward)`` after one epoch of a candidate's proxy training."""
PARAMS = ("arch", "arch_hash", "number", "seed", "status", "failure_reason", "strategy",
          "objective", "proxy_resolution", "timing_resolution", "hardware", "host")
METRICS = ("accuracy", "reward", "step_time_ms", "step_time_norm", "params", "params_norm",
           "macs", "epochs", "wall_time_s")


class SearchTracking:
    """The trackers of one search (none: every call costs nothing)."""

    def __init__(self, names: Sequence[str], *, run_dir: Path, run_id: str,
                 settings: Mapping[str, Any], warn: Warn = warn_on_stderr) -> None:
        self.key = run_key("search", Path(run_dir).resolve(), run_id)
        self._folder = Path(run_dir)
        info = RunInfo(kind="search", name=f"search {self._folder.name}", key=self.key,
                       folder=self._folder, tags={"effnas.run_id": run_id})
        self.trackers = open_trackers(names, info, warn=warn)
        if self.trackers:
            params = flatten(settings)
            self.trackers.submit(lambda tracker: tracker.log_params(params))

    def candidate(self, row: Mapping[str, Any], interim: Sequence[Interim], *,
                  finished: int, best_reward: float | None) -> None:
        """Log one recorded row: its child run, and the search's progress."""
        if not self.trackers:
            return
        params = {name: row.get(name) for name in PARAMS}
        metrics = {name: row.get(name) for name in METRICS}
        status = str(row["status"])
        info = RunInfo(kind="candidate", name=f"{int(row['number']):04d}-{row['arch_hash']}",
                       key=run_key(self.key, row["number"], row["arch_hash"]),
                       folder=self._folder, group=self.key,
                       tags={"effnas.status": status, "effnas.arch_hash": str(row["arch_hash"])})
        progress = {"reward": row.get("reward"), "accuracy": row.get("accuracy"),
                    "best_reward": best_reward}

        def log(tracker: Tracker) -> None:
            child = tracker.child_run(info)
            child.log_params(params)
            for epoch, accuracy, reward in interim:
                child.log_metrics({"interim_accuracy": accuracy, "interim_reward": reward},
                                  step=epoch)
            child.log_metrics(metrics)
            child.close(FAILED if status == "failed" else FINISHED)
            tracker.log_metrics(progress, step=finished)

        self.trackers.submit(log)

    def close(self, status: str = FINISHED, *, summary: Mapping[str, Any] | None = None,
              files: Sequence[Path] = ()) -> None:
        """End the search's run: its summary metrics and files (those that exist)."""
        if not self.trackers:
            return
        metrics = dict(summary or {})
        present = [Path(f) for f in files if Path(f).is_file()]

        def log(tracker: Tracker) -> None:
            tracker.log_metrics(metrics)
            for path in present:
                tracker.log_artifact(path)

        self.trackers.submit(log)
        self.trackers.close(status)


def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level of dotted names (``reference.step_time_ms``)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = ",".join(str(v) for v in value)
        else:
            out[name] = value
    return out


__all__ = ["Interim", "SearchTracking", "flatten"]
