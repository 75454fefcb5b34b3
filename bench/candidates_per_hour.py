"""Candidates per GPU-hour: what one candidate of a search costs, evaluated naively.

One candidate is evaluated exactly as ``nas-search --executor inline`` evaluates it (the run's
set-up from ``nas.search.setup``: the hardware's default recipe, the data's timing resolution, the
profile's timing batch; then ``nas.search.trial.evaluate``: the step timing at the target
resolution, then proxy training with an evaluation after every epoch), one candidate at a
time, nothing overlapped. A different architecture (``--warmup-arch``) is evaluated first,
untimed, so that the timed one finds the process as a search's later candidates do (CUDA
context, library handles and kernels loaded) while its own shapes are new to cuDNN's
autotuner, as a new candidate's are.

Reported per timed evaluation: its wall time split into the step timing, the proxy training
(per epoch: the training steps with their augmentation, and the evaluation) and the rest;
the training images per second; candidates per hour (3600 / wall time); and, as an
extrapolation at the measured speed, the training time of one epoch of a CIFAR-size set
(50,000 images).

    python bench/candidates_per_hour.py --hardware auto --arch efficientnetv2-s \\
        --out bench/results/candidates_per_hour_h100.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from typing import Any

import torch

from nas.run.progress import counted
from nas.search.config import SearchConfig
from nas.search.setup import check_settings, prepare_setup
from nas.search.trial import Job, TrialContext, evaluate
from proxy_train.data import DataSplits, load_data
from proxy_train.hardware import describe_device, resolve_hardware
from proxy_train.loop import epoch_steps
from results.rows import Outcome
from search_space.codec import spec_hash
from search_space.cost import count_params
from search_space.errors import NasError
from search_space.resolve import resolve_arch
from search_space.spec import ArchSpec

CIFAR_TRAIN = 50_000
"""Training images of a CIFAR-size set, for the extrapolation."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hardware", default="auto", help="auto, cpu, h100, ... (default auto)")
    p.add_argument("--arch", default="efficientnetv2-s",
                   help="the candidate: a preset, a JSON file or a canonical string "
                        "(default efficientnetv2-s)")
    p.add_argument("--warmup-arch", default="efficientnetv2-b0",
                   help="evaluated first, untimed ('none': no warm-up)")
    p.add_argument("--data", default="synthetic", help="as nas-search --data (default synthetic)")
    p.add_argument("--repeats", type=int, default=1, help="timed evaluations (default 1)")
    p.add_argument("--epochs", type=int, help="proxy epochs (default: the recipe's)")
    p.add_argument("--proxy-resolution", type=int, help="as nas-search")
    p.add_argument("--timing-resolution", type=int, help="as nas-search")
    p.add_argument("--timing-batch", type=int, help="as nas-search")
    p.add_argument("--timing-steps", type=int, help="as nas-search")
    p.add_argument("--timing-budget", type=float, help="as nas-search")
    p.add_argument("--cpus-per-trial", type=float, help="as nas-search")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the markdown report here")
    p.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    return args


def search_context(args: argparse.Namespace, run_dir: str) -> tuple[TrialContext, DataSplits]:
    """The context and data ``nas-search`` would evaluate candidates with."""
    config = SearchConfig(budget=1, hardware=args.hardware, out=run_dir, data=args.data,
                          executor="inline", epochs=args.epochs,
                          proxy_resolution=args.proxy_resolution,
                          timing_resolution=args.timing_resolution,
                          timing_batch=args.timing_batch, timing_steps=args.timing_steps,
                          timing_budget=args.timing_budget, cpus_per_trial=args.cpus_per_trial,
                          seed=args.seed, progress=False)
    plan = check_settings(config)
    data = load_data(config.data, seed=config.seed)
    return prepare_setup(config, plan, data).context, data


def measure(spec: ArchSpec, number: int, context: TrialContext,
            data: DataSplits) -> tuple[Outcome, float]:
    """Evaluate ``spec`` as a search's candidate; its outcome and wall time."""
    started = time.perf_counter()
    outcome = evaluate(Job(number, spec, seed=number), context, data)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return outcome, time.perf_counter() - started


