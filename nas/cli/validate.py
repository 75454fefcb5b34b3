"""``nas-validate``: does a search's proxy rank candidates like real training?

Parse the arguments, build a :class:`ValidateConfig`, run :func:`run_validation`, print the
statistics and the verdict. Exit status: 0 validated, 2 bad input (nothing written), 130 /
143 interrupted (the same command continues).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from nas.cli.parser import OneLineParser
from nas.run.interrupt import Interrupted, StopSignals
from nas.run.progress import say_on_stderr, silent
from nas.run.settings import EXECUTORS
from nas.validate.config import ValidateConfig
from search_space.errors import NasError


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="nas-validate", description=(
        "Measure whether a finished search's proxy ranks candidates like long training."))
    p.add_argument("run", metavar="RUN", help="the folder of a finished search")
    p.add_argument("--k", type=int, default=10,
                   help="candidates to validate: the top 3 and the rest spread over the "
                        "search's range (default 10)")
    p.add_argument("--seeds", type=int, default=2,
                   help="proxy runs per candidate besides the search's own (default 2)")
    p.add_argument("--long-seeds", type=int, default=2,
                   help="long trainings per candidate (default 2: their agreement is the "
                        "ceiling any proxy can reach)")
    p.add_argument("--epochs", type=int,
                   help="epochs of the long training (default: 4 x the proxy's)")
    p.add_argument("--recipe", default="proxy",
                   help="the long training's recipe: proxy (default: the proxy's own recipe "
                        "on whole epochs at the data's full size), or as nas-train's: "
                        "progressive, fixed, or a recipe file")
    p.add_argument("--proxy", help="a recipe JSON file to validate instead of the search's "
                                   "proxy recipe")
    p.add_argument("--hardware", help="where the jobs run (default: the search's hardware)")
    p.add_argument("--workers", type=int, default=1, help="jobs run at once")
    p.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT")
    p.add_argument("--executor", default="ray", help=f"one of {', '.join(EXECUTORS)}")
    p.add_argument("--cpus-per-job", type=float,
                   help="CPU threads per job (default: local cores / workers)")
    p.add_argument("--out", help="folder for the validation's files (default: RUN)")
    p.add_argument("--reuse", help="another validation (folder or validation.parquet) whose "
                                   "finished jobs with the same key are copied, not run")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the choice of candidates, the runs and the bootstrap")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar and no set-up lines")
    return p


def config_from_args(args: argparse.Namespace) -> ValidateConfig:
    return ValidateConfig(
        run=args.run, k=args.k, seeds=args.seeds, long_seeds=args.long_seeds,
        epochs=args.epochs, recipe=args.recipe, proxy=args.proxy,
        hardware=None if args.hardware is None else args.hardware.lower(),
        workers=args.workers, address=args.address, executor=args.executor,
        cpus_per_job=args.cpus_per_job, out=args.out, reuse=args.reuse, seed=args.seed,
        progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config: ValidateConfig | None = None
    with StopSignals() as signals:
        try:
            config = config_from_args(args)
            return validate(config, signals)
        except NasError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2


def validate(config: ValidateConfig, signals: StopSignals) -> int:
    """Run ``config`` and print its result; the exit status (interrupts included)."""
    from nas.validate.run import run_validation  # heavy imports once the arguments are sound

    say = say_on_stderr if config.progress else silent
    try:
        summary = run_validation(config, say=say, signals=signals)
    except KeyboardInterrupt as stop:
        name = stop.signal_name if isinstance(stop, Interrupted) else "SIGINT"
        print(f"interrupted by {name}: {_saved(config)}; run the same command to continue",
              file=sys.stderr)
        return stop.exit_code if isinstance(stop, Interrupted) else 130
    print(report_lines(summary.statistics))
    print(f"validation:    {summary.out / 'validation.parquet'}  ({summary.ran} jobs run, "
          f"{summary.already} already finished)")
    print(f"statistics:    {summary.out / 'validation.json'}")
    print(f"plot:          {summary.out / 'validation.png'}")
    print(summary.verdict)
    return 0


def report_lines(stats: Mapping[str, Any]) -> str:
    """The statistics as aligned lines: what each compares, τ with its interval and n, ρ."""
    from results.fidelity import describe
    from results.signals import SIGNALS

    names = (("proxy_vs_long", "proxy vs long (accuracy, one proxy run)"),
             ("proxy_mean_vs_long", "proxy mean of its runs vs long"),
             ("reward_proxy_vs_long", "proxy reward vs long reward"),
             ("proxy_seed_vs_seed", "proxy seed vs seed"),
             ("long_seed_vs_seed", "long seed vs seed (the ceiling)"),
             *((f"{signal.name}_vs_long", f"proxy {signal.label} vs long")
               for signal in SIGNALS),
             ("params_vs_long", "params alone vs long"),
             ("macs_vs_long", "MACs alone vs long"),
             ("step_time_vs_long", "step time alone vs long"),
             ("interim_vs_final_reward", "reward at ASHA's grace vs final"))
    width = max(len(label) for _, label in names)
    lines = []
    for key, label in names:
        found = stats.get(key)
        rho = "" if not found or found.get("rho") is None else f"  ρ = {found['rho']:.2f}"
        lines.append(f"{label.ljust(width)}  {describe(found)}{rho}")
    best = stats.get("best")
    if best:
        for key, label in (("proxy_best", "the proxy's best"), ("search_best",
                                                                 "the search's pick")):
            entry = best.get(key)
            if entry:
                top = "in" if entry["in_long_top3"] else "NOT in"
                lines.append(f"{label} (search rank {entry['search_rank']}) is rank "
                             f"{entry['long_rank']:g} of {best['n']} by long reward: {top} "
                             "its top 3")
    return "\n".join(lines)


def _saved(config: ValidateConfig | None) -> str:
    if config is None:
        return "nothing was written"
    path = config.out_dir / "validation.parquet"
    try:
        from results.validation import read_validation

        rows, _ = read_validation(path)
    except (NasError, OSError):
        return "no job had finished"
    return f"{len(rows)} finished jobs are saved in {path}"


if __name__ == "__main__":
    raise SystemExit(main())
