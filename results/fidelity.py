"""How well a proxy ranks candidates like long training: the statistics of a validation.

From the rows of ``validation.parquet`` (``results.validation``) this builds one matrix per
score, candidates x runs, and compares rankings with :func:`results.rank_stats.agreement`
(Kendall's tau-b and Spearman's rho, each with a bootstrap interval over the candidates):

* ``proxy_vs_long``: each proxy run's accuracy against the long training's (mean over its
  seeds), averaged over the proxy runs: how a search that trains each candidate's proxy once
  ranks. ``proxy_mean_vs_long``: the mean over the proxy runs instead (what averaging seeds
  would buy). ``reward_proxy_vs_long``: the same for the reward, recomputed with each
  accuracy and the candidate's step time and params.
* ``proxy_seed_vs_seed`` (repeatability) and ``long_seed_vs_seed`` (the noise of the ruler
  itself: the ceiling any proxy can reach), averaged over every pair of runs.
* ``<signal>_vs_long`` for each ranking signal of ``results.signals`` (minival top-1 of the
  trained and of the EMA weights, minival loss, TSE, MeCo at initialization): each proxy
  run's signal against the long training's accuracy, averaged over the proxy runs that
  recorded it like ``proxy_vs_long``; a signal where lower is better (a loss, TSE) ranks by
  its negative.
* ``params_vs_long``, ``macs_vs_long``, ``step_time_vs_long``: predictors that need no
  training. A proxy that does not beat them adds nothing.
* ``interim_vs_final_reward``: the reward at ASHA's grace period against the final proxy
  reward (is early stopping safe?).
* ``best``: the proxy's best candidate (mean proxy reward) and the search's own pick, with
  their rank in the long training; whether each is among its top 3.

A candidate enters a statistic only when every run that statistic needs finished; ``n``
says how many did. Fewer than 3 candidates give no statistic (None).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from results.rank_stats import Agreement, agreement, average_ranks
from results.signals import SIGNALS, Signal

MIN_CANDIDATES = 3
GOOD_TAU = 0.6
"""A proxy whose tau against long training reaches this ranks like it."""
PARTLY_TAU = 0.3
TOP = 3


@dataclass(frozen=True, slots=True)
class Scores:
    """Every score of the validated candidates: ``[candidates]`` or ``[candidates, runs]``,
    NaN where a run is missing or failed."""

    arch_hash: tuple[str, ...]
    search_rank: np.ndarray
    params: np.ndarray
    macs: np.ndarray
    step_time_ms: np.ndarray
    proxy: np.ndarray
    proxy_reward: np.ndarray
    interim_reward: np.ndarray
    long: np.ndarray
    long_reward: np.ndarray
    signals: dict[str, np.ndarray]
    """Each proxy run's ranking signals (``results.signals``), by name: ``[candidates,
    runs]``, as recorded (a loss is not negated here)."""


def scores(rows: Iterable[Mapping[str, Any]]) -> Scores:
    """The candidates' scores from validation rows (candidates in search-rank order)."""
    rows = list(rows)
    by_hash: dict[str, Mapping[str, Any]] = {}
    for row in sorted(rows, key=lambda r: int(r["search_rank"])):
        by_hash.setdefault(str(row["arch_hash"]), row)
    hashes = tuple(by_hash)
    index = {h: i for i, h in enumerate(hashes)}

    def matrix(kind: str, column: str) -> np.ndarray:
        chosen = [r for r in rows if r["kind"] == kind]
        width = 1 + max((int(r["replica"]) for r in chosen), default=-1)
        out = np.full((len(hashes), width), np.nan)
        for r in chosen:
            value = r.get(column)
            if r["status"] == "ok" and value is not None:
                out[index[str(r["arch_hash"])], int(r["replica"])] = float(value)
        return out

    def column(name: str) -> np.ndarray:
        return np.array([_float(by_hash[h].get(name)) for h in hashes])

    return Scores(hashes, column("search_rank"), column("params"), column("macs"),
                  column("step_time_ms"), matrix("proxy", "accuracy"),
                  matrix("proxy", "reward"), matrix("proxy", "interim_reward"),
                  matrix("long", "accuracy"), matrix("long", "reward"),
                  {signal.name: matrix("proxy", signal.name) for signal in SIGNALS})


