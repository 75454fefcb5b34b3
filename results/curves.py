"""``curves.png`` of a training run: accuracy and loss over epochs, stages marked.

Drawn with matplotlib's object API on an Agg canvas, like the search's plots
(``results.report``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

CURVES_PLOT = "curves.png"
TEST_OFFSET = 0.3
"""How far right of the last epoch the test marker sits (inside the last stage's band)."""


def plot_curves(metrics: pd.DataFrame, path: str | os.PathLike[str], *,
                title: str = "", test_top1: float | None = None) -> Path:
    """Minival top-1 (trained and EMA weights) and training loss per epoch, with a shaded
    band and a label (stage, image size) for every stage; ``test_top1`` as a marker just after
    the last epoch (beside the last minival points, not on them). Epoch ticks are whole
    numbers, also after a run of one epoch; the legend sits below the axes, off the points."""
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    acc, loss = fig.subplots(1, 2)
    epochs = metrics["epoch"].to_numpy()
    acc.plot(epochs, metrics["minival_top1"], marker="o", ms=3, label="minival, trained weights")
    if metrics["minival_top1_ema"].notna().any():
        acc.plot(epochs, metrics["minival_top1_ema"].astype(float), marker="s", ms=3,
                 label="minival, EMA weights")
    if test_top1 is not None and len(epochs):
        acc.scatter([epochs[-1] + TEST_OFFSET], [test_top1], marker="*", s=120, color="black",
                    zorder=5, label=f"test {test_top1:.3f} (after the last epoch)")
    loss.plot(epochs, metrics["train_loss"], marker="o", ms=3, color="tab:red")
    for ax in (acc, loss):
        _mark_stages(ax, metrics)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if len(epochs):  # each epoch's band whole, the test marker inside the last one
            ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        ax.ticklabel_format(axis="y", useOffset=False)  # no offset text over the stage labels
        ax.grid(alpha=0.3)
    acc.set_ylabel("top-1")
    acc.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False,
               ncol=2)
    loss.set_ylabel("training loss")
    fig.suptitle(title or "training curves")
    target = Path(path)
    FigureCanvasAgg(fig)
    fig.savefig(target, dpi=110, bbox_inches="tight")
    return target


def _mark_stages(ax: Axes, metrics: pd.DataFrame) -> None:
    """Alternate shading per stage, labelled with the stage and its image size."""
    for i, (stage, rows) in enumerate(metrics.groupby("stage", sort=True)):
        start, end = rows["epoch"].min() - 0.5, rows["epoch"].max() + 0.5
        if i % 2:
            ax.axvspan(start, end, color="grey", alpha=0.12, lw=0)
        ax.text((start + end) / 2, 1.0, f"stage {stage}\n{int(rows['image_size'].iloc[0])} px",
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7)


__all__ = ["CURVES_PLOT", "plot_curves"]
