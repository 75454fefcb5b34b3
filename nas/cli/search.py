"""``nas-search``: training-aware architecture search on Ray Tune (or inline).

Parse the arguments, build a :class:`SearchConfig`, run :func:`run_search`, print a summary.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from nas.cli.parser import OneLineParser
from nas.run.interrupt import Interrupted, StopSignals
from nas.run.settings import EXECUTORS, ConfigError, check_out
from nas.search.cluster import check_reachable
from nas.search.config import EARLY_STOP, STRATEGIES, SearchConfig
from nas.track import TRACKERS
from nas.validate.config import ValidateConfig
from search_space.checks import parse_count
from search_space.errors import NasError


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="nas-search", description="Training-aware neural architecture search.")
    p.add_argument("--budget", type=int, required=True, help="number of candidates to finish")
    p.add_argument("--hardware", required=True, help="target hardware: auto, cpu, v100, a100, h100, h200, l4, t4, a10g")
    p.add_argument("--space", default="v2b0", help="search space: a shipped name (v2b0, v2s, paper) or a TOML/JSON file")
    p.add_argument("--data", default="synthetic", help="data: synthetic, folder:PATH, cifar10:PATH, cifar100:PATH, parquet:PATH")
    p.add_argument("--strategy", default="random", help=f"one of {', '.join(STRATEGIES)}")
    p.add_argument("--objective", default="train",
                   help="train (time and proxy-train every candidate) or surrogate (a "
                        "deterministic function of the spec: a dry run of the machinery)")
    p.add_argument("--epochs", type=int, help="proxy-training epochs (default: recipe's)")
    p.add_argument("--proxy-resolution", type=int, help="proxy-training image size (default: half the data's)")
    p.add_argument("--timing-resolution", type=int, help="image size of the step timing (default: the data's)")
    p.add_argument("--timing-batch", type=int, help="batch of the step timing (default: the hardware's)")
    p.add_argument("--timing-steps", type=int, help="fewest timed steps per candidate (default: 20 on GPUs, 10 on CPUs)")
    p.add_argument("--timing-budget", type=float, help="seconds of timing per candidate once the fewest steps are done (default: 10 on GPUs, 3 on CPUs)")
    p.add_argument("--reference", help="model that normalizes step time and params (default: the space's)")
    p.add_argument("--workers", type=int, default=1, help="candidates evaluated at once")
    p.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: Ray in this process)")
    p.add_argument("--executor", default="ray", help=f"one of {', '.join(EXECUTORS)}")
    p.add_argument("--early-stop", default="none", help=f"one of {', '.join(EARLY_STOP)}")
    p.add_argument("--cpus-per-trial", type=float)
    p.add_argument("--gpus-per-trial", type=float)
    p.add_argument("--retries", type=int, default=1, help="retries of a trial whose worker or node dies")
    p.add_argument("--node-timeout", type=float, default=300.0,
                   help="seconds to wait for a Ray node that can run a trial before stopping (default 300)")
    p.add_argument("--max-params", type=_count("--max-params"),
                   help="skip candidates with more parameters (e.g. 8M, 8000000)")
    p.add_argument("--max-macs", type=_count("--max-macs"),
                   help="skip candidates with more MACs at the timing resolution (e.g. 1.5G)")
    p.add_argument("--reward-w", type=float, default=-0.07, help="exponent of normalized step time")
    p.add_argument("--reward-v", type=float, default=-0.05, help="exponent of normalized parameters")
    p.add_argument("--out", help="run directory (default: runs/<timestamp>); an existing run continues")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validate", type=int, metavar="K", help="then validate the proxy on K of the candidates (nas-validate RUN --k K)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar and no set-up lines")
    p.add_argument("--tracker", action="append", default=[], choices=TRACKERS, help="log to an experiment tracker (repeatable): mlflow, wandb, tensorboard")
    return p


def _count(flag: str) -> Callable[[str], int]:
    """An argparse type for a count written as ``8M``, ``1.5G`` or ``8000000``."""
    def parse(text: str) -> int:
        try:
            return parse_count(text, flag)
        except NasError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    out = args.out or str(Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    return SearchConfig(
        budget=args.budget,
        hardware=args.hardware.lower(),
        out=out,
        space=args.space,
        data=args.data,
        strategy=args.strategy,
        epochs=args.epochs,
        proxy_resolution=args.proxy_resolution,
        workers=args.workers,
        address=args.address,
        executor=args.executor,
        seed=args.seed,
        reward_w=args.reward_w,
        reward_v=args.reward_v,
        reference=args.reference,
        timing_batch=args.timing_batch,
        timing_resolution=args.timing_resolution,
        timing_steps=args.timing_steps,
        timing_budget=args.timing_budget,
        max_params=args.max_params,
        max_macs=args.max_macs,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        retries=args.retries,
        early_stop=args.early_stop,
        objective=args.objective,
        node_timeout=args.node_timeout,
        progress=not args.no_progress,
        trackers=tuple(args.tracker),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config: SearchConfig | None = None
    with StopSignals() as signals:
        try:
            config = config_from_args(args)
            validation = validate_config(args, config)
            check_out(config.out)  # at once: a locked or unusable --out needs no heavy import
            if config.executor == "ray" and config.address not in (None, "auto"):
                check_reachable(config.address, config.address)  # no heavy import either
            from nas.search.run import run_search  # heavy imports only once the arguments are sound

            summary, plots = run_search(config, signals=signals)
        except NasError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as stop:
            print(interrupted_line(stop, config), file=sys.stderr)
            return stop.exit_code if isinstance(stop, Interrupted) else 130
    from results.leaderboard import Leaderboard
    from results.report import summary_table

    print(summary_table(Leaderboard(summary.run_dir).read()))
    print(f"\n{summary.finished} candidates ({summary.ok} ok, {summary.failed} failed) in {summary.wall_time_s:.0f} s")
    print(f"run directory: {summary.run_dir}")
    print(f"leaderboard:   {summary.run_dir / 'leaderboard.parquet'}")
    print(f"optuna:        {summary.run_dir / 'optuna.journal'}  (view: optuna-dashboard PATH)")
    if summary.best is not None:
        print(f"best:          {summary.run_dir / 'best.json'}")
    for plot in plots:
        print(f"plot:          {plot}")
    if validation is None:
        return 0
    from nas.cli.validate import validate

    print()
    with StopSignals() as signals:
        try:
            return validate(validation, signals)
        except NasError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2


def validate_config(args: argparse.Namespace, config: SearchConfig) -> ValidateConfig | None:
    """What ``--validate K`` asks for, checked before the search starts."""
    if args.validate is None:
        return None
    if config.objective != "train":
        raise ConfigError("--validate needs --objective train: a surrogate search trains "
                          "nothing, so it has no proxy to validate")
    if args.validate > config.budget:
        raise ConfigError(f"--validate {args.validate} picks {args.validate} candidates of the "
                          f"search; --budget {config.budget} finishes fewer")
    return ValidateConfig(run=config.out, k=args.validate, workers=config.workers,
                          address=config.address, executor=config.executor,
                          cpus_per_job=config.cpus_per_trial, seed=config.seed,
                          progress=config.progress, trackers=config.trackers)


def interrupted_line(stop: KeyboardInterrupt, config: SearchConfig | None) -> str:
    """The one line an interrupted search prints: what was saved, how to continue."""
    name = stop.signal_name if isinstance(stop, Interrupted) else "SIGINT"
    saved = stop.saved if isinstance(stop, Interrupted) else None
    if saved is None or config is None:
        return f"interrupted by {name} during set-up: nothing was written; run the command again"
    board = Path(config.out) / "leaderboard.parquet"
    return (f"interrupted by {name}: {saved} of {config.budget} candidates are saved in {board}; "
            f"run the same command with --out {config.out} to continue")


if __name__ == "__main__":
    raise SystemExit(main())
