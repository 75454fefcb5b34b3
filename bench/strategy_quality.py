"""How good are the search strategies, without training anything?

A cheap, replayable surrogate stands in for proxy training and timing, over a shipped space
(default ``paper``: the EfficientNet-B4 backbone space of the paper):

* **accuracy**: ``0.72 + 0.12 * (1 - sqrt(MACs_ref / MACs))`` (bigger networks are more
  accurate, with diminishing returns, so the reward's cost terms put the optimum near the
  reference size) plus a fixed random score per (decision, choice) and two pairwise
  interactions (``s4.block x s5.block``, ``s2.kernel x s3.expansion``), drawn once from
  ``--problem-seed``; clipped to [0, 1]. Deterministic: the same spec always scores the same.
* **step time**: per stage, MACs at a cost per MAC that is 2.5x higher for MBConv (depthwise
  convolutions are memory-bound on accelerators) than for Fused-MBConv, plus activation
  traffic and a fixed per-layer overhead, from ``search_space.cost.stage_costs``.
* **params**: ``search_space.cost.count_params``.

The reward is the paper's ``A * S^-0.07 * P^-0.05`` against EfficientNet-B4. Each strategy
runs ``max(--budgets)`` asks/tells per seed; the best reward after each budget is recorded.
Reported: the median over seeds, its ratio to random search's, and how many of 20,000
uniform draws beat it (lower is better).

    python bench/strategy_quality.py                 # ~2 minutes on 2 CPU cores
    python bench/strategy_quality.py --out bench/results/strategy_quality.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from search_space.cost import count_macs, count_params, stage_costs
from search_space.presets import get_preset
from search_space.sampling import decisions, sample, to_choices
from search_space.space import SearchSpace
from search_space.space_files import load_space
from search_space.spec import FUSED, ArchSpec

from nas.reward import reward
from nas.strategies import STRATEGY_NAMES, Observation, make_strategy

RESOLUTION = 224
REFERENCE = "efficientnet-b4"


class Surrogate:
    """The fixed objective: accuracy, step time (ms) and params of a spec."""

    def __init__(self, space: SearchSpace, problem_seed: int) -> None:
        rng = random.Random(problem_seed)
        self.space = space
        self.scores = {(d.name, c): rng.gauss(0.0, 0.006) for d in decisions(space)
                       for c in d.choices}
        self.pairs = {key: rng.gauss(0.0, 0.015) for key in
                      [("s4.block", a, "s5.block", b) for a in ("fused", "mbconv")
                       for b in ("fused", "mbconv")]
                      + [("s2.kernel", k, "s3.expansion", e) for k in (3, 5) for e in (1, 4, 6)]}
        ref = get_preset(REFERENCE).spec
        self.ref_macs = count_macs(ref, RESOLUTION)
        self.ref_params = count_params(ref)
        self.ref_step = self.step_time(ref)

    def step_time(self, spec: ArchSpec) -> float:
        costs = stage_costs(spec, RESOLUTION)
        per_mac = [1.0] + [1.0 if s.block == FUSED else 2.5 for s in spec.stages] + [1.0, 1.0]
        ms = sum(c.macs * k for c, k in zip(costs, per_mac)) / 2e9
        ms += sum(c.activations for c in costs) / 4e7
        return ms + 0.05 * spec.num_blocks

    def accuracy(self, spec: ArchSpec) -> float:
        choices = to_choices(self.space, spec)
        acc = 0.72 + 0.12 * (1.0 - math.sqrt(self.ref_macs / count_macs(spec, RESOLUTION)))
        acc += sum(self.scores.get((name, value), 0.0) for name, value in choices.items())
        for (a, va, b, vb), score in self.pairs.items():
            if choices.get(a) == va and choices.get(b) == vb:
                acc += score
        return min(1.0, max(0.0, acc))

    def __call__(self, spec: ArchSpec) -> Observation:
        acc, step, params = self.accuracy(spec), self.step_time(spec), count_params(spec)
        value = reward(acc, step, params, ref_step_time=self.ref_step, ref_params=self.ref_params)
        return Observation.ok(value, (acc, step, float(params)))


def best_after(name: str, space: SearchSpace, objective: Surrogate, seed: int,
               budgets: Sequence[int]) -> dict[int, float]:
    strategy = make_strategy(name, space, seed=seed, num_classes=1000)
    best, out = -math.inf, {}
    for n in range(1, max(budgets) + 1):
        proposal = strategy.ask()
        observation = objective(proposal.spec)
        strategy.tell(proposal, observation)
        best = max(best, observation.reward)  # type: ignore[type-var]
        if n in budgets:
            out[n] = best
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model or cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="paper")
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--budgets", default="50,100,300")
    parser.add_argument("--problem-seed", type=int, default=0)
    parser.add_argument("--strategies", default=",".join(STRATEGY_NAMES))
    parser.add_argument("--out", type=Path, default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    names = args.strategies.split(",")
    space = load_space(args.space)
    objective = Surrogate(space, args.problem_seed)

    started = time.perf_counter()
    uniform = np.array([objective(sample(space, random.Random(10_000 + i))).reward
                        for i in range(20_000)])
    results: dict[str, dict[int, list[float]]] = {}
    seconds: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        runs = [best_after(name, space, objective, seed, budgets) for seed in range(args.seeds)]
        seconds[name] = time.perf_counter() - t0
        results[name] = {b: [r[b] for r in runs] for b in budgets}
        print(f"{name:10s} " + "  ".join(f"N={b}: {statistics.median(results[name][b]):.4f}"
                                         for b in budgets) + f"  ({seconds[name]:.1f} s)",
              file=sys.stderr)
    total = time.perf_counter() - started

    lines = [f"| strategy | " + " | ".join(f"median best reward, N={b} | vs random | "
                                          f"of 20,000 uniform draws better" for b in budgets)
             + " | s per run |",
             "|---|" + "---|---|---|" * len(budgets) + "---|"]
    for name in names:
        cells = []
        for b in budgets:
            med = statistics.median(results[name][b])
            base = statistics.median(results["random"][b]) if "random" in results else med
            cells += [f"{med:.4f}", f"{med / base:.4f}", f"{int(np.sum(uniform > med)):,}"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds[name] / args.seeds:.2f} |")
    table = "\n".join(lines)
    q = np.quantile(uniform, [0.5, 0.99, 0.999])
    context = (f"Uniform draws: median reward {q[0]:.4f}, 99th percentile {q[1]:.4f}, "
               f"99.9th {q[2]:.4f}, max {uniform.max():.4f}.")
    print(table)
    print(context)
    if args.out is not None:
        command = "python bench/strategy_quality.py " + " ".join(argv if argv is not None
                                                                 else sys.argv[1:])
        report = "\n".join([
            "# Strategy quality on a surrogate objective",
            "",
            f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {machine()}",
            f"- Command: `{command.strip()}`",
            f"- Space: `{args.space}` ({len(decisions(space))} decisions); "
            f"seeds 0..{args.seeds - 1}; problem seed {args.problem_seed}; total {total:.0f} s",
            "",
            "Best reward found after N candidates, median over seeds (higher is better); "
            "'vs random' divides by random search's median; 'of 20,000 uniform draws better' "
            "counts the uniform samples of the space with a higher reward (lower is better). "
            "Surrogate objective and method: see the docstring of "
            "`bench/strategy_quality.py`.",
            "",
            table,
            "",
            context,
            "",
        ])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
