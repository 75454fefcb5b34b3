"""Wall time of the Ray executor against the inline executor, on the same candidates.

Both runs use the same settings and seed, so the random strategy proposes the same candidates
in the same order (checked); each run is timed end to end, Ray's start-up, the reference
timing and the final report included. Target: Ray's overhead <= 10% of the run.

    python bench/executor_overhead.py --n 8 --out bench/results/executor_overhead.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from nas.search.config import SearchConfig
from nas.search.run import run_search
from proxy_train.hardware import cpu_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=8, help="candidates per run")
    p.add_argument("--hardware", default="cpu")
    p.add_argument("--space", default="v2b0")
    p.add_argument("--data", default="synthetic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the markdown report here")
    args = p.parse_args(argv)

    runs: dict[str, tuple[float, pd.DataFrame]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for executor in ("inline", "ray"):
            config = SearchConfig(
                budget=args.n, hardware=args.hardware, out=str(Path(tmp) / executor), space=args.space,
                data=args.data, executor=executor, seed=args.seed, progress=False,
            )
            start = time.perf_counter()
            summary, _ = run_search(config)
            wall = time.perf_counter() - start
            runs[executor] = (wall, pd.read_parquet(summary.run_dir / "leaderboard.parquet",
                                                   dtype_backend="numpy_nullable"))
            print(f"{executor}: {wall:.1f} s", file=sys.stderr)

    (t_inline, rows_inline), (t_ray, rows_ray) = runs["inline"], runs["ray"]
    same = list(rows_inline.sort_values("number").arch_hash) == list(rows_ray.sort_values("number").arch_hash)
    eval_inline = rows_inline.wall_time_s.sum()
    eval_ray = rows_ray.wall_time_s.sum()
    overhead = (t_ray - t_inline) / t_ray
    lines = [
        "# Ray executor vs inline executor",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {platform.node()}, {os.cpu_count()} cores, {cpu_model()}, {platform.platform()}",
        f"- python {platform.python_version()}, torch {torch.__version__}",
        f"- command: python bench/executor_overhead.py {' '.join(argv if argv is not None else sys.argv[1:])}",
        f"- settings: {args.n} candidates, space {args.space}, data {args.data}, hardware {args.hardware}, seed {args.seed}",
        f"- same candidates in both runs: {same}",
        "",
        "| executor | run wall time (s) | sum of candidate evaluation times (s) | ok / failed |",
        "|---|---|---|---|",
        f"| inline | {t_inline:.1f} | {eval_inline:.1f} | {(rows_inline.status == 'ok').sum()} / {(rows_inline.status == 'failed').sum()} |",
        f"| ray | {t_ray:.1f} | {eval_ray:.1f} | {(rows_ray.status == 'ok').sum()} / {(rows_ray.status == 'failed').sum()} |",
        "",
        f"Ray / inline wall time: {t_ray / t_inline:.3f}x; Ray's overhead: {overhead * 100:.1f}% of the Ray run "
        f"(target <= 10%).",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
