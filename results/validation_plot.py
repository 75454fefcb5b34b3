"""``validation.png``: does the proxy rank candidates like long training?

Left, the ranks (1 = best) of the validated candidates by their mean proxy accuracy (x) and
by their mean long-training accuracy (y), the diagonal where they would agree, each point
labelled with the candidate's rank in the search; Kendall's tau of a single proxy run
against the long training, with its interval, in the title. Right, the accuracies themselves,
each bar spanning the candidate's runs (proxy seeds across, long seeds up), so the noise of
both rulers is visible. Drawn with matplotlib's object API on an Agg canvas, like the
search's plots (``results.report``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from results.fidelity import describe, scores
from results.rank_stats import average_ranks


def plot_validation(rows: Iterable[Mapping[str, Any]], stats: Mapping[str, Any],
                    path: str | os.PathLike[str]) -> Path:
    """Save the figure of the module docstring to ``path``; works with any number of
    finished candidates (the panels say when there are none)."""
    s = scores(rows)
    proxy, long = _mean(s.proxy), _mean(s.long)
    both = np.isfinite(proxy) & np.isfinite(long)
    fig = Figure(figsize=(11, 4.8))
    by_rank, by_accuracy = fig.subplots(1, 2)
    if both.any():
        x, y = average_ranks(-proxy[both]), average_ranks(-long[both])
        n = int(both.sum())
        by_rank.plot([1, n], [1, n], color="0.7", lw=1, zorder=0)
        by_rank.scatter(x, y, s=30)
        for (xi, yi), label in tied_labels(x, y, s.search_rank[both]).items():
            by_rank.annotate(label, (xi, yi), xytext=(4, 3), textcoords="offset points",
                             fontsize=8)
        by_rank.set_xlim(n + 0.5, 0.5)
        by_rank.set_ylim(n + 0.5, 0.5)
        for axis in (by_rank.xaxis, by_rank.yaxis):
            axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        _spans(by_accuracy, s.proxy[both], s.long[both])
    else:
        for ax in (by_rank, by_accuracy):
            ax.text(0.5, 0.5, "no candidate finished both trainings", ha="center",
                    va="center", transform=ax.transAxes)
    by_rank.set_xlabel("rank by proxy accuracy (mean over its runs)")
    by_rank.set_ylabel("rank by long-training accuracy")
    by_rank.set_title(f"proxy vs long training: {describe(stats.get('proxy_vs_long'))}",
                      fontsize=10)
    by_accuracy.set_xlabel("proxy accuracy (minival)")
    by_accuracy.set_ylabel("long-training accuracy (held-out)")
    by_accuracy.set_title(  # a line each: one line ran into the left panel's title
        "accuracies; bars span the runs of each\n"
        f"proxy seed vs seed: {describe(stats.get('proxy_seed_vs_seed'))}\n"
        f"long seed vs seed: {describe(stats.get('long_seed_vs_seed'))}", fontsize=8)
    target = Path(path)
    FigureCanvasAgg(fig)
    fig.savefig(target, dpi=110, bbox_inches="tight")
    return target


def tied_labels(x: np.ndarray, y: np.ndarray,
                search_rank: np.ndarray) -> dict[tuple[float, float], str]:
    """One label per point position: candidates tied on both ranks share a point, and its
    label lists their search ranks (``2, 5``) instead of printing them over each other."""
    labels: dict[tuple[float, float], list[int]] = {}
    for xi, yi, rank in zip(x, y, search_rank):
        labels.setdefault((float(xi), float(yi)), []).append(int(rank))
    return {at: ", ".join(str(r) for r in sorted(ranks)) for at, ranks in labels.items()}


def _spans(ax: Any, proxy: np.ndarray, long: np.ndarray) -> None:
    px, ly = _mean(proxy), _mean(long)
    ax.errorbar(px, ly, xerr=[px - np.nanmin(proxy, axis=1), np.nanmax(proxy, axis=1) - px],
                yerr=[ly - np.nanmin(long, axis=1), np.nanmax(long, axis=1) - ly],
                fmt="o", ms=4, capsize=2, lw=1)
    ax.grid(alpha=0.3)


def _mean(runs: np.ndarray) -> np.ndarray:
    if runs.shape[1] == 0:
        return np.full(runs.shape[0], np.nan)
    return runs.mean(axis=1)


__all__ = ["plot_validation", "tied_labels"]
