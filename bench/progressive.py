"""Progressive learning with adaptive regularization against fixed-size training (paper §4).

Trains one model on one data set three ways, for the same number of epochs and with the same
final-training recipe as ``nas-train`` (``nas.train.plan``), seeds interleaved so that the
machine's noise falls on every variant alike:

(a) ``fixed``: every epoch at the full size, with the final regularization;
(b) ``progressive``: ``--stages`` stages from half to full size, RandAugment, mixup and
    dropout growing with the size (Algorithm 1);
(c) ``progressive, final reg.``: the same sizes, regularization fixed at its final values.

It reports each run's wall time (training and the per-epoch minival evaluation), its CPU time
(which, with one torch thread, does not grow when other processes share the machine) and its
final test top-1 (EMA weights, at the eval size), the means per variant, and the paper's two claims
as ratios: (b) trains faster than (a) at about the same accuracy (target: at least 1.3x, within
1 point), and (b) is more accurate than (c). A plot of test top-1 against wall time goes beside
the report.

    python bench/progressive.py --arch efficientnetv2-b0 --epochs 12 --seeds 0 1 \
        --threads 1 --out bench/results/progressive_cpu.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nas.cli.train import train_model
from nas.train.config import TrainConfig
from nas.train.plan import TrainPlan, make_plan
from proxy_train.data import DataSplits, load_data
from proxy_train.hardware import cpu_model, resolve_hardware
from proxy_train.loop import TrainResult, train
from proxy_train.recipe import Recipe

VARIANTS = ("fixed", "progressive", "progressive, final reg.")


def recipes(args: argparse.Namespace, data: DataSplits, cuda: bool) -> dict[str, TrainPlan]:
    """The three variants' plans, from ``nas-train``'s own recipe builder."""
    full = args.size or data.resolution
    half = max(8, full // 2)
    common = dict(arch=args.arch, out="unused", data=args.data, epochs=args.epochs,
                  batch_size=args.batch_size, eval_size=args.eval_size)
    model = train_model(TrainConfig(**common))  # type: ignore[arg-type]
    fixed = make_plan(TrainConfig(**common, recipe="fixed", sizes=(full, full)),  # type: ignore[arg-type]
                      model, data.resolution, cuda=cuda, num_classes=data.num_classes)
    progressive = make_plan(TrainConfig(**common, stages=args.stages,  # type: ignore[arg-type]
                                        sizes=(half, full)), model, data.resolution, cuda=cuda,
                            num_classes=data.num_classes)
    final = progressive.progressive.to_stages(regularization="final")
    final_plan = replace(progressive, recipe=progressive.recipe.replace(
        stages=[s.to_dict() for s in final]))
    return {"fixed": fixed, "progressive": progressive, "progressive, final reg.": final_plan}


@dataclass(frozen=True)
class Run:
    result: TrainResult
    cpu_s: float
    """CPU time of this process during the run: unlike the wall time, it does not grow when
    other processes share the machine (with one torch thread it is the compute itself)."""

    @property
    def wall_s(self) -> float:
        return self.result.wall_time_s


def run(plan: TrainPlan, data: DataSplits, seed: int, device: str, precision: str,
        threads: int | None) -> Run:
    recipe: Recipe = plan.recipe.replace(seed=seed, cpu_threads=threads)
    before = time.process_time()
    result = train(plan.model.spec, recipe, data, device=device, seed=seed,
                   precision=precision, test=data.test)
    return Run(result, time.process_time() - before)


def warm_up(plans: dict[str, TrainPlan], data: DataSplits, device: str, precision: str,
            threads: int | None) -> None:
    """Two untimed steps at every stage size of every variant first, so that no variant pays
    for the process's one-time start-up (kernel selection, allocator growth)."""
    for plan in plans.values():
        short = [{**s.to_dict(), "epochs": 1} for s in plan.recipe.stages]
        recipe = plan.recipe.replace(epochs=len(short), stages=short,
                                     max_train_batches_per_epoch=2)
        run(replace(plan, recipe=recipe), data, 0, device, precision, threads)


def _test(run: Run) -> float:
    result = run.result
    value = result.test_top1_ema if result.test_top1_ema is not None else result.test_top1
    assert value is not None, "the data has a test split"
    return value


