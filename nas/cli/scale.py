"""``nas-scale``: derive bigger models from a searched base, the EfficientNetV2 way.

Examples::

    nas-scale --base efficientnetv2-s --target L
    nas-scale --base runs/search1 --rank 2 --target M,L,XL --out scaled.json
    nas-scale --base best.json --params 80M --recipe released
    nas-scale --base efficientnetv2-s --target XL --max-size 512 --verify --verify-batch 2

``--base`` is any model reference (``nas.cli.models``): a preset name, a spec/result JSON file
(optionally with ``train_size`` / ``eval_size``), a canonical architecture string, a search
leaderboard (a run folder or a ``.parquet`` file; the ``--rank``-th best ``ok`` row by reward),
a ``nas-scale`` output of one model, or a trained model file. The table is always printed;
the JSON report (schema in ``scaling.output``) goes to ``--out``, by default
``runs/scale/<base hash>_<targets>.json``.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from nas.cli.command import Invocation, run_command
from nas.cli.models import resolve_model
from nas.cli.parser import OneLineParser
from proxy_train.progressive import SOURCES
from scaling.base import Base
from scaling.derive import ScaleRequest, derive
from scaling.errors import ScalingError
from scaling.output import ModelRecord, ScaleReport, write_scaled
from scaling.rules import DEFAULT_MAX_SIZE, TARGET_PHI
from scaling.table import format_table
from search_space import checks


def parse_count(text: str, what: str = "count") -> int:
    """``'80M' -> 80_000_000`` (``search_space.checks.parse_count``), as a ``ScalingError``."""
    return checks.parse_count(text, what, ScalingError)


def parse_targets(values: list[str] | None) -> tuple[str, ...]:
    """``['M', 'L,XL'] -> ('M', 'L', 'XL')``; unknown names raise ``ScalingError``."""
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            name = part.strip().upper()
            if not name:
                continue
            if name not in TARGET_PHI:
                raise ScalingError(f"unknown target {part.strip()!r}; expected one of "
                                   f"{list(TARGET_PHI)}")
            if name not in out:
                out.append(name)
    return tuple(out)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="nas-scale",
        description="Derive bigger models from a searched base (EfficientNetV2 scaling) and "
                    "their progressive-learning recipes.")
    what = p.add_argument_group("base and targets")
    what.add_argument("--base", required=True,
                      help="preset, spec/result JSON file, arch string, leaderboard (run folder "
                           "or .parquet), nas-scale output of one model, or model file")
    what.add_argument("--rank", type=int, default=1,
                      help="which leaderboard row: K-th best ok row by reward")
    what.add_argument("--target", action="append",
                      help=f"{', '.join(TARGET_PHI)}; repeat or comma-separate (M,L,XL) "
                           "(default: none, then --params or --macs)")
    what.add_argument("--params", help="parameter budget, e.g. 80M: the largest scaling that "
                                       "fits (default: none)")
    what.add_argument("--macs", help="MACs budget at the eval size, e.g. 30G (default: none)")
    what.add_argument("--out", help="JSON report path, or a folder for it (default "
                                    "runs/scale/<hash>_<targets>.json)")
    rule = p.add_argument_group("rule and recipe")
    rule.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE,
                      help="cap on the eval image size")
    rule.add_argument("--base-size", type=int,
                      help="eval size of the base (default: the preset's or the file's, else "
                           "384)")
    rule.add_argument("--recipe", choices=SOURCES, default="paper",
                      help="progressive-learning values: paper (Table 6) or released (code)")
    rule.add_argument("--epochs", type=int, default=350, help="total epochs")
    verify = p.add_argument_group("measuring the targets")
    verify.add_argument("--verify", action="store_true",
                        help="time one training step of each target at its train size")
    verify.add_argument("--hardware", default="auto", help="hardware profile for --verify")
    verify.add_argument("--verify-batch", type=int,
                        help="batch for --verify (default: the hardware profile's timing "
                             "batch)")
    verify.add_argument("--verify-budget", type=float, default=10.0,
                        help="seconds per timed target for --verify")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``nas-scale``; returns the exit code (0 ok, 2 user error; ``nas.cli.command``)."""
    return run_command(build_parser(), _run, argv)


def _run(invocation: Invocation) -> int:
    args = invocation.args
    if args.params is not None and args.macs is not None:
        raise ScalingError("give one budget, --params or --macs, not both")
    request = ScaleRequest(
        targets=parse_targets(args.target),
        params=None if args.params is None else parse_count(args.params, "--params"),
        macs=None if args.macs is None else parse_count(args.macs, "--macs"),
        max_size=args.max_size, recipe=args.recipe, epochs=args.epochs,
        base_eval_size=args.base_size,
    )
    report = derive(load_base(args.base, args.rank), request)
    if args.verify:
        report = _verify(report, args.hardware, args.verify_batch, args.verify_budget)
    out = Path(args.out) if args.out else default_out(report)
    if out.is_dir():  # a folder: the report goes inside it, under its default name
        out = out / default_out(report).name
    print(format_table(report))
    try:
        write_scaled(report, out)
    except OSError as exc:
        raise ScalingError(f"cannot write the report: {exc}") from None
    print(f"\nwrote {out}")
    return 0


def load_base(ref: str, rank: int = 1) -> Base:
    """``--base`` (with ``--rank``) as scaling's :class:`Base` (``nas.cli.models``)."""
    model = resolve_model(ref, rank=rank, target_option=None)
    return Base(model.spec, model.source, model.train_size, model.eval_size, model.preset,
                model.name)


def default_out(report: ScaleReport) -> Path:
    names = "-".join(_slug(t.name) for t in report.targets)
    return Path("runs") / "scale" / f"{report.base.hash}_{names}.json"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", name.replace("<=", "-"))


def _verify(report: ScaleReport, hardware: str, batch: int | None,
            budget_s: float) -> ScaleReport:
    # torch is imported only when a measurement is asked for.
    from proxy_train.hardware import resolve_hardware
    from proxy_train.timing import time_training_step

    target = resolve_hardware(hardware)
    records: list[ModelRecord] = []
    for t in report.targets:
        timing = time_training_step(
            t.spec, target=target, resolution=t.train_size, batch_size=batch,
            num_classes=None, dropout=t.recipe.dropout[1], time_budget_s=budget_s,
            min_steps=3,
        )
        result: dict[str, Any] = dict(timing.to_dict())
        result["peak_memory_bytes"] = timing.peak_memory_bytes
        records.append(replace(t, verify=result))
    return replace(report, targets=tuple(records))


if __name__ == "__main__":
    raise SystemExit(main())
