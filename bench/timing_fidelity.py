"""How repeatable and how faithful is ``time_training_step``? (CPU or CUDA.)

For N random candidates of a search space, each timed at the target resolution and batch:

(a) two independent timings with the tool's defaults -> median relative difference
    (targets: <= 2% on a GPU, <= 5% on the CPU);
(b) one long reference timing (``--long-steps`` timed steps after warm-up) -> Spearman rank
    correlation between the tool's timing and the reference (target >= 0.98 on a GPU);
(c) the wall-clock cost of one tool timing per candidate (target <= 15 s on a GPU);
and, side by side, the same figures for a naive timing (5 warm-up steps, median of 8 timed
steps, as in the H100 anchor measurements; ``--no-naive`` leaves it out).

Per candidate the order is: tool A, naive A, long reference, tool B, naive B, so the two
repeats of each method are separated by the reference timing. ``--time-limit`` bounds the
whole bench: no candidate is started, and no reference timing begun, that would not end
within it (predicted from the first timing of the candidate), and the figures are computed
over the candidates measured. ``--json`` also writes the figures and the rows as JSON.

    python bench/timing_fidelity.py --hardware auto --space v2s --n 20 --resolution 300 \\
        --out bench/results/timing_fidelity_h100.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
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
    naive_a: StepTiming | None
    naive_b: StepTiming | None
    """The naive timings (None with ``--no-naive``)."""
    time_s: float = 0.0
    """Wall time of all the candidate's timings."""

    @property
    def timings(self) -> tuple[StepTiming, ...]:
        return tuple(t for t in (self.tool_a, self.tool_b, self.long, self.naive_a,
                                 self.naive_b) if t is not None)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.timings)


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


LONG_WARMUP = 50
"""Most warm-up steps of the reference timing."""


def measure(spec: ArchSpec, index: int, target: Target, args: argparse.Namespace,
            deadline: float = math.inf) -> Row | None:
    """All timings of one candidate; None when the rest would not end by ``deadline``."""
    started = time.perf_counter()
    common = dict(target=target, resolution=args.resolution, batch_size=args.batch,
                  num_classes=args.num_classes, seed=args.seed)
    tool = dict(common, time_budget_s=args.budget)
    naive = dict(common, warmup_max_steps=5, min_steps=8, max_steps=8)
    long = dict(common, warmup_max_steps=LONG_WARMUP, min_steps=args.long_steps,
                max_steps=args.long_steps, time_budget_s=1e9)
    tool_a = time_training_step(spec, **tool)
    naive_a = time_training_step(spec, **naive) if args.naive else None
    if time.perf_counter() + rest_of_candidate(tool_a, naive_a, args.long_steps) > deadline:
        return None
    ref = time_training_step(spec, **long)
    tool_b = time_training_step(spec, **tool)
    naive_b = time_training_step(spec, **naive) if args.naive else None
    return Row(index, spec, args.resolution, tool_a, tool_b, ref, naive_a, naive_b,
               time.perf_counter() - started)