def report(args: argparse.Namespace, plans: dict[str, TrainPlan], data: DataSplits,
           runs: dict[str, list[Run]], device: str, wall: float) -> str:
    lines = [
        "# Progressive learning vs fixed-size training",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.node()}, {cpu_model()}, {torch.get_num_threads()} torch "
        f"threads, device {device}; torch {torch.__version__}",
        f"- command: `python {' '.join(sys.argv)}`",
        f"- model: {plans['fixed'].model.name} ({plans['fixed'].model.source}); data: "
        f"{data.name} ({len(data.train)} train, {len(data.minival)} minival, "
        f"{len(data.test) if data.test is not None else 0} test images, "
        f"{data.resolution} px)",
        f"- recipe: nas-train's ({args.epochs} epochs, batch {plans['fixed'].recipe.batch_size}, "
        f"{plans['fixed'].recipe.optimizer}, EMA {plans['fixed'].recipe.ema_decay}, eval at "
        f"{plans['fixed'].recipe.eval_resolution} px); whole bench {wall / 60:.1f} min",
        "",
        "| variant | stages (epochs @ px, RandAugment, mixup, dropout) |",
        "|---|---|",
    ]
    for name, plan in plans.items():
        stages = ", ".join(f"{s.epochs}@{s.resolution} ({s.randaug_magnitude:g}, "
                           f"{s.mixup_alpha:g}, {s.dropout:g})" for s in plan.recipe.stages)
        lines.append(f"| {name} | {stages} |")
    lines += ["", "| variant | seed | wall s | CPU s | test top-1 (EMA) | test top-1 (trained) "
                  "| minival top-1 (EMA) |", "|---|---|---|---|---|---|---|"]
    for name in VARIANTS:
        for seed, r in zip(args.seeds, runs[name]):
            lines.append(f"| {name} | {seed} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {_test(r):.4f} "
                         f"| {r.result.test_top1:.4f} | {r.result.accuracy:.4f} |")
    mean_wall = {n: statistics.mean(r.wall_s for r in runs[n]) for n in VARIANTS}
    mean_cpu = {n: statistics.mean(r.cpu_s for r in runs[n]) for n in VARIANTS}
    mean_acc = {n: statistics.mean(_test(r) for r in runs[n]) for n in VARIANTS}
    lines += ["", "| variant | mean wall s | mean CPU s | mean test top-1 |", "|---|---|---|---|"]
    lines += [f"| {n} | {mean_wall[n]:.1f} | {mean_cpu[n]:.1f} | {mean_acc[n]:.4f} |"
              for n in VARIANTS]
    speedup = mean_wall["fixed"] / mean_wall["progressive"]
    cpu_speedup = mean_cpu["fixed"] / mean_cpu["progressive"]
    gap = 100 * (mean_acc["progressive"] - mean_acc["fixed"])
    adaptive = 100 * (mean_acc["progressive"] - mean_acc["progressive, final reg."])
    test_n = len(data.test) if data.test is not None else 0
    lines += [
        "",
        f"- (b) vs (a) wall time: **{speedup:.2f}x** faster (target >= 1.3x: "
        f"{'met' if speedup >= 1.3 else f'missed by {1.3 - speedup:.2f}x'}); CPU time "
        f"{cpu_speedup:.2f}x",
        f"- (b) - (a) test top-1: **{gap:+.1f} points** (target >= -1: "
        f"{'met' if gap >= -1 else f'missed by {-1 - gap:.1f} points'})",
        f"- (b) - (c) test top-1: **{adaptive:+.1f} points** (target > 0: "
        f"{'met' if adaptive > 0 else 'missed'})",
        f"- one test top-1 of {test_n} images has a standard error of about "
        f"{100 * (0.25 / max(test_n, 1)) ** 0.5:.1f} points (at 50%); the means are over "
        f"{len(args.seeds)} seeds",
    ]
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, list[Run]], path: Path) -> None:
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for name, marker in zip(VARIANTS, "os^"):
        ax.scatter([r.wall_s for r in runs[name]], [_test(r) for r in runs[name]],
                   marker=marker, s=50, label=name)
    ax.set_xlabel("wall time, s")
    ax.set_ylabel("test top-1 (EMA weights)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="efficientnetv2-b0")
    p.add_argument("--data", default="synthetic")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--stages", type=int, default=4)
    p.add_argument("--size", type=int, help="full training size (default: the data's)")
    p.add_argument("--eval-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--hardware", default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", type=Path, help="write the report here (and a .png beside it)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    target = resolve_hardware(args.hardware)
    data = load_data(args.data)
    plans = recipes(args, data, target.is_cuda)
    if args.threads:
        torch.set_num_threads(args.threads)
    warm_up(plans, data, target.device, target.profile.precision, args.threads)
    runs: dict[str, list[Run]] = {n: [] for n in VARIANTS}
    for seed in args.seeds:
        for name in VARIANTS:
            done = run(plans[name], data, seed, target.device, target.profile.precision,
                       args.threads)
            if not done.result.ok:
                print(f"error: {name}, seed {seed}: {done.result.reason}", file=sys.stderr)
                return 1
            runs[name].append(done)
            print(f"{name:24s} seed {seed}: {done.wall_s:7.1f} s wall, {done.cpu_s:7.1f} s "
                  f"CPU, test top-1 {_test(done):.4f}", file=sys.stderr, flush=True)
    text = report(args, plans, data, runs, target.device, time.perf_counter() - start)
    print(text)
    if args.out:
        args.out.write_text(text)
        plot(runs, args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