def statistics(s: Scores, *, seed: int = 0) -> dict[str, Any]:
    """Every statistic of the module docstring, as JSON-able data."""
    long, long_reward = _mean(s.long), _mean(s.long_reward)

    def against_long(runs: np.ndarray, truth: np.ndarray) -> Agreement | None:
        return _agree([(runs[:, r], truth) for r in range(runs.shape[1])], seed)

    out: dict[str, Any] = {
        "proxy_vs_long": against_long(s.proxy, long),
        "proxy_mean_vs_long": _agree([(_mean(s.proxy), long)], seed),
        "reward_proxy_vs_long": against_long(s.proxy_reward, long_reward),
        "proxy_seed_vs_seed": _agree(_run_pairs(s.proxy), seed),
        "long_seed_vs_seed": _agree(_run_pairs(s.long), seed),
        **{f"{signal.name}_vs_long": against_long(_signal_runs(s, signal), long)
           for signal in SIGNALS},
        "params_vs_long": _agree([(s.params, long)], seed),
        "macs_vs_long": _agree([(s.macs, long)], seed),
        "step_time_vs_long": _agree([(s.step_time_ms, long)], seed),
        "interim_vs_final_reward": _agree(
            [(s.interim_reward[:, r], s.proxy_reward[:, r])
             for r in range(s.proxy_reward.shape[1])], seed),
    }
    stats: dict[str, Any] = {k: (None if v is None else v.to_dict()) for k, v in out.items()}
    stats["best"] = _best(s, long_reward)
    return stats


def verdict(stats: Mapping[str, Any]) -> str:
    """One line: does the proxy rank like long training, with tau, its interval and n."""
    found = stats.get("proxy_vs_long")
    if not found:
        return ("too few candidates finished both the proxy and the long training to rank "
                f"them (at least {MIN_CANDIDATES} needed)")
    if found.get("tau") is None:
        return ("no ranking to compare: the proxy or the long training gave every candidate "
                f"the same accuracy (n = {found['n']})")
    tau = float(found["tau"])
    head = ("proxy ranks like long training" if tau >= GOOD_TAU else
            "proxy ranks only partly like long training" if tau >= PARTLY_TAU else
            "proxy does not rank like long training")
    return f"{head}: {describe(found)}"


def describe(found: Mapping[str, Any] | None, name: str = "τ") -> str:
    """``τ = 0.71 [0.45, 0.88], n = 10`` from a statistic's dict (``n/a`` when missing)."""
    if not found or found.get("tau") is None:
        return f"{name} = n/a"
    low, high = (_show(v) for v in found["tau_ci"])
    return f"{name} = {_show(found['tau'])} [{low}, {high}], n = {found['n']}"


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _agree(pairs: list[tuple[np.ndarray, np.ndarray]], seed: int) -> Agreement | None:
    """Agreement over the candidates that have every value of every pair."""
    if not pairs:
        return None
    complete = np.ones(len(pairs[0][0]), dtype=bool)
    for x, y in pairs:
        complete &= np.isfinite(x) & np.isfinite(y)
    if complete.sum() < MIN_CANDIDATES:
        return None
    return agreement([(x[complete], y[complete]) for x, y in pairs], seed=seed)


def _signal_runs(s: Scores, signal: Signal) -> np.ndarray:
    """The proxy runs that recorded ``signal`` (a search from before the signals were kept
    has none in its own runs), oriented so that higher ranks better."""
    runs = s.signals[signal.name] * (1.0 if signal.higher_is_better else -1.0)
    return runs[:, np.isfinite(runs).any(axis=0)]


def _run_pairs(runs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(runs[:, a], runs[:, b]) for a, b in combinations(range(runs.shape[1]), 2)]


def _mean(runs: np.ndarray) -> np.ndarray:
    """Mean over the runs; NaN for a candidate with a missing run."""
    if runs.shape[1] == 0:
        return np.full(runs.shape[0], np.nan)
    return runs.mean(axis=1)


def _best(s: Scores, long_reward: np.ndarray) -> dict[str, Any] | None:
    """Where the proxy's best and the search's pick land in the long training's ranking."""
    proxy_reward = _mean(s.proxy_reward)
    known = np.isfinite(long_reward) & np.isfinite(proxy_reward)
    if known.sum() < MIN_CANDIDATES:
        return None
    # Rank 1 = the highest long reward, among the candidates with every run finished.
    long_rank = np.full(len(long_reward), np.nan)
    long_rank[known] = average_ranks(-long_reward[known])

    def entry(i: int) -> dict[str, Any]:
        rank = float(long_rank[i])
        return {"arch_hash": s.arch_hash[i], "search_rank": int(s.search_rank[i]),
                "long_rank": rank, f"in_long_top{TOP}": bool(rank <= TOP)}

    candidates = np.flatnonzero(known)
    proxy_best = int(candidates[np.argmax(proxy_reward[candidates])])
    picked = [i for i in candidates if s.search_rank[i] == 1]
    return {"n": int(known.sum()), "by": "reward", "proxy_best": entry(proxy_best),
            "search_best": entry(int(picked[0])) if picked else None}


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


__all__ = ["GOOD_TAU", "MIN_CANDIDATES", "Scores", "describe", "scores", "statistics",
           "verdict"]