def rest_of_candidate(tool_a: StepTiming, naive_a: StepTiming | None, long_steps: int) -> float:
    """Predicted seconds of a candidate's reference timing and second repeats, from its
    first timings: the reference's steps at the first timing's step time (with a build as
    long as the first timing's), then the repeats as long as the first ones."""
    if not tool_a.ok or tool_a.median_ms is None:
        return tool_a.time_s * 3  # it failed fast, and so will the others
    steps = tool_a.steps + tool_a.warmup_steps
    build = max(0.0, tool_a.time_s - steps * tool_a.median_ms / 1000)
    long = build + (min(LONG_WARMUP, tool_a.warmup_steps) + long_steps) \
        * tool_a.median_ms / 1000
    return long + tool_a.time_s + (naive_a.time_s if naive_a is not None else 0.0)


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def summarize(rows: list[Row], is_cuda: bool) -> tuple[list[str], dict[str, float]]:
    ok = [r for r in rows if r.ok]
    figures: dict[str, float] = {}
    if len(ok) < 2:
        return ["too few successful candidates for statistics"], figures
    naive = all(r.naive_a is not None and r.naive_b is not None for r in ok)
    long = [r.long.median_ms for r in ok]
    f = figures

    def ms(t: StepTiming | None) -> float:
        assert t is not None and t.median_ms is not None
        return t.median_ms

    def repeats(first: str, second: str) -> list[float]:
        return [rel_diff(ms(getattr(r, first)), ms(getattr(r, second))) for r in ok]

    f["tool_repeat"] = statistics.median(repeats("tool_a", "tool_b"))
    f["tool_repeat_max"] = max(repeats("tool_a", "tool_b"))
    f["tool_spearman"] = spearman([ms(r.tool_a) for r in ok], long)
    f["tool_b_spearman"] = spearman([ms(r.tool_b) for r in ok], long)
    f["params_spearman"] = spearman([float(count_params(r.spec)) for r in ok], long)
    f["macs_spearman"] = spearman([float(count_macs(r.spec, r.resolution)) for r in ok], long)
    costs = [t.time_s for r in ok for t in (r.tool_a, r.tool_b)]
    f["tool_cost_median"] = statistics.median(costs)
    f["tool_cost_max"] = max(costs)
    f["tool_steps_median"] = statistics.median(t.steps for r in ok for t in (r.tool_a, r.tool_b))
    f["bench_s_per_candidate"] = statistics.fmean(r.time_s for r in ok)
    if naive:
        f["naive_repeat"] = statistics.median(repeats("naive_a", "naive_b"))
        f["naive_repeat_max"] = max(repeats("naive_a", "naive_b"))
        f["naive_spearman"] = spearman([ms(r.naive_a) for r in ok], long)
        f["naive_cost_median"] = statistics.median(
            t.time_s for r in ok for t in (r.naive_a, r.naive_b) if t is not None)
    repeat_target = TARGETS["repeat_gpu" if is_cuda else "repeat_cpu"]
    where = "GPU" if is_cuda else "CPU"

    def verdict(good: bool) -> str:
        return "met" if good else "NOT met"

    def contrast(key: str, pattern: str) -> str:
        return pattern.format(f[key]) if key in f else "—"

    lines = [
        "| figure | tool | naive (5 + 8 steps) | target |",
        "|---|---|---|---|",
        f"| (a) median relative difference of two timings | {f['tool_repeat']:.1%} | "
        f"{contrast('naive_repeat', '{:.1%}')} | <= {repeat_target:.0%} ({where}): "
        f"{verdict(f['tool_repeat'] <= repeat_target)} |",
        f"| (a) largest relative difference of two timings | {f['tool_repeat_max']:.1%} | "
        f"{contrast('naive_repeat_max', '{:.1%}')} | |",
        f"| (b) Spearman vs {ok[0].long.steps}-step reference (first timing) | "
        f"{f['tool_spearman']:.3f} | {contrast('naive_spearman', '{:.3f}')} | >= 0.98 (GPU)"
        + (f": {verdict(f['tool_spearman'] >= TARGETS['spearman_gpu'])}" if is_cuda else "")
        + " |",
        f"| (b) Spearman vs reference (second timing) | {f['tool_b_spearman']:.3f} | | |",
        f"| (c) cost of one timing, median / max (s) | {_fmt(f['tool_cost_median'])} / "
        f"{_fmt(f['tool_cost_max'])} | {contrast('naive_cost_median', '{:.1f}')} | "
        "<= 15 s (GPU)"
        + (f": {verdict(f['tool_cost_max'] <= TARGETS['cost_gpu_s'])}" if is_cuda else "")
        + " |",
        f"| timed steps per tool timing (median) | {f['tool_steps_median']:.0f} | 8 | |",
        "",
        f"For contrast: Spearman of parameter count vs reference step time "
        f"{f['params_spearman']:.3f}; of MACs vs reference {f['macs_spearman']:.3f}. "
        f"All timings of one candidate took {f['bench_s_per_candidate']:.1f} s on average.",
    ]
    return lines, figures


def _ms(t: StepTiming | None, digits: int = 2) -> str:
    return _fmt(t.median_ms, digits) if t is not None and t.ok and t.median_ms else "—"