def breakdown(outcome: Outcome, wall_s: float, images_per_epoch: int) -> dict[str, Any]:
    """Where one evaluation's time went, and the figures derived from it.
    ``images_per_epoch``: the images one proxy epoch trains on."""
    timing, training = outcome.timing, outcome.training
    timing_s = timing.time_s if timing is not None else 0.0
    history = training.history if training is not None else ()
    train_s = sum(e.epoch_time_s for e in history)
    # An epoch's images/s counts its training steps (with augmentation) only, not its
    # evaluation: the steps took images / (images/s) of the epoch's time.
    steps_s = sum(images_per_epoch / e.images_per_s for e in history)
    images_per_s = len(history) * images_per_epoch / steps_s if steps_s else None
    return {
        "status": outcome.status, "reason": outcome.reason, "wall_s": wall_s,
        "timing_s": timing_s, "step_ms": timing.median_ms if timing is not None else None,
        "training_s": train_s, "training_steps_s": steps_s, "evaluation_s": train_s - steps_s,
        "other_s": wall_s - timing_s - train_s, "epochs": len(history),
        "train_images_per_s": images_per_s, "candidates_per_hour": 3600.0 / wall_s,
        "cifar_epoch_s": CIFAR_TRAIN / images_per_s if images_per_s else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        target = resolve_hardware(args.hardware)
        spec = resolve_arch(args.arch)
        warmup = None if args.warmup_arch == "none" else resolve_arch(args.warmup_arch)
        with tempfile.TemporaryDirectory(prefix="candidates-per-hour-") as run_dir:
            context, data = search_context(args, run_dir)
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spec = dataclasses.replace(spec, num_classes=data.num_classes)
    command = "python bench/candidates_per_hour.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    warmup_s = None
    if warmup is not None:
        outcome, warmup_s = measure(dataclasses.replace(warmup, num_classes=data.num_classes),
                                    0, context, data)
        print(f"warm-up {args.warmup_arch}: {outcome.status} in {warmup_s:.1f} s",
              file=sys.stderr, flush=True)
    recipe = context.recipe
    images_per_epoch = epoch_steps(recipe, len(data.train)) \
        * min(recipe.batch_size, len(data.train))
    runs = []
    for i in range(args.repeats):
        outcome, wall = measure(spec, i + 1, context, data)
        runs.append(breakdown(outcome, wall, images_per_epoch))
        print(f"evaluation {i + 1}: {outcome.status} in {wall:.1f} s", file=sys.stderr,
              flush=True)
    first = runs[0]
    info = describe_device(target)
    n_train = len(data.train)
    lines = [
        f"# Candidates per GPU-hour: {target.device_name} ({target.name})",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- command: `{command}`",
        f"- machine: {info['device_name']}; driver {info['driver_version']}; CUDA "
        f"{info['cuda_version']}; torch {info['torch_version']}; CPU {info['cpu_model']} "
        f"({info['cpu_count']} cores)",
        f"- candidate `{args.arch}` ({spec_hash(spec)}, {count_params(spec) / 1e6:.1f}M "
        f"params with {data.num_classes} classes); warm-up candidate "
        f"`{args.warmup_arch}`" + (f" ({warmup_s:.1f} s, untimed)" if warmup_s else ""),
        f"- data `{data.name}`: {n_train} training images at {data.resolution} px "
        f"({images_per_epoch} trained per epoch), {len(data.minival)} minival",
        f"- proxy: {counted(recipe.epochs, 'epoch')} at "
        f"{recipe.train_resolution(data.resolution)} px, "
        f"batch {recipe.batch_size}, {recipe.optimizer}, RandAugment magnitude "
        f"{recipe.randaug_magnitude:g}; step timing at {context.timing_resolution} px, "
        f"batch {context.timing_batch}, at least {context.timing_min_steps} steps, "
        f"budget {context.timing_budget_s:g} s",
        f"- total bench time {time.perf_counter() - started:.0f} s",
        "",
        "| evaluation | status | wall s | step timing s | training s (steps + evaluation) "
        "| other s | train images/s | candidates per hour |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs):
        ips = f"{r['train_images_per_s']:.0f}" if r["train_images_per_s"] else "—"
        lines.append(
            f"| {i + 1} | {r['status']} | {r['wall_s']:.1f} | {r['timing_s']:.1f} | "
            f"{r['training_s']:.1f} ({r['training_steps_s']:.1f} + {r['evaluation_s']:.1f}) | "
            f"{r['other_s']:.1f} | {ips} | {r['candidates_per_hour']:.0f} |")
    lines += [
        "",
        f"Naively, one candidate at a time: **{first['candidates_per_hour']:.0f} candidates "
        f"per hour** on this device (first timed evaluation, {first['wall_s']:.1f} s)."
        + (f" At its training speed one epoch of {CIFAR_TRAIN:,} images would take "
           f"{first['cifar_epoch_s']:.0f} s, {counted(recipe.epochs, 'such epoch')} "
           f"{recipe.epochs * first['cifar_epoch_s']:.0f} s (an extrapolation)."
           if first["cifar_epoch_s"] else ""),
        *([f"First evaluation failed: {first['reason']}"] if first["status"] != "ok" else []),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        _write(args.out, report)
    if args.json:
        record = {"command": command, "device": info, "arch": args.arch,
                  "warmup_arch": args.warmup_arch, "warmup_s": warmup_s,
                  "recipe": recipe.to_dict(), "train_images": n_train,
                  "images_per_epoch": images_per_epoch,
                  "timing_resolution": context.timing_resolution,
                  "timing_batch": context.timing_batch,
                  "figures": first, "evaluations": runs}
        _write(args.json, json.dumps(record, indent=1, default=str) + "\n")
    return 0 if first["status"] == "ok" else 1


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
