"""The per-epoch record of a training run: ``metrics.parquet``, one row per finished epoch.

Columns (in order): ``epoch`` and ``stage`` (1-based), ``image_size`` (training),
``randaug``, ``mixup``, ``dropout`` (the stage's regularization), ``lr`` (of the epoch's last
step), ``train_loss`` (mean of the epoch), ``minival_top1`` and ``minival_top1_ema`` (at the
eval size, trained and EMA weights; the latter null without an EMA), ``images_per_s``
(training throughput) and ``epoch_time_s`` (training and evaluation). pandas, DuckDB and
Polars read the file directly; it is rewritten whole and atomically after every epoch.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from proxy_train.files import atomic_write
from results.errors import MetricsError

METRICS_FILE = "metrics.parquet"
COLUMNS: dict[str, str] = {
    "epoch": "int64", "stage": "int64", "image_size": "int64", "randaug": "float64",
    "mixup": "float64", "dropout": "float64", "lr": "float64", "train_loss": "float64",
    "minival_top1": "float64", "minival_top1_ema": "Float64", "images_per_s": "float64",
    "epoch_time_s": "float64",
}
_FROM_STATS = {"image_size": "resolution", "randaug": "randaug_magnitude",
               "mixup": "mixup_alpha"}


def metrics_frame(history: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The table of a run's epochs from ``proxy_train.loop.EpochStats`` as dicts."""
    rows = [{c: e[_FROM_STATS.get(c, c)] for c in COLUMNS} for e in history]
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(COLUMNS)


def write_metrics(path: str | os.PathLike[str], history: Iterable[Mapping[str, Any]]) -> Path:
    frame = metrics_frame(history)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def read_metrics(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a metrics file; one that is not ours raises ``MetricsError``."""
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise MetricsError(f"metrics file {str(path)!r} not found") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
        raise MetricsError(f"{path} is not a readable Parquet file ({exc})") from None
    if list(frame.columns) != list(COLUMNS):
        raise MetricsError(f"{path} is not a training metrics file (columns "
                               f"{list(frame.columns)})")
    return frame


__all__ = ["COLUMNS", "METRICS_FILE", "metrics_frame", "read_metrics", "write_metrics"]