def row_lines(rows: list[Row]) -> list[str]:
    out = ["| # | arch hash | params (M) | MMACs | tool A ms | tool B ms | spread A | steps A "
           "| reference ms | naive A ms | naive B ms | cost A s | status |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        status = "ok" if r.ok else "; ".join(t.reason for t in r.timings if not t.ok)
        out.append(
            f"| {r.index} | `{spec_hash(r.spec)}` | {count_params(r.spec) / 1e6:.2f} | "
            f"{count_macs(r.spec, r.resolution) / 1e6:.0f} | {_ms(r.tool_a)} | {_ms(r.tool_b)} | "
            f"{_fmt(r.tool_a.spread or 0.0, 3)} | {r.tool_a.steps} | {_ms(r.long)} | "
            f"{_ms(r.naive_a)} | {_ms(r.naive_b)} | {_fmt(r.tool_a.time_s)} | {status} |")
    return out


def row_record(r: Row) -> dict[str, object]:
    """One candidate's timings as plain data (``--json``)."""
    def ms(t: StepTiming | None) -> float | None:
        return t.median_ms if t is not None and t.ok else None

    return {"index": r.index, "arch_hash": spec_hash(r.spec), "params": count_params(r.spec),
            "macs": count_macs(r.spec, r.resolution), "tool_a_ms": ms(r.tool_a),
            "tool_b_ms": ms(r.tool_b), "reference_ms": ms(r.long),
            "naive_a_ms": ms(r.naive_a), "naive_b_ms": ms(r.naive_b),
            "tool_a_s": r.tool_a.time_s, "tool_b_s": r.tool_b.time_s, "time_s": r.time_s,
            "status": "ok" if r.ok else "failed",
            "reason": "; ".join(t.reason for t in r.timings if not t.ok)}


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
    p.add_argument("--no-naive", dest="naive", action="store_false",
                   help="leave out the naive timings")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds the whole bench may take: candidates that would not end "
                        "within it are not measured")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="candidate i is sampled with seed+i")
    p.add_argument("--out", default=None, help="also write the markdown report here")
    p.add_argument("--json", default=None, help="also write the figures and rows as JSON here")
    args = p.parse_args(argv)
    if args.n < 2:
        p.error("--n must be >= 2")
    return args


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


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
    deadline = started + args.time_limit if args.time_limit else math.inf
    rows: list[Row] = []
    stopped = ""
    for i, spec in enumerate(specs):
        longest = max((r.time_s for r in rows), default=0.0)
        row = None if time.perf_counter() + longest > deadline \
            else measure(spec, i, target, args, deadline)
        if row is None:
            stopped = (f"time limit {args.time_limit:g} s: candidates {i}..{args.n - 1} "
                       "not measured")
            print(stopped, file=sys.stderr, flush=True)
            break
        rows.append(row)
        print(f"[{i + 1}/{args.n}] {spec_hash(spec)} tool {_ms(row.tool_a)}/{_ms(row.tool_b)} ms, "
              f"reference {_ms(row.long)} ms, naive {_ms(row.naive_a)}/{_ms(row.naive_b)} ms, "
              f"cost {row.tool_a.time_s:.1f} s, all timings {row.time_s:.1f} s",
              file=sys.stderr, flush=True)
    summary, figures = summarize(rows, target.is_cuda)
    info = describe_device(target)
    batch = rows[0].tool_a.batch_size if rows else args.batch
    policy = rows[0].tool_a if rows else None
    naive_line = "naive: 5 warm-up + 8 timed steps" if args.naive else "naive: not measured"
    lines = [
        f"# Timing fidelity: {target.device_name} ({target.name})",
        "",
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{command}`",
        f"- machine: {info['device_name']}; driver {info['driver_version']}; CUDA "
        f"{info['cuda_version']}; torch {info['torch_version']}; CPU {info['cpu_model']} "
        f"({info['cpu_count']} cores, {info['threads']} torch threads)",
        f"- load average (1/5/15 min) at start {load_start}, at end {_load()}",
        f"- space `{args.space}`, {len(rows)} of {args.n} candidates measured "
        f"(seeds {args.seed}..{args.seed + args.n - 1}), resolution {args.resolution}, "
        f"batch {batch}"
        + (f", {policy.precision}, {policy.memory_format}, optimizer {policy.optimizer}"
           if policy else "")
        + f", {args.num_classes} classes",
        f"- tool: `time_training_step` defaults (min 20 / max 200 steps, warm-up <= 50, "
        f"budget {args.budget:g} s, stability 2%, target RSE 0.5%); reference: "
        f"{args.long_steps} timed steps after warm-up; {naive_line}",
        f"- total bench time {time.perf_counter() - started:.0f} s"
        + (f"; stopped early, {stopped}" if stopped else ""),
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
        _write(args.out, report)
    if args.json:
        record = {"command": command, "device": info, "space": args.space,
                  "requested": args.n, "measured": len(rows), "stopped": stopped or None,
                  "resolution": args.resolution, "batch": batch,
                  "long_steps": args.long_steps, "wall_s": time.perf_counter() - started,
                  "figures": figures, "rows": [row_record(r) for r in rows]}
        _write(args.json, json.dumps(record, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
