"""``nas-validate``: does a search's proxy rank candidates like real training?

Parse the arguments, build a :class:`ValidateConfig`, run :func:`run_validation`, print the
statistics and the verdict. Exit status: 0 validated, 2 bad input (nothing written), 130 /
143 interrupted (the same command continues).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from nas.cli.command import Invocation, run_command
from nas.cli.parser import OneLineParser
from nas.run.progress import say_on_stderr, silent
from nas.run.settings import EXECUTORS
from nas.track import TRACKERS
from nas.validate.config import ValidateConfig
from search_space.errors import NasError
from search_space.messages import are, counted


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="nas-validate", description=(
        "Measure whether a finished search's proxy ranks candidates like long training."))
    p.add_argument("run", metavar="RUN", help="the folder of a finished search")
    what = p.add_argument_group("what to validate")
    what.add_argument("--k", type=int, default=10,
                      help="candidates to validate: the top 3 and the rest spread over the "
                           "search's range")
    what.add_argument("--seeds", type=int, default=2,
                      help="proxy runs per candidate besides the search's own")
    what.add_argument("--long-seeds", type=int, default=2,
                      help="long trainings per candidate (their agreement is the ceiling any "
                           "proxy can reach)")
    what.add_argument("--epochs", type=int,
                      help="epochs of the long training (default: 4 x the proxy's)")
    what.add_argument("--recipe", default="proxy",
                      help="the long training's recipe: proxy (the proxy's own recipe on "
                           "whole epochs at the data's full size), or as nas-train's: "
                           "progressive, fixed, or a recipe file")
    what.add_argument("--proxy", metavar="FILE",
                      help="a JSON object of proxy recipe fields to validate, replacing the "
                           "search's proxy's (default: the search's proxy recipe)")
    what.add_argument("--seed", type=int, default=0,
                      help="seeds the choice of candidates, the runs and the bootstrap")
    where = p.add_argument_group("where it runs")
    where.add_argument("--hardware", help="where the jobs run (default: the search's hardware)")
    where.add_argument("--workers", type=int, default=1, help="jobs run at once")
    where.add_argument("--executor", default="ray", help=f"one of {', '.join(EXECUTORS)}")
    where.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: Ray "
                                         "in this process)")
    where.add_argument("--cpus-per-job", type=float,
                       help="CPU threads per job (default: local cores / workers)")
    files = p.add_argument_group("files and output")
    files.add_argument("--out", help="folder for the validation's files (default: RUN)")
    files.add_argument("--reuse", help="another validation (folder or validation.parquet) whose "
                                       "finished jobs with the same key are copied, not run "
                                       "(default: none)")
    files.add_argument("--tracker", action="append", default=[], choices=TRACKERS,
                       help="log to an experiment tracker (repeatable: mlflow, wandb, "
                            "tensorboard; default: none)")
    files.add_argument("--no-progress", action="store_true",
                       help="no progress bar and no set-up lines")
    return p


def config_from_args(args: argparse.Namespace) -> ValidateConfig:
    return ValidateConfig(
        run=args.run, k=args.k, seeds=args.seeds, long_seeds=args.long_seeds,
        epochs=args.epochs, recipe=args.recipe, proxy=args.proxy,
        hardware=None if args.hardware is None else args.hardware.lower(),
        workers=args.workers, address=args.address, executor=args.executor,
        cpus_per_job=args.cpus_per_job, out=args.out, reuse=args.reuse, seed=args.seed,
        progress=not args.no_progress, trackers=tuple(args.tracker))


def main(argv: list[str] | None = None) -> int:
    """Run ``nas-validate``; returns the exit code (see the module docstring;
    ``nas.cli.command``)."""
    return run_command(build_parser(), lambda invocation: validate(
        config_from_args(invocation.args), invocation), argv)


def validate(config: ValidateConfig, invocation: Invocation) -> int:
    """Run ``config`` and print its result; the exit status of a validation that ends by
    itself."""
    from nas.validate.run import run_validation  # heavy imports once the arguments are sound

    invocation.interrupted = lambda name: (f"interrupted by {name}: {_saved(config)}; run the "
                                           "same command to continue")
    say = say_on_stderr if config.progress else silent
    summary = run_validation(config, say=say, signals=invocation.signals)
    print(report_lines(summary.statistics))
    print(f"validation:    {summary.out / 'validation.parquet'}  ({counted(summary.ran, 'job')} run, "
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


def _saved(config: ValidateConfig) -> str:
    path = config.out_dir / "validation.parquet"
    try:
        from results.validation import read_validation

        rows, _ = read_validation(path)
    except (NasError, OSError):
        return "no job had finished"
    return f"{counted(len(rows), 'finished job')} {are(len(rows))} saved in {path}"


if __name__ == "__main__":
    raise SystemExit(main())
