"""How repeatable and how faithful is ``time_training_step``? (CPU or CUDA.)

For N random candidates of a search space, each timed at the target resolution and batch:

(a) two independent timings with the tool's defaults -> median relative difference
    (targets: <= 2% on a GPU, <= 5% on the CPU);
(b) one long reference timing (``--long-steps`` timed steps after warm-up) -> Spearman rank
    correlation between the tool's timing and the reference (target >= 0.98 on a GPU);
(c) the wall-clock cost of one tool timing per candidate (target <= 15 s on a GPU);
and, side by side, the same figures for a naive timing (5 warm-up steps, median of 8 timed
steps, as in the H100 anchor measurements).

Per candidate the order is: tool A, naive A, long reference, tool B, naive B, so the two
repeats of each method are separated by the reference timing.

    python bench/timing_fidelity.py --hardware auto --space v2s --n 20 --resolution 300 \\
        --out bench/results/timing_fidelity_h100.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from proxy_train.hardware import Target, describe_device, resolve_hardware
from proxy_train.timing import StepTiming, time_training_step
from search_space.codec import spec_hash
from search_space.cost import count_macs, count_params
from search_space.errors import NasError
from search_space.sampling import sample
from search_space.space_files import load_space
from search_space.spec import ArchSpec

TARGETS = {"repeat_gpu": 0.02, "repeat_cpu": 0.05, "spearman_gpu": 0.98, "cost_gpu_s": 15.0}


@dataclass(frozen=True, slots=True)
class Row:
    """All timings of one candidate."""

    index: int
    spec: ArchSpec
    resolution: int
    tool_a: StepTiming
    tool_b: StepTiming
    long: StepTiming
    naive_a: StepTiming
    naive_b: StepTiming

    @property
    def ok(self) -> bool:
        return all(t.ok for t in (self.tool_a, self.tool_b, self.long, self.naive_a,
                                  self.naive_b))


def rank(values: list[float]) -> list[float]:
    """Ranks from 1, ties given their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman rank correlation (Pearson correlation of the ranks)."""
    if len(x) != len(y) or len(x) < 2:
        return float("nan")
    rx, ry = rank(x), rank(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var if var else float("nan")


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / ((a + b) / 2)


def measure(spec: ArchSpec, index: int, target: Target, args: argparse.Namespace) -> Row:
    common = dict(target=target, resolution=args.resolution, batch_size=args.batch,
                  num_classes=args.num_classes, seed=args.seed)
    tool = dict(common, time_budget_s=args.budget)
    naive = dict(common, warmup_max_steps=5, min_steps=8, max_steps=8)
    long = dict(common, warmup_max_steps=50, min_steps=args.long_steps,
                max_steps=args.long_steps, time_budget_s=1e9)
    tool_a = time_training_step(spec, **tool)
    naive_a = time_training_step(spec, **naive)
    ref = time_training_step(spec, **long)
    tool_b = time_training_step(spec, **tool)
    naive_b = time_training_step(spec, **naive)
    return Row(index, spec, args.resolution, tool_a, tool_b, ref, naive_a, naive_b)


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def summarize(rows: list[Row], is_cuda: bool) -> tuple[list[str], dict[str, float]]:
    ok = [r for r in rows if r.ok]
    figures: dict[str, float] = {}
    if len(ok) < 2:
        return ["too few successful candidates for statistics"], figures
    long = [r.long.median_ms for r in ok]
    figures["tool_repeat"] = statistics.median(rel_diff(r.tool_a.median_ms, r.tool_b.median_ms)
                                               for r in ok)
    figures["naive_repeat"] = statistics.median(
        rel_diff(r.naive_a.median_ms, r.naive_b.median_ms) for r in ok)
    figures["tool_repeat_max"] = max(rel_diff(r.tool_a.median_ms, r.tool_b.median_ms)
                                     for r in ok)
    figures["naive_repeat_max"] = max(rel_diff(r.naive_a.median_ms, r.naive_b.median_ms)
                                      for r in ok)
    figures["tool_spearman"] = spearman([r.tool_a.median_ms for r in ok], long)
    figures["tool_b_spearman"] = spearman([r.tool_b.median_ms for r in ok], long)
    figures["naive_spearman"] = spearman([r.naive_a.median_ms for r in ok], long)
    figures["params_spearman"] = spearman([float(count_params(r.spec)) for r in ok], long)
    figures["macs_spearman"] = spearman([float(count_macs(r.spec, r.resolution)) for r in ok],
                                        long)
    costs = [t.time_s for r in ok for t in (r.tool_a, r.tool_b)]
    naive_costs = [t.time_s for r in ok for t in (r.naive_a, r.naive_b)]
    figures["tool_cost_median"] = statistics.median(costs)
    figures["tool_cost_max"] = max(costs)
    figures["naive_cost_median"] = statistics.median(naive_costs)
    figures["tool_steps_median"] = statistics.median(
        t.steps for r in ok for t in (r.tool_a, r.tool_b))
    repeat_target = TARGETS["repeat_gpu" if is_cuda else "repeat_cpu"]
    where = "GPU" if is_cuda else "CPU"

    def verdict(good: bool) -> str:
        return "met" if good else "NOT met"

    f = figures
    lines = [
        "| figure | tool | naive (5 + 8 steps) | target |",
        "|---|---|---|---|",
        f"| (a) median relative difference of two timings | {f['tool_repeat']:.1%} | "
        f"{f['naive_repeat']:.1%} | <= {repeat_target:.0%} ({where}): "
        f"{verdict(f['tool_repeat'] <= repeat_target)} |",
        f"| (a) largest relative difference of two timings | {f['tool_repeat_max']:.1%} | "
        f"{f['naive_repeat_max']:.1%} | |",
        f"| (b) Spearman vs {ok[0].long.steps}-step reference (first timing) | "
        f"{f['tool_spearman']:.3f} | {f['naive_spearman']:.3f} | >= 0.98 (GPU)"
        + (f": {verdict(f['tool_spearman'] >= TARGETS['spearman_gpu'])}" if is_cuda else "")
        + " |",
        f"| (b) Spearman vs reference (second timing) | {f['tool_b_spearman']:.3f} | | |",
        f"| (c) cost of one timing, median / max (s) | {_fmt(f['tool_cost_median'])} / "
        f"{_fmt(f['tool_cost_max'])} | {_fmt(f['naive_cost_median'])} | <= 15 s (GPU)"
        + (f": {verdict(f['tool_cost_max'] <= TARGETS['cost_gpu_s'])}" if is_cuda else "")
        + " |",
        f"| timed steps per tool timing (median) | {f['tool_steps_median']:.0f} | 8 | |",
        "",
        f"For contrast: Spearman of parameter count vs reference step time "
        f"{f['params_spearman']:.3f}; of MACs vs reference {f['macs_spearman']:.3f}.",
    ]
    return lines, figures


def row_lines(rows: list[Row]) -> list[str]:
    out = ["| # | arch hash | params (M) | MMACs | tool A ms | tool B ms | spread A | steps A "
           "| reference ms | naive A ms | naive B ms | cost A s | status |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def ms(t: StepTiming) -> str:
            return _fmt(t.median_ms, 2) if t.ok else "—"

        status = "ok" if r.ok else "; ".join(
            t.reason for t in (r.tool_a, r.tool_b, r.long, r.naive_a, r.naive_b) if not t.ok)
        out.append(
            f"| {r.index} | `{spec_hash(r.spec)}` | {count_params(r.spec) / 1e6:.2f} | "
            f"{count_macs(r.spec, r.resolution) / 1e6:.0f} | {ms(r.tool_a)} | {ms(r.tool_b)} | "
            f"{_fmt(r.tool_a.spread or 0.0, 3)} | {r.tool_a.steps} | {ms(r.long)} | "
            f"{ms(r.naive_a)} | {ms(r.naive_b)} | {_fmt(r.tool_a.time_s)} | {status} |")
    return out


def _load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hardware", default="auto", help="auto, cpu, v100, a100, h100, ...")
    p.add_argument("--space", default="v2s", help="search space name or file (default v2s)")
    p.add_argument("--n", type=int, default=20, help="number of candidates (default 20)")
    p.add_argument("--resolution", type=int, default=300,
                   help="target training resolution (default 300)")
    p.add_argument("--batch", type=int, default=None, help="batch (default: the profile's)")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--budget", type=float, default=10.0, help="tool time budget, s")
    p.add_argument("--long-steps", type=int, default=200, help="reference timed steps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="candidate i is sampled with seed+i")
    p.add_argument("--out", default=None, help="also write the markdown report here")
    args = p.parse_args(argv)
    if args.n < 2:
        p.error("--n must be >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        target = resolve_hardware(args.hardware)
        space = load_space(args.space)
        specs = [sample(space, args.seed + i, num_classes=args.num_classes)
                 for i in range(args.n)]
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = "python bench/timing_fidelity.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    started, load_start = time.perf_counter(), _load()
    rows: list[Row] = []
    for i, spec in enumerate(specs):
        row = measure(spec, i, target, args)
        rows.append(row)
        ms = [t.median_ms or float("nan")
              for t in (row.tool_a, row.tool_b, row.long, row.naive_a, row.naive_b)]
        print(f"[{i + 1}/{args.n}] {spec_hash(spec)} tool {ms[0]:.2f}/{ms[1]:.2f} ms, "
              f"reference {ms[2]:.2f} ms, naive {ms[3]:.2f}/{ms[4]:.2f} ms, "
              f"cost {row.tool_a.time_s:.1f} s", file=sys.stderr, flush=True)
    summary, _ = summarize(rows, target.is_cuda)
    first = rows[0].tool_a
    info = describe_device(target)
    lines = [
        f"# Timing fidelity: {target.device_name} ({target.name})",
        "",
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{command}`",
        f"- machine: {info['device_name']}; driver {info['driver_version']}; CUDA "
        f"{info['cuda_version']}; torch {info['torch_version']}; CPU {info['cpu_model']} "
        f"({info['cpu_count']} cores, {info['threads']} torch threads)",
        f"- load average (1/5/15 min) at start {load_start}, at end {_load()}",
        f"- space `{args.space}`, {args.n} candidates "
        f"(seeds {args.seed}..{args.seed + args.n - 1}), resolution {args.resolution}, "
        f"batch {first.batch_size}, {first.precision}, {first.memory_format}, "
        f"optimizer {first.optimizer}, {args.num_classes} classes",
        f"- tool: `time_training_step` defaults (min 20 / max 200 steps, warm-up <= 50, "
        f"budget {args.budget:g} s, stability 2%, target RSE 0.5%); reference: "
        f"{args.long_steps} timed steps after warm-up; naive: 5 warm-up + 8 timed steps",
        f"- total bench time {time.perf_counter() - started:.0f} s",
        "",
        "## Figures",
        "",
        *summary,
        "",
        "## Per candidate",
        "",
        *row_lines(rows),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
