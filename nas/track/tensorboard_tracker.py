"""TensorBoard: event files under the job's folder, ``<folder>/tensorboard``.

The only module that writes TensorBoard event files, through torch's
``torch.utils.tensorboard.SummaryWriter`` (which needs the ``tensorboard`` package). Metrics
are scalars (``step``: the epoch, or a search's candidate count); parameters are a text
summary (``params``) and, for a search's candidates, TensorBoard's hparams table, each
candidate a run of its own under ``tensorboard/candidates/`` with its final metrics. A PNG
artifact becomes an image summary; any other file a text line naming it (it stays in the
job's folder beside the event files). A continued job writes a new event file into the same
folder, which TensorBoard reads as one run: ``tensorboard --logdir RUN/tensorboard``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.track.base import FINISHED, RunInfo, finite_metrics, plain_params

FOLDER = "tensorboard"
CANDIDATES = "candidates"


class TensorBoardTracker:
    """One TensorBoard run: one folder of event files (see the module docstring)."""

    def __init__(self, parent: Path | None = None) -> None:
        self._parent = parent
        self._writer: Any = None
        self.folder: Path | None = None
        self._params: dict[str, str] = {}
        self._last: dict[str, float] = {}

    def start_run(self, info: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if self._parent is None:
            self.folder = info.folder / FOLDER
        else:
            self.folder = self._parent / CANDIDATES / _safe(info.name)
        self._writer = SummaryWriter(log_dir=str(self.folder))

    def log_params(self, params: Mapping[str, Any]) -> None:
        values = plain_params(params)
        self._params.update(values)
        table = "\n".join(f"| {k} | `{v}` |" for k, v in values.items())
        self._writer.add_text("params", f"| name | value |\n|---|---|\n{table}")

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        for key, value in finite_metrics(metrics).items():
            self._writer.add_scalar(key, value, global_step=step or 0)
            if step is None:
                self._last[key] = value
        self._writer.flush()

    def log_artifact(self, path: Path) -> None:
        if path.suffix.lower() == ".png":
            from matplotlib.image import imread

            self._writer.add_image(path.stem, imread(str(path))[..., :3], dataformats="HWC")
        else:
            self._writer.add_text("artifacts", f"`{path.name}`: {path}")
        self._writer.flush()

    def child_run(self, info: RunInfo) -> TensorBoardTracker:
        assert self.folder is not None, "start_run comes first"
        child = TensorBoardTracker(parent=self.folder)
        child.start_run(info)
        return child

    def close(self, status: str = FINISHED) -> None:
        if self._writer is None:
            return
        if self._parent is not None and self._params and self._last:
            # The hparams table: a candidate's settings beside its final metrics.
            self._writer.add_hparams(self._params, self._last, run_name=".")
        self._writer.add_text("status", status)
        self._writer.close()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


__all__ = ["FOLDER", "TensorBoardTracker"]
