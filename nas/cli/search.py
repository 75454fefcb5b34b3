"""``nas-search``: training-aware architecture search on Ray Tune (or inline).

Parse the arguments, build a :class:`SearchConfig`, run :func:`run_search`, print a summary.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nas.cli.command import Invocation, run_command
from nas.cli.parser import OneLineParser
from nas.run.interrupt import Interrupted
from nas.run.proxy_file import read_proxy_fields
from nas.run.settings import EXECUTORS, ConfigError, check_out
from nas.search.cluster import check_reachable
from nas.search.config import EARLY_STOP, STRATEGIES, SearchConfig
from nas.search.reward import DEFAULT_V, DEFAULT_W, ESTIMATES
from nas.track import TRACKERS
from nas.validate.config import ValidateConfig
from proxy_train.datasets.sources import BUILT_IN_DATA
from search_space.checks import parse_count
from search_space.errors import NasError
from search_space.messages import are, counted

if TYPE_CHECKING:
    from nas.search.driver import RunSummary


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="nas-search", description="Training-aware neural architecture search.")
    _what_to_search(p)
    _proxy_and_timing(p)
    _reward_and_limits(p)
    _where_it_runs(p)
    after = p.add_argument_group("after the search, and output")
    after.add_argument("--validate", type=int, metavar="K",
                       help="then validate the proxy on K of the candidates (nas-validate RUN "
                            "--k K; default: no validation)")
    after.add_argument("--tracker", action="append", default=[], choices=TRACKERS,
                       help="log to an experiment tracker (repeatable: mlflow, wandb, "
                            "tensorboard; default: none)")
    after.add_argument("--no-progress", action="store_true",
                       help="no progress bar and no set-up lines")
    return p


def _what_to_search(p: argparse.ArgumentParser) -> None:
    what = p.add_argument_group("what to search")
    what.add_argument("--budget", type=int, required=True,
                      help="number of candidates to finish (ok + failed)")
    what.add_argument("--hardware", required=True,
                      help="target hardware the step time is measured on: auto, cpu, v100, "
                           "a100, h100, h200, l4, t4, a10g")
    what.add_argument("--space", default="v2b0",
                      help="search space: a shipped name (v2b0, v2s, paper) or a TOML/JSON file")
    what.add_argument("--data", default=BUILT_IN_DATA,
                      help="data: synthetic[:opts], folder:PATH, cifar10:PATH, cifar100:PATH, "
                           "parquet:PATH")
    what.add_argument("--strategy", default="random", help=f"one of {', '.join(STRATEGIES)}")
    what.add_argument("--out", help="run directory (default: runs/<timestamp>); an existing run "
                                    "continues")
    what.add_argument("--seed", type=int, default=0,
                      help="seed of the strategy, the data split and every candidate's "
                           "training, 0 to 2^32-1")
    what.add_argument("--objective", default="train",
                      help="train (time and proxy-train every candidate) or surrogate (a "
                           "deterministic function of the spec: a dry run of the machinery)")


def _proxy_and_timing(p: argparse.ArgumentParser) -> None:
    proxy = p.add_argument_group("proxy training and step timing")
    proxy.add_argument("--epochs", type=int, help="proxy-training epochs (default: the "
                                                  "recipe's: 10 on GPUs, 4 on CPUs)")
    proxy.add_argument("--proxy-resolution", type=int,
                       help="proxy-training image size (default: half the data's on GPUs, "
                            "32 on CPUs)")
    proxy.add_argument("--proxy", metavar="FILE",
                       help="a JSON object of proxy recipe fields that replace the default "
                            "proxy's, e.g. {\"epochs\": 4, \"crop_area\": 1.0} (default: "
                            "none; --epochs and --proxy-resolution still apply)")
    proxy.add_argument("--early-stop", default="none", help=f"one of {', '.join(EARLY_STOP)}")
    proxy.add_argument("--timing-resolution", type=int,
                       help="image size of the step timing (default: the data's)")
    proxy.add_argument("--timing-batch", type=int,
                       help="batch of the step timing (default: the hardware's)")
    proxy.add_argument("--timing-steps", type=int,
                       help="fewest timed steps per candidate (default: 20 on GPUs, 10 on CPUs)")
    proxy.add_argument("--timing-budget", type=float,
                       help="seconds of timing per candidate once the fewest steps are done "
                            "(default: 10 on GPUs, 3 on CPUs)")


def _reward_and_limits(p: argparse.ArgumentParser) -> None:
    reward = p.add_argument_group("reward and limits")
    reward.add_argument("--reference", help="model that normalizes step time and params "
                                            "(default: the space's)")
    reward.add_argument("--reward-w", type=float, default=DEFAULT_W,
                        help="exponent of normalized step time")
    reward.add_argument("--reward-v", type=float, default=DEFAULT_V,
                        help="exponent of normalized parameters")
    reward.add_argument("--reward-accuracy", default=ESTIMATES[0],
                        help="the reward's A: likelihood (exp(-minival loss): ranked like "
                             "long training best in the CPU study) or top1 (minival top-1)")
    reward.add_argument("--max-params", type=_count("--max-params"),
                        help="skip candidates with more parameters, e.g. 8M, 8000000 (default: "
                             "no limit)")
    reward.add_argument("--max-macs", type=_count("--max-macs"),
                        help="skip candidates with more MACs at the timing resolution, e.g. "
                             "1.5G (default: no limit)")


def _where_it_runs(p: argparse.ArgumentParser) -> None:
    where = p.add_argument_group("where it runs")
    where.add_argument("--workers", type=int, default=1, help="candidates evaluated at once")
    where.add_argument("--executor", default="ray", help=f"one of {', '.join(EXECUTORS)}")
    where.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: Ray "
                                         "in this process)")
    where.add_argument("--cpus-per-trial", type=float,
                       help="CPU threads (and Ray CPUs) per trial (default: this machine's "
                            "cores / --workers; on a cluster 1 per GPU trial, 2 per CPU trial)")
    where.add_argument("--gpus-per-trial", type=float,
                       help="GPUs per trial on a GPU target, whole numbers (default: 1)")
    where.add_argument("--retries", type=int, default=1,
                       help="retries of a trial whose worker or node dies")
    where.add_argument("--node-timeout", type=float, default=300.0,
                       help="seconds to wait for a Ray node that can run a trial before "
                            "stopping")


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
        proxy=None if args.proxy is None else read_proxy_fields(args.proxy),
        workers=args.workers,
        address=args.address,
        executor=args.executor,
        seed=args.seed,
        reward_w=args.reward_w,
        reward_v=args.reward_v,
        reward_accuracy=args.reward_accuracy,
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
    """Run ``nas-search``; returns the exit code (0 ok, 2 bad input, 130 / 143 interrupted;
    ``nas.cli.command``)."""
    return run_command(build_parser(), _run, argv)


def _run(invocation: Invocation) -> int:
    args, signals = invocation.args, invocation.signals
    config = config_from_args(args)
    invocation.interrupted = lambda name: interrupted_line(name, config, None)
    validation = validate_config(args, config)
    check_out(config.out)  # at once: a locked or unusable --out needs no heavy import
    if config.executor == "ray" and config.address not in (None, "auto"):
        check_reachable(config.address, config.address)  # no heavy import either
    from nas.search.run import run_search  # heavy imports only once the arguments are sound

    try:
        summary, plots = run_search(config, signals=signals)
    except Interrupted as stop:
        saved = stop.saved  # the name `stop` is gone once this block ends
        invocation.interrupted = lambda name: interrupted_line(name, config, saved)
        raise
    print_summary(summary, plots)
    if validation is None:
        return 0
    from nas.cli.validate import validate

    print()
    return validate(validation, invocation)


def print_summary(summary: RunSummary, plots: list[Path]) -> None:
    """The leaderboard's top rows and where the run's files are."""
    from results.leaderboard import Leaderboard
    from results.report import summary_table

    print(summary_table(Leaderboard(summary.run_dir).read()))
    print(f"\n{counted(summary.finished, 'candidate')} ({summary.ok} ok, {summary.failed} failed) "
          f"in {summary.wall_time_s:.0f} s")
    print(f"run directory: {summary.run_dir}")
    print(f"leaderboard:   {summary.run_dir / 'leaderboard.parquet'}")
    print(f"optuna:        {summary.run_dir / 'optuna.journal'}  (view: optuna-dashboard PATH)")
    if summary.best is not None:
        print(f"best:          {summary.run_dir / 'best.json'}")
    for plot in plots:
        print(f"plot:          {plot}")


def validate_config(args: argparse.Namespace, config: SearchConfig) -> ValidateConfig | None:
    """What ``--validate K`` asks for, checked before the search starts."""
    if args.validate is None:
        return None
    if config.objective != "train":
        raise ConfigError("--validate needs --objective train: a surrogate search trains "
                          "nothing, so it has no proxy to validate")
    if args.validate > config.budget:
        raise ConfigError(f"--validate {args.validate} picks "
                          f"{counted(args.validate, 'candidate')} of the "
                          f"search; --budget {config.budget} finishes fewer")
    return ValidateConfig(run=config.out, k=args.validate, workers=config.workers,
                          address=config.address, executor=config.executor,
                          cpus_per_job=config.cpus_per_trial, seed=config.seed,
                          progress=config.progress, trackers=config.trackers)


def interrupted_line(name: str, config: SearchConfig, saved: int | None) -> str:
    """The one line an interrupted search prints: what was saved, how to continue. ``saved``:
    the rows on disk as the run counted them when it stopped; without that count (a second
    signal cut the first one's clean stop short) the run folder is read."""
    board = Path(config.out) / "leaderboard.parquet"
    if saved is None:
        saved = saved_rows(config.out)
    if not saved:
        return f"interrupted by {name} during set-up: nothing was written; run the command again"
    return (f"interrupted by {name}: {saved} of {counted(config.budget, 'candidate')} "
            f"{are(saved)} saved in {board}; run the same command with --out {config.out} to "
            "continue")


def saved_rows(out: str) -> int | None:
    """How many rows the run folder ``out`` holds (None: none, or it cannot be read)."""
    from results.leaderboard import Leaderboard

    if not Path(out).is_dir():
        return None
    try:
        return len(Leaderboard(out)) or None
    except (NasError, OSError):  # unreadable: say nothing rather than something wrong
        return None


if __name__ == "__main__":
    raise SystemExit(main())
