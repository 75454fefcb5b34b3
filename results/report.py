"""A run's summary table and plots, from a leaderboard DataFrame.

Plots are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend
switch), so they work headless and do not disturb an interactive session.
"""

from __future__ import annotations

import os
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from results.pareto import pareto_mask
from results.schema import STATUSES
from search_space.codec import decode
from search_space.messages import counted
from search_space.spec import FUSED

REWARD_PLOT = "reward.png"
PARETO_PLOT = "pareto.png"


def _floats(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["status"] == "ok") & df["reward"].notna()]


def status_counts(df: pd.DataFrame) -> str:
    """``N candidates: a ok, b failed, c stopped``."""
    counts = df["status"].value_counts() if len(df) else pd.Series(dtype=int)
    parts = [f"{int(counts.get(s, 0))} {s}" for s in STATUSES]
    extra = [f"{int(n)} {s}" for s, n in counts.items() if s not in STATUSES]
    return f"{counted(len(df), 'candidate')}: " + ", ".join(parts + extra)


def block_pattern(arch: str) -> str:
    """Each stage's block type at a glance, one letter per stage (``F`` Fused-MBConv, ``M``
    MBConv), a space where the type changes: ``FFF MMM`` for EfficientNetV2-S."""
    letters = [("F" if stage.block == FUSED else "M") for stage in decode(arch).stages]
    return " ".join("".join(run) for _, run in groupby(letters))


def summary_table(df: pd.DataFrame, top: int = 10) -> str:
    """Plain-text table of the ``top`` ok candidates by reward (with their
    :func:`block_pattern`), then a status-count line."""
    ok = _ok(df).sort_values(["reward", "trial_id"], ascending=[False, True],
                             kind="stable").head(top)
    header = ("rank", "reward", "accuracy", "step ms", "params M", "MACs G", "blocks",
              "arch hash")
    lines = [header]

    def fmt(value: Any, spec: str, scale: float = 1.0) -> str:
        if value is None or pd.isna(value):
            return "-"
        return format(float(value) / scale, spec)

    for rank, (_, r) in enumerate(ok.iterrows(), start=1):
        lines.append((str(rank), fmt(r["reward"], ".4f"), fmt(r["accuracy"], ".4f"),
                      fmt(r["step_time_ms"], ".2f"), fmt(r["params"], ".2f", 1e6),
                      fmt(r["macs"], ".3f", 1e9), block_pattern(str(r["arch"])),
                      str(r["arch_hash"])))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.rjust(w) if i < 6 else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in lines]
    if len(lines) == 1:
        text.append("(no successful candidates)")
    text.append(status_counts(df))
    return "\n".join(text)


def plot_run(df: pd.DataFrame, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Save ``reward.png`` (reward per trial with the best-so-far line) and ``pareto.png``
    (accuracy vs step time, colour = params, and accuracy vs params, colour = step time; the
    Pareto front highlighted in both) into ``out_dir``.
    Works with failed rows and with no ok rows at all (the plot then says so)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [_reward_plot(df, out / REWARD_PLOT), _pareto_plot(df, out / PARETO_PLOT)]


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def _legend_outside(ax: Axes, *, below: bool = False) -> None:
    """The legend beside (or below) the axes, never over a point."""
    if below:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, frameon=False)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def is_surrogate(df: pd.DataFrame) -> bool:
    """Whether the rows come from a surrogate run (nothing trained or timed)."""
    return len(df) > 0 and bool((df["objective"] == "surrogate").all())


def _names(df: pd.DataFrame) -> tuple[str, str]:
    """What the accuracy and step-time axes show: measured, or the surrogate's."""
    if is_surrogate(df):
        return "surrogate accuracy", "surrogate step time (ms)"
    return "proxy accuracy", "training step time (ms)"


def _reward_plot(df: pd.DataFrame, path: Path) -> Path:
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    order = df.sort_values("trial_id", kind="stable")
    ok = _ok(order)
    failed = order[order["status"] != "ok"]
    if len(ok):
        x, y = _floats(ok["trial_id"]), _floats(ok["reward"])
        ax.scatter(x, y, s=14, alpha=0.6, label="ok")
        ax.step(x, np.maximum.accumulate(y), where="post", color="C3", label="best so far")
    else:
        _no_data(ax, "no successful candidates")
    if len(failed):
        ax.plot(_floats(failed["trial_id"]), [ax.get_ylim()[0]] * len(failed), "x",
                color="0.5", label="failed / stopped")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("reward  A·S^w·P^v" + (" (surrogate objective)" if is_surrogate(df) else ""))
    ax.set_title(status_counts(df))
    if len(ok) or len(failed):
        _legend_outside(ax)
    return _save(fig, path)


def _pareto_plot(df: pd.DataFrame, path: Path) -> Path:
    return _save(pareto_figure(df), path)


def pareto_figure(df: pd.DataFrame) -> Figure:
    """Accuracy vs step time (colour: params) and accuracy vs params (colour: step time) of
    the ok rows, the Pareto front on all three objectives ringed in both panels."""
    fig = Figure(figsize=(13, 4.5))
    by_time, by_params = fig.subplots(1, 2)
    ok = df[(df["status"] == "ok") & df["accuracy"].notna() & df["step_time_ms"].notna()]
    if len(ok):
        acc, ms, params = (_floats(ok[c]) for c in ("accuracy", "step_time_ms", "params"))
        front = np.asarray(pareto_mask(acc, ms, params))
        _front_panel(fig, by_time, ms, acc, front, colour=params / 1e6,
                     colour_label="params (M)", x_name="step time")
        _front_panel(fig, by_params, params / 1e6, acc, front, colour=ms,
                     colour_label="step time (ms)", x_name="params")
    else:
        for ax in (by_time, by_params):
            _no_data(ax, "no successful candidates")
    accuracy, step_time = _names(df)
    by_time.set_xlabel(step_time)
    by_params.set_xlabel("parameters (M)")
    for ax, name in ((by_time, "step time"), (by_params, "params")):
        ax.set_ylabel(accuracy)
        ax.set_title(f"accuracy vs {name}")
    return fig


def _front_panel(fig: Figure, ax: Axes, x: np.ndarray, acc: np.ndarray, front: np.ndarray, *,
                 colour: np.ndarray, colour_label: str, x_name: str) -> None:
    """Candidates coloured by the third objective, the 3-D front ringed, and the 2-D front
    of this view (best accuracy reachable at each x) as a dashed step line."""
    points = ax.scatter(x, acc, c=colour, cmap="viridis", s=18)
    fig.colorbar(points, ax=ax, label=colour_label)
    ax.plot(x[front], acc[front], "o", mfc="none", color="C3", ms=9,
            label="Pareto front (accuracy, step time, params)")
    flat = np.asarray(pareto_mask(acc, x, np.zeros_like(x)))
    order = np.argsort(x[flat])
    ax.step(x[flat][order], acc[flat][order], where="post", color="C3", lw=1, ls="--",
            label=f"front of accuracy vs {x_name}")
    _legend_outside(ax, below=True)
