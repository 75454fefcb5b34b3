"""What the plots must get right after a short or surrogate run: legends off the points, the
surrogate named as such, whole-number epoch and rank ticks, the test marker beside the last
minival points, one label per tied point. ``bench/results/plots.md`` has the pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import results.curves as curves
from results.leaderboard import Leaderboard
from results.report import pareto_figure
from results.validation_plot import tied_labels


def _legend_clear_of_axes(fig: Figure) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg's
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            assert not legend.get_window_extent(renderer).overlaps(
                ax.get_window_extent(renderer)), ax.get_title()


def test_pareto_names_a_surrogate_and_keeps_legends_off_the_points(
        tmp_path: Path, make_row: Any) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    board = Leaderboard(tmp_path)
    board.extend([make_row(i, objective="surrogate") for i in range(6)])
    fig = pareto_figure(board.read())
    FigureCanvasAgg(fig)
    by_time, by_params = fig.axes[:2]
    assert by_time.get_xlabel() == "surrogate step time (ms)"
    assert by_time.get_ylabel() == by_params.get_ylabel() == "surrogate accuracy"
    _legend_clear_of_axes(fig)
    trained = pareto_figure(Leaderboard(tmp_path).read().assign(objective="train"))
    assert trained.axes[0].get_ylabel() == "proxy accuracy"


def _metrics(epochs: int) -> pd.DataFrame:
    return pd.DataFrame({
        "epoch": range(1, epochs + 1), "stage": range(1, epochs + 1),
        "image_size": [16 + 8 * e for e in range(epochs)], "randaug": 5.0, "mixup": 0.0,
        "dropout": 0.1, "lr": 0.01, "train_loss": [1.0986 + 1e-5 * e for e in range(epochs)],
        "minival_top1": 0.3, "minival_top1_ema": pd.array([0.3] * epochs, dtype="Float64"),
        "images_per_s": 100.0, "epoch_time_s": 1.0})


def test_curves_of_one_epoch_have_whole_ticks_and_the_test_marker_beside_the_points(
        tmp_path: Path, monkeypatch: Any) -> None:
    made: list[Figure] = []
    real = Figure.savefig

    def keep(fig: Figure, *args: Any, **kwargs: Any) -> None:
        made.append(fig)
        real(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    for epochs in (1, 3):
        curves.plot_curves(_metrics(epochs), tmp_path / f"{epochs}.png", test_top1=0.3)
        acc, loss = made[-1].axes[:2]
        for ax in (acc, loss):
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
            assert ax.yaxis.get_offset_text().get_text() == ""
        star = acc.collections[-1].get_offsets()[0]
        assert star[0] == epochs + curves.TEST_OFFSET <= acc.get_xlim()[1]
        _legend_clear_of_axes(made[-1])


def test_tied_candidates_share_one_label() -> None:
    x, y = np.array([1.5, 1.5, 3.0]), np.array([2.0, 2.0, 1.0])
    assert tied_labels(x, y, np.array([5, 2, 1])) == {(1.5, 2.0): "2, 5", (3.0, 1.0): "1"}


def test_validation_ranks_of_three_candidates_have_whole_ticks(tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    from results.validation_plot import plot_validation

    made: list[Figure] = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig",
                        lambda fig, *a, **k: (made.append(fig), real(fig, *a, **k))[1])
    rows = [{"arch_hash": f"h{i}", "search_rank": i + 1, "kind": kind, "replica": 0,
             "status": "ok", "accuracy": accuracy, "reward": accuracy, "interim_reward": None,
             "params": 1, "macs": 1, "step_time_ms": 1.0}
            for i in range(3)
            for kind, accuracy in (("proxy", 0.3 + 0.1 * i), ("long", 0.6 - 0.1 * i))]
    plot_validation(rows, {}, tmp_path / "validation.png")
    by_rank = made[-1].axes[0]
    for ticks in (by_rank.get_xticks(), by_rank.get_yticks()):
        shown = [t for t in ticks if 0.5 <= t <= 3.5]
        assert shown and all(float(t).is_integer() for t in shown), shown
