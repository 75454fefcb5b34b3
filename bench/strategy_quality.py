"""How good are the search strategies, without training anything?

A cheap, replayable surrogate stands in for proxy training and timing, over a shipped space
(default ``paper``: the EfficientNet-B4 backbone space of the paper): ``nas.search.surrogate.Surrogate``,
the same function ``nas-search --objective surrogate`` evaluates (its docstring defines it),
here at resolution 224 against EfficientNet-B4, with its random scores drawn from
``--problem-seed``. Deterministic: the same spec always scores the same.

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

from nas.search.reward import reward
from nas.search.surrogate import Surrogate
from nas.strategies import STRATEGY_NAMES, Observation, make_strategy
from search_space.cost import count_params
from search_space.presets import get_preset
from search_space.sampling import decisions, sample
from search_space.space import SearchSpace
from search_space.space_files import load_space
from search_space.spec import ArchSpec

RESOLUTION = 224
REFERENCE = "efficientnet-b4"


class Objective:
    """The surrogate as a strategy sees it: an observation (reward and objectives) per spec."""

    def __init__(self, space: SearchSpace, problem_seed: int) -> None:
        ref = get_preset(REFERENCE).spec
        self.surrogate = Surrogate(space, ref, RESOLUTION, problem_seed)
        self.ref_step = self.surrogate.step_time_ms(ref)
        self.ref_params = count_params(ref)

    def __call__(self, spec: ArchSpec) -> Observation:
        acc, step, params = self.surrogate(spec)
        value = reward(acc, step, params, ref_step_time=self.ref_step, ref_params=self.ref_params)
        return Observation.ok(value, (acc, step, float(params)))


def best_after(name: str, space: SearchSpace, objective: Objective, seed: int,
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
    objective = Objective(space, args.problem_seed)

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

    lines = ["| strategy | " + " | ".join(f"median best reward, N={b} | vs random | "
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
            "Surrogate objective: `nas.search.surrogate.Surrogate`; method: see the docstring of "
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
