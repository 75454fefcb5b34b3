"""MLflow: a job is one run; a search's candidates are runs nested in it.

The only module that imports mlflow (on first use). MLflow's own conventions decide where runs
go: ``MLFLOW_TRACKING_URI`` (a ``file:`` folder, ``sqlite:///mlflow.db``, a server), else
MLflow's default store; ``MLFLOW_EXPERIMENT_NAME`` names the experiment (default
``effnas``). A continued job (the same search, training or validation run again) reopens its
run, found by the tag ``effnas.key``; parameters it already has keep their first value (MLflow
never changes a logged parameter) and a changed one is set as a tag of the same name.
Candidates are nested the way ``mlflow.start_run(nested=True)`` nests them (the tag
``mlflow.parentRunId``), through ``MlflowClient``: no global active run, any thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.track.base import FINISHED, RunInfo, finite_metrics, plain_params

EXPERIMENT = "effnas"
KEY_TAG = "effnas.key"
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
MAX_PARAMS = 100  # MLflow's limit per log_batch call
MAX_VALUE = 6000  # MLflow's longest parameter value


class MlflowTracker:
    """One MLflow run (see the module docstring)."""

    def __init__(self, client: Any = None, experiment_id: str | None = None,
                 parent: str | None = None) -> None:
        self._client = client
        self._experiment_id = experiment_id
        self._parent = parent
        self._run_id: str | None = None
        self._params: dict[str, str] = {}

    def start_run(self, info: RunInfo) -> None:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient()
            self._experiment_id = _experiment(self._client)
        tags = {**info.tags, KEY_TAG: info.key, "effnas.kind": info.kind}
        if self._parent is None:
            found = self._client.search_runs(
                [self._experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{info.key}'",
                max_results=1)
            if found:
                self._run_id = found[0].info.run_id
                self._params = dict(found[0].data.params)
                self._client.update_run(self._run_id, status="RUNNING")
                return
        else:
            tags[PARENT_TAG] = self._parent
        run = self._client.create_run(self._experiment_id, run_name=info.name, tags=tags)
        self._run_id = run.info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param, RunTag

        values = {k: v[:MAX_VALUE] for k, v in plain_params(params).items()}
        new = [Param(k, v) for k, v in values.items() if k not in self._params]
        changed = [RunTag(k, v) for k, v in values.items()
                   if k in self._params and self._params[k] != v]
        for start in range(0, len(new), MAX_PARAMS):
            self._client.log_batch(self._run, params=new[start:start + MAX_PARAMS])
        if changed:
            self._client.log_batch(self._run, tags=changed)
        self._params.update({p.key: p.value for p in new})

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step or 0) for k, v in finite_metrics(metrics).items()]
        if batch:
            self._client.log_batch(self._run, metrics=batch)

    def log_artifact(self, path: Path) -> None:
        self._client.log_artifact(self._run, str(path))

    def child_run(self, info: RunInfo) -> MlflowTracker:
        child = MlflowTracker(self._client, self._experiment_id, parent=self._run)
        child.start_run(info)
        return child

    def close(self, status: str = FINISHED) -> None:
        if self._run_id is not None:
            self._client.set_terminated(self._run_id, status=status)

    @property
    def _run(self) -> str:
        assert self._run_id is not None, "start_run comes first"
        return self._run_id


def _experiment(client: Any) -> str:
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name))


__all__ = ["EXPERIMENT", "KEY_TAG", "MlflowTracker"]
