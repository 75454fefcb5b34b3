"""The ranking signals a proxy run records besides its accuracy, at no extra training.

:data:`SIGNALS` is the one list: the leaderboard's columns (``results.schema``), the
validation's columns (``results.validation``), the statistics of a validation
(``results.fidelity``: Kendall's tau of each against the long training) and their report
lines all come from it. Each signal is a number per candidate; ``higher_is_better`` says how
it ranks (a loss ranks by its negative).

* ``minival_top1``, ``minival_top1_ema``: minival top-1 after the last epoch of the trained
  weights and of the EMA weights (``accuracy`` is the EMA's when the recipe keeps one).
* ``minival_loss``: mean minival cross-entropy of the trained weights after the last epoch.
* ``tse``: the sum of the training losses over the last epoch (TSE, Ru et al. 2021, "Speedy
  performance estimation for neural architecture search"). The per-epoch sums are kept in the
  history (:func:`epoch_record`), so TSE-E over the last E epochs can be summed later.
* ``meco``: the zero-cost MeCo score at initialization (``proxy_train.zero_cost``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy_train.records import EpochStats, TrainResult


@dataclass(frozen=True, slots=True)
class Signal:
    """One ranking signal: its column name, what it is, and how it ranks."""

    name: str
    label: str
    """Short, for report lines; a signal where lower is better is named by its negative,
    the value that ranks."""
    higher_is_better: bool
    description: str
    """The column's documentation."""


SIGNALS: tuple[Signal, ...] = (
    Signal("minival_top1", "minival top-1, trained weights", True,
           "Minival top-1 of the trained weights after the last proxy epoch (`accuracy` is "
           "the EMA weights' when the recipe keeps an EMA)."),
    Signal("minival_top1_ema", "minival top-1, EMA weights", True,
           "Minival top-1 of the EMA weights after the last proxy epoch; null without an "
           "EMA."),
    Signal("minival_loss", "-minival loss", False,
           "Mean minival cross-entropy (no label smoothing) of the trained weights after the "
           "last proxy epoch; lower is better."),
    Signal("tse", "-TSE (last epoch's summed training loss)", False,
           "TSE: the sum of the training losses over the last proxy epoch (Ru et al. 2021); "
           "lower is better. Every epoch's sum is in `provenance_json` (`training.history`)."),
    Signal("meco", "MeCo at initialization", True,
           "MeCo zero-cost score of the initialized network on the first minibatch "
           "(`proxy_train.zero_cost`, Jiang et al. 2023); higher is better."),
)
SIGNAL_NAMES: tuple[str, ...] = tuple(s.name for s in SIGNALS)


def final_signals(training: TrainResult | None) -> dict[str, float | None]:
    """Every signal of a training run (None where it has none: no epoch, no EMA)."""
    last = training.history[-1] if training is not None and training.history else None
    return {
        "minival_top1": None if last is None else last.minival_top1,
        "minival_top1_ema": None if last is None else last.minival_top1_ema,
        "minival_loss": None if last is None else last.minival_loss,
        "tse": None if training is None else training.tse,
        "meco": None if training is None else training.meco,
    }


def epoch_record(stats: EpochStats) -> dict[str, Any]:
    """What the history of a row keeps of one epoch: its place, learning rate, losses and
    minival numbers (times and regularization left out)."""
    return {"epoch": stats.epoch, "stage": stats.stage, "resolution": stats.resolution,
            "lr": stats.lr, "train_loss": stats.train_loss,
            "train_loss_sum": stats.train_loss_sum, "minival_top1": stats.minival_top1,
            "minival_top1_ema": stats.minival_top1_ema, "minival_loss": stats.minival_loss}


__all__ = ["SIGNALS", "SIGNAL_NAMES", "Signal", "epoch_record", "final_signals"]
