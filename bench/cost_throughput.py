"""Throughput of the analytic cost model on random specs the size of EfficientNetV2-S.

Usage: ``python bench/cost_throughput.py [--specs 2000] [--repeats 5] [--resolution 224]``.
Prints a Markdown report (machine, date, Python, command, figures) to stdout; the recorded
run is ``bench/results/cost_throughput.md``. One process, one core.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable

from search_space.cost import cost, count_macs, count_params, stage_costs
from search_space.presets import get_preset
from search_space.spec import ArchSpec


def perturbed_v2s(rng: random.Random) -> ArchSpec:
    """EfficientNetV2-S with every stage's depth, width, kernel and expansion perturbed."""
    base = get_preset("efficientnetv2-s").spec
    stages = []
    for stage in base.stages:
        stages.append(
            dataclasses.replace(
                stage,
                layers=max(1, stage.layers + rng.randint(-2, 2)),
                out_channels=max(8, stage.out_channels + 8 * rng.randint(-2, 2)),
                kernel=rng.choice((3, 5)),
                expansion=1 if stage.expansion == 1 else rng.choice((4, 6)),
                se_ratio=stage.se_ratio if stage.block == "fused" else rng.choice((0.0, 0.25)),
            )
        )
    return dataclasses.replace(base, stages=tuple(stages))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _uname() -> str:
    try:
        done = subprocess.run(["uname", "-a"], capture_output=True, text=True, check=True)
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return " ".join(platform.uname())


def _nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _rate(fn: Callable[[ArchSpec], object], specs: list[ArchSpec], repeats: int) -> float:
    """Best-of-``repeats`` specs per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for spec in specs:
            fn(spec)
        best = min(best, time.perf_counter() - start)
    return len(specs) / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    specs = [perturbed_v2s(rng) for _ in range(args.specs)]
    res = args.resolution
    figures = [
        (f"cost(spec, {res})", _rate(lambda s: cost(s, res), specs, args.repeats)),
        ("count_params(spec)", _rate(count_params, specs, args.repeats)),
        (f"count_macs(spec, {res})", _rate(lambda s: count_macs(s, res), specs, args.repeats)),
        (f"stage_costs(spec, {res})", _rate(lambda s: stage_costs(s, res), specs, args.repeats)),
    ]
    mean_blocks = sum(s.num_blocks for s in specs) / len(specs)
    mean_params = sum(count_params(s) for s in specs) / len(specs)
    uname = _uname()
    words = [sys.executable, sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    command = " ".join(shlex.quote(a) for a in words)
    print("# Cost-model throughput\n")
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    print(f"- machine: `{uname}`")
    print(f"- cpu: {_cpu_model()}; nproc: {_nproc()} (the benchmark uses one core)")
    print(f"- python: {platform.python_implementation()} {platform.python_version()}")
    print(f"- command: `{command}`")
    print(
        f"- workload: {len(specs)} perturbed EfficientNetV2-S specs (seed {args.seed}), "
        f"mean {mean_blocks:.1f} blocks, mean {mean_params / 1e6:.2f} M params; "
        f"best of {args.repeats} passes\n"
    )
    print("| call | specs/second | microseconds/spec |")
    print("|---|---:|---:|")
    for name, rate in figures:
        print(f"| `{name}` | {rate:,.0f} | {1e6 / rate:.1f} |")
    target = 10_000
    verdict = "meets" if figures[0][1] >= target else "MISSES"
    print(f"\n`cost(spec, {res})` {verdict} the target of {target:,} specs/second.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
