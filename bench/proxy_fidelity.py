"""The proxy-fidelity study: which CPU proxy ranks candidates like long training?

Every variant is a proxy recipe validated with ``nas-validate`` on the same search, the same
candidates and the same long-training ground truth (trained once, then reused through
``--reuse``: a long job's key does not depend on the proxy), so the variants differ only in
their proxy. Three subcommands:

``validate RUN NAME [nas-validate options]``: validate variant ``NAME`` (``VARIANTS``) on
    the search in ``RUN``: ``nas-validate RUN --proxy runs/fidelity/NAME.json --out
    runs/fidelity/NAME --k 10 --epochs 12 --reuse runs/fidelity/today --workers 2
    --cpus-per-job 1`` (options given after NAME are added).
``cost RUN [--names a,b,...]``: the proxy wall time of every variant side by side: three of
    the validated candidates (the smallest, the median and the largest), each variant once
    per candidate, in an order rotated per candidate, one thread, in one process.
``report RUN --out FILE``: the table of every validated variant: tau of one proxy run and of
    the mean of its runs against the long training, proxy seed against seed, reward, the
    ASHA grace-period check, whether the proxy's best is in the long training's top 3, and
    the cost; each variant that keeps an EMA also read out with its trained weights, and
    every variant with its minival top-1 averaged over its last two epochs and with its
    minival likelihood ``exp(-loss)`` as the accuracy and the reward's ``A`` (from the
    per-epoch history the rows keep, no extra training); then, per variant, tau of each
    ranking signal its proxy runs record (``results.signals``: minival top-1 of the trained
    and EMA weights, minival loss, TSE, MeCo at initialization) against the long training.

``--root DIR`` (before the subcommand) keeps a study's variants in a folder of its own
(default ``runs/fidelity``): one folder per ground truth.

Run each subcommand under the shared lock (``flock /tmp/effnas-bench.lock python
bench/proxy_fidelity.py ...``), one variant per hold.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from nas.cli.validate import main as validate_main
from nas.search.reward import likelihood
from proxy_train.data import load_data
from proxy_train.hardware import cpu_model
from proxy_train.loop import train
from proxy_train.recipe import Recipe
from results.fidelity import describe, scores
from results.fidelity import statistics as fidelity_statistics
from results.signals import SIGNALS
from results.validation import read_validation
from search_space.codec import decode

ROOT = Path("runs/fidelity")
TODAY: dict[str, Any] = dict(
    epochs=3, resolution=32, batch_size=32, optimizer="adamw", lr=0.016, warmup_epochs=0.5,
    randaug_magnitude=0.0, dropout=0.0, drop_path=0.0, eval_batch_size=256, cpu_threads=1,
    max_train_batches_per_epoch=24)
"""``Recipe.cpu_quick()`` before this study: the baseline every variant changes."""
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "today": ("Recipe.cpu_quick() before the study", {}),
    "ema": ("+ EMA of the weights (0.99), evaluated with it", {"ema_decay": 0.99}),
    "4ep": ("4 epochs of 24 batches (96 steps)", {"epochs": 4}),
    "2full": ("2 whole epochs", {"epochs": 2, "max_train_batches_per_epoch": None}),
    "lr2x": ("learning rate 0.032 per 256", {"lr": 0.032}),
    "res40": ("40 px, 2 epochs of 24 batches", {"resolution": 40, "epochs": 2}),
    "lr4x": ("learning rate 0.064 per 256", {"lr": 0.064}),
    "lr8x": ("learning rate 0.128 per 256", {"lr": 0.128}),
    "lr4x-4ep": ("learning rate 0.064, 4 epochs of 24 batches", {"lr": 0.064, "epochs": 4}),
    "lr4x-ema": ("learning rate 0.064, + EMA (0.98)", {"lr": 0.064, "ema_decay": 0.98}),
    "4full-ema": ("4 whole epochs, + EMA (0.99)",
                  {"epochs": 4, "max_train_batches_per_epoch": None, "ema_decay": 0.99}),
    "lr8x-2full": ("learning rate 0.128, 2 whole epochs",
                   {"lr": 0.128, "epochs": 2, "max_train_batches_per_epoch": None}),
    "lr8x-4full-ema": ("learning rate 0.128, 4 whole epochs, + EMA (0.99)",
                       {"lr": 0.128, "epochs": 4, "max_train_batches_per_epoch": None,
                        "ema_decay": 0.99}),
    "2full-64-ema": ("2 whole epochs at 64 px, + EMA (0.99)",
                     {"epochs": 2, "max_train_batches_per_epoch": None, "resolution": 64,
                      "ema_decay": 0.99}),
    "crop1": ("crops of the whole image (crop_area 1.0)", {"crop_area": 1.0}),
    "2full-crop1-ema": ("2 whole epochs, whole-image crops, + EMA (0.99)",
                        {"epochs": 2, "max_train_batches_per_epoch": None, "crop_area": 1.0,
                         "ema_decay": 0.99}),
    "3full-crop1-ema": ("3 whole epochs, whole-image crops, + EMA (0.99)",
                        {"epochs": 3, "max_train_batches_per_epoch": None, "crop_area": 1.0,
                         "ema_decay": 0.99}),
    "4full-crop1-ema": ("4 whole epochs, whole-image crops, + EMA (0.99)",
                        {"epochs": 4, "max_train_batches_per_epoch": None, "crop_area": 1.0,
                         "ema_decay": 0.99}),
}
READOUTS = ("as run", "trained weights", "mean of last 2 epochs", "likelihood")
"""``likelihood``: ``exp(-minival loss)`` of the last epoch as the accuracy and the reward's
``A`` (``nas-search --reward-accuracy likelihood``)."""


def variant_recipe(name: str) -> Recipe:
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; expected one of {list(VARIANTS)}")
    return Recipe(**{**TODAY, **VARIANTS[name][1]})


def validate(run: str, name: str, extra: list[str]) -> int:
    ROOT.mkdir(parents=True, exist_ok=True)
    recipe_file = ROOT / f"{name}.json"
    recipe_file.write_text(json.dumps(variant_recipe(name).to_dict(), indent=2))
    args = [run, "--proxy", str(recipe_file), "--out", str(ROOT / name), "--k", "10",
            "--epochs", "12", "--workers", "2", "--cpus-per-job", "1"]
    if name != "today" and "--reuse" not in extra:
        args += ["--reuse", str(ROOT / "today")]
    return validate_main(args + extra)


def cost(run: str, names: list[str], seed: int) -> dict[str, Any]:
    """Proxy wall time of each variant on three candidates, side by side."""
    torch.set_num_threads(1)
    rows, _ = read_validation(ROOT / "today")
    by_params = sorted({(r["params"], r["arch"]) for r in rows})
    chosen = [by_params[0], by_params[len(by_params) // 2], by_params[-1]]
    settings = json.loads(Path(run, "run.json").read_text())["config"]
    data = load_data(settings["data"], seed=int(settings["seed"]))
    times: dict[str, list[float]] = {n: [] for n in names}
    for i, (params, arch) in enumerate(chosen):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            result = train(decode(arch), variant_recipe(name), data, seed=seed)
            times[name].append(result.wall_time_s)
            print(f"{name:>8}  {params / 1e6:5.1f}M  {result.wall_time_s:7.1f} s", flush=True)
    record = {"when": _now(), "machine": _machine(), "candidates": [a for _, a in chosen],
              "params": [p for p, _ in chosen], "seconds": times}
    (ROOT / "cost.json").write_text(json.dumps(record, indent=2))
    return record


def readout(rows: list[dict[str, Any]], how: str) -> list[dict[str, Any]] | None:
    """The proxy rows with their accuracy (and reward, by the same factor) read out another
    way from the per-epoch history; None when the rows cannot be read that way."""
    out = []
    for row in rows:
        if row["kind"] != "proxy" or row["status"] != "ok" or how == "as run":
            out.append(row)
            continue
        history = json.loads(row["history_json"] or "[]")
        if how == "trained weights":
            if not history or history[-1].get("minival_top1_ema") is None:
                return None
            value = history[-1]["minival_top1"]
        elif how == "likelihood":
            if not history or history[-1].get("minival_loss") is None:
                return None
            value = likelihood(history[-1]["minival_loss"])
        else:
            values = [_evaluated(e) for e in history[-2:]]
            if len(values) < 2:
                return None
            value = sum(values) / 2
        factor = row["reward"] / row["accuracy"] if row["accuracy"] else 0.0
        out.append({**row, "accuracy": value, "reward": value * factor})
    return out


def _evaluated(epoch: dict[str, Any]) -> float:
    for key in ("minival_top1_ema", "evaluated_top1", "minival_top1"):
        if epoch.get(key) is not None:
            return float(epoch[key])
    raise ValueError(f"an epoch without an accuracy: {epoch}")


def report(run: str) -> str:
    costs = json.loads((ROOT / "cost.json").read_text()) if (ROOT / "cost.json").exists() \
        else None
    lines = ["# Proxy fidelity on the built-in data set (CPU)", "",
             f"- report written: {_now()}; machine: {_machine()}",
             f"- search: `{run}` ({_search_line(run)})", ""]
    truth = None
    signal_table = ["| variant | " + " | ".join(s.label for s in SIGNALS) + " |",
                    "|---|" + "---|" * len(SIGNALS)]
    table = ["| variant | readout | proxy vs long τ | mean of runs vs long τ | "
             "seed vs seed τ | reward τ | grace vs final τ | best in long top 3 | "
             "s per proxy run | cost vs today |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, (what, _) in VARIANTS.items():
        folder = ROOT / name
        if not (folder / "validation.parquet").exists():
            continue
        rows, settings = read_validation(folder)
        proxy_rows = [r for r in rows if r["kind"] == "proxy" and r["source"] != "search"]
        seconds = statistics.median(r["wall_time_s"] for r in proxy_rows
                                    if r["wall_time_s"] is not None)
        ratio = _ratio(costs, name)
        as_run = fidelity_statistics(scores(rows))
        signal_table.append(f"| {name} | " + " | ".join(
            describe(as_run[f"{s.name}_vs_long"]) for s in SIGNALS) + " |")
        for how in READOUTS:
            chosen = readout(rows, how)
            if chosen is None:
                continue
            stats = fidelity_statistics(scores(chosen))
            truth = truth or stats
            best = stats["best"]["proxy_best"] if stats.get("best") else None
            table.append(
                f"| {name}: {what} | {how} | {describe(stats['proxy_vs_long'])} | "
                f"{describe(stats['proxy_mean_vs_long'])} | "
                f"{describe(stats['proxy_seed_vs_seed'])} | "
                f"{describe(stats['reward_proxy_vs_long'])} | "
                f"{describe(stats['interim_vs_final_reward'])} | "
                + (f"{'yes' if best['in_long_top3'] else 'no'} (long rank "
                   f"{best['long_rank']:g})" if best else "n/a")
                + f" | {seconds:.0f} | {ratio} |")
    if truth is not None:
        lines += ["## The ground truth", "",
                  f"- long seed vs seed (the ceiling): {describe(truth['long_seed_vs_seed'])}",
                  f"- params alone vs long: {describe(truth['params_vs_long'])}",
                  f"- MACs alone vs long: {describe(truth['macs_vs_long'])}",
                  f"- step time alone vs long: {describe(truth['step_time_vs_long'])}", ""]
    lines += ["## Variants", "", *table, "",
              "## Each signal of the proxy vs long (no extra training)", "", *signal_table, ""]
    if costs:
        lines += ["## Cost, side by side", "", f"- measured {costs['when']} on "
                  f"{costs['machine']}; candidates of {costs['params']} params", ""]
        for name, seconds in costs["seconds"].items():
            lines.append(f"- {name}: " + ", ".join(f"{s:.1f} s" for s in seconds))
    return "\n".join(lines) + "\n"


def _ratio(costs: dict[str, Any] | None, name: str) -> str:
    if not costs or name not in costs["seconds"] or "today" not in costs["seconds"]:
        return "-"
    ratios = [a / b for a, b in zip(costs["seconds"][name], costs["seconds"]["today"])]
    return f"{statistics.geometric_mean(ratios):.2f}x"


def _search_line(run: str) -> str:
    record = json.loads(Path(run, "run.json").read_text())
    c = record["config"]
    return f"space {c['space']}, data {c['data']}, {c['budget']} candidates, seed {c['seed']}"


def _machine() -> str:
    return f"{platform.node()}, {cpu_model()}, torch {torch.__version__}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("validate")
    one.add_argument("run")
    one.add_argument("name")
    side = sub.add_parser("cost")
    side.add_argument("run")
    side.add_argument("--names", default=",".join(VARIANTS))
    side.add_argument("--seed", type=int, default=0)
    table = sub.add_parser("report")
    table.add_argument("run")
    table.add_argument("--out")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help=f"folder of this study's variants (default {ROOT})")
    args, extra = parser.parse_known_args(argv)
    ROOT = args.root
    if args.command == "validate":
        return validate(args.run, args.name, extra)
    if extra:
        parser.error(f"unknown arguments {extra}")
    if args.command == "cost":
        start = time.perf_counter()
        cost(args.run, args.names.split(","), args.seed)
        print(f"cost pass: {time.perf_counter() - start:.0f} s")
        return 0
    text = report(args.run)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
