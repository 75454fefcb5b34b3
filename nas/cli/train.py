"""``nas-train``: train a searched or scaled model for real, with progressive learning.

Parse the arguments, build a :class:`TrainConfig`, run :func:`run_training`, print a summary.
Exit status: 0 trained (or already trained), 1 training failed (the last checkpoint is kept),
2 bad input (nothing written), 130 / 143 interrupted (the same command continues).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nas.cli.command import Invocation, run_command
from nas.cli.models import resolve_model
from nas.cli.parser import OneLineParser
from nas.run.progress import counted, say_on_stderr, silent
from nas.track import TRACKERS
from nas.train.config import DEFAULT_EMA, TrainConfig, parse_sizes
from nas.train.plan import ModelSource
from proxy_train.datasets.sources import BUILT_IN_DATA
from scaling.base import RECIPE_NAMES
from search_space.messages import one_line

if TYPE_CHECKING:
    from nas.train.record import TrainRecord


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="nas-train", description=(
        "Train a searched or scaled model with progressive learning (EfficientNetV2, "
        "section 4)."))
    what = p.add_argument_group("what to train")
    what.add_argument("--arch", required=True, help=(
        "preset, architecture string, spec JSON, a search's best.json or run folder "
        "(--rank K), a nas-scale output (--target NAME), or a model file"))
    what.add_argument("--rank", type=int, default=1,
                      help="leaderboard row to train when --arch is a search (1: the best)")
    what.add_argument("--target", help="the model of a nas-scale output to train (M, L, ... "
                                       "or base; default: its only one)")
    what.add_argument("--data", default=BUILT_IN_DATA, help=(
        "synthetic[:opts], folder:PATH, cifar10:PATH, cifar100:PATH, parquet:PATH"))
    what.add_argument("--out", help="training folder (default: runs/train-<timestamp>); an "
                                    "existing training there continues")
    what.add_argument("--hardware", default="auto", help="auto, cpu, v100, a100, h100, ...")
    recipe = p.add_argument_group("recipe")
    recipe.add_argument("--recipe", default="progressive",
                        help="progressive, fixed, or a recipe file (JSON or TOML)")
    recipe.add_argument("--epochs", type=int, help="training epochs (default: the recipe's, "
                                                   "350)")
    recipe.add_argument("--stages", type=int, help="progressive stages (default: 4)")
    recipe.add_argument("--sizes", help="first and last training image size, MIN:MAX "
                                        "(default: the recipe's)")
    recipe.add_argument("--eval-size", type=int,
                        help="evaluation image size (default: the model's)")
    recipe.add_argument("--batch-size", type=int,
                        help="training batch (default: 128 on GPUs, 64 on CPUs)")
    recipe.add_argument("--ema", type=float, default=DEFAULT_EMA,
                        help="EMA decay of the weights (0: none)")
    recipe.add_argument("--seed", type=int, default=0,
                        help="seed of the data split, the initialisation and the training")
    recipe.add_argument("--compile", action="store_true",
                        help="torch.compile the training step")
    out = p.add_argument_group("output")
    out.add_argument("--tracker", action="append", default=[], choices=TRACKERS,
                     help="log to an experiment tracker (repeatable: mlflow, wandb, "
                          "tensorboard; default: none)")
    out.add_argument("--no-progress", action="store_true",
                     help="no progress bar and no set-up lines")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    out = args.out or str(Path("runs") / datetime.now().strftime("train-%Y%m%d-%H%M%S"))
    return TrainConfig(
        arch=args.arch, out=out, data=args.data, recipe=args.recipe, epochs=args.epochs,
        stages=args.stages, sizes=None if args.sizes is None else parse_sizes(args.sizes),
        eval_size=args.eval_size, batch_size=args.batch_size, hardware=args.hardware.lower(),
        seed=args.seed, ema=args.ema, compile=args.compile, target=args.target,
        rank=args.rank, progress=not args.no_progress,
        trackers=tuple(args.tracker))


def main(argv: list[str] | None = None) -> int:
    """Run ``nas-train``; returns the exit code (see the module docstring; ``nas.cli.command``)."""
    return run_command(build_parser(), _run, argv)


def _run(invocation: Invocation) -> int:
    config = config_from_args(invocation.args)
    invocation.interrupted = lambda name: (
        f"interrupted by {name}: finished epochs are saved; run the same command with --out "
        f"{config.out} to continue")
    model = train_model(config)
    from nas.train.run import TrainingFailed, run_training  # heavy imports

    say = say_on_stderr if config.progress else silent
    try:
        summary = run_training(config, model, say=say, signals=invocation.signals)
    except TrainingFailed as failed:
        print(f"error: {one_line(str(failed))}", file=sys.stderr)
        return 1
    if summary.already_finished:
        print(f"{summary.out / 'train.json'}: this training already finished; nothing was run",
              file=sys.stderr)
    print(summary_lines(summary.record, summary.out))
    if summary.resumed_at and not summary.already_finished:
        print(f"continued from epoch {summary.resumed_at} (its checkpoint)")
    return 0


def train_model(config: TrainConfig) -> ModelSource:
    """The model ``--arch`` (with ``--rank`` / ``--target``) names (``nas.cli.models``)."""
    model = resolve_model(config.arch, rank=config.rank, target=config.target)
    return ModelSource(model.spec, model.name, model.source,
                       RECIPE_NAMES.get(model.preset or ""), model.train_size, model.eval_size,
                       model.progressive)


def summary_lines(record: TrainRecord, out: Path) -> str:
    """What a finished training prints: the model, the schedule, the accuracies, the files."""
    model, result, stages = record.model, record.result, record.recipe["stages"]
    assert result is not None, "a finished training has a result"
    sizes = f"{stages[0]['resolution']}->{stages[-1]['resolution']} px" if stages else ""
    lines = [f"trained {model.name} ({model.params:,} params) for "
             f"{counted(result.epochs_run, 'epoch')}, {counted(len(stages), 'stage')} "
             f"{sizes}, in {result.wall_time_s:.0f} s",
             f"minival top-1  {_pair(result.minival_top1, result.minival_top1_ema)}  "
             f"at {result.eval_size} px"]
    if result.test_top1 is not None:
        lines.append(f"test top-1     {_pair(result.test_top1, result.test_top1_ema)}  "
                     f"at {result.eval_size} px, {counted(result.test_images or 0, 'image')}")
    else:
        lines.append("test top-1     not measured: the data has no test split")
    lines += [f"training dir:  {out}", f"metrics:       {out / 'metrics.parquet'}",
              f"model:         {out / 'model.pt'}", f"plot:          {out / 'curves.png'}"]
    return "\n".join(lines)


def _pair(trained: float | None, ema: float | None) -> str:
    text = "-" if trained is None else f"{trained:.4f}"
    return text if ema is None else f"{ema:.4f} (EMA weights; trained weights {text})"


if __name__ == "__main__":
    raise SystemExit(main())
