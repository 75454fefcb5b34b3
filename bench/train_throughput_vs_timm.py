"""Training throughput of our EfficientNetV2-S against timm's ``tf_efficientnetv2_s`` (GPU only).

Both networks are trained the same way, in one process, on one GPU: resolution 300, batch 128,
bf16 autocast, channels_last, cuDNN autotuning, SGD (momentum 0.9, Nesterov) step, dropout
0.2 and stochastic depth 0.2, random input, 1000 classes. Each is measured with
``proxy_train.timing.time_module_step`` (warm-up until stable, then CUDA-event step times) in
alternating rounds (ours first in even rounds, timm first in odd rounds), so that clock and
thermal drift hit both alike. Reported: the median over rounds of each network's images/s
and their ratio (target: ours >= 1.0x timm).

timm is needed only here, and imported only when the bench runs:

    pip install timm
    python bench/train_throughput_vs_timm.py --hardware auto --rounds 5 \\
        --out bench/results/train_throughput_vs_timm_h100.md

``--rehearsal`` runs the bench where it cannot measure anything meaningful (the CPU, a machine
without timm, toy sizes) so that its code stays runnable: the CPU is allowed, and without timm
our own model stands in for timm's (the report says so). ``--json`` also writes the figures.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys

import torch
from torch import nn

from proxy_train.hardware import describe_device, resolve_hardware
from proxy_train.recipe import Recipe
from proxy_train.timing import StepTiming, time_module_step
from search_space.errors import NasError
from search_space.model import build_model, count_model_params
from search_space.presets import get_preset

TIMM_NAME = "tf_efficientnetv2_s"
OUR_PRESET = "efficientnetv2-s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hardware", default="auto", help="a CUDA target: auto, h100, a100, ...")
    p.add_argument("--resolution", type=int, default=300)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "fp32"))
    p.add_argument("--rounds", type=int, default=5, help="alternating measurement rounds")
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p.add_argument("--warmup-steps", type=int, default=30,
                   help="most warm-up steps per measurement (default 30)")
    p.add_argument("--drop-path", type=float, default=0.2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--ours", default=OUR_PRESET, help=f"our preset (default {OUR_PRESET})")
    p.add_argument("--timm-model", default=TIMM_NAME, help=f"timm's model (default {TIMM_NAME})")
    p.add_argument("--rehearsal", action="store_true",
                   help="allow the CPU, and stand our model in for timm's where timm is "
                        "missing: checks that the bench runs, measures nothing meaningful")
    p.add_argument("--out", default=None, help="also write the markdown report here")
    p.add_argument("--json", default=None, help="also write the figures as JSON here")
    return p.parse_args(argv)


def _timm():
    try:
        import timm  # only this bench uses timm; the toolkit never depends on it
    except ImportError:
        return None
    return timm


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available() and not args.rehearsal:
        print("error: this bench needs a CUDA GPU; torch.cuda.is_available() is False "
              f"(torch {torch.__version__})", file=sys.stderr)
        return 2
    timm = _timm()
    if timm is None and not args.rehearsal:
        print("error: timm is not installed; this bench compares against "
              f"timm.create_model({args.timm_model!r}) (pip install timm)", file=sys.stderr)
        return 2
    try:
        target = resolve_hardware(args.hardware)
        ours = get_preset(args.ours).spec
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not target.is_cuda and not args.rehearsal:
        print(f"error: hardware {args.hardware!r} resolved to {target.device}; this bench "
              "needs a CUDA device", file=sys.stderr)
        return 2

    def build_ours() -> nn.Module:
        return build_model(ours, num_classes=1000, dropout=args.dropout,
                           drop_path=args.drop_path)

    models: dict[str, nn.Module] = {"ours": build_ours()}
    if timm is not None:
        models["timm"] = timm.create_model(args.timm_model, pretrained=False, num_classes=1000,
                                           drop_rate=args.dropout,
                                           drop_path_rate=args.drop_path)
        timm_label = f"timm `{args.timm_model}`"
    else:
        models["timm"] = build_ours()
        timm_label = f"ours `{args.ours}` again, standing in for timm (not installed)"
    params = {name: count_model_params(m) for name, m in models.items()}
    results: dict[str, list[StepTiming]] = {name: [] for name in models}
    for r in range(args.rounds):
        order = ["ours", "timm"] if r % 2 == 0 else ["timm", "ours"]
        for name in order:
            t = time_module_step(models[name], target=target, resolution=args.resolution,
                                 num_classes=1000, batch_size=args.batch,
                                 precision=args.precision, recipe=Recipe(optimizer="sgd"),
                                 min_steps=args.steps, max_steps=args.steps,
                                 warmup_max_steps=args.warmup_steps, time_budget_s=120.0)
            if not t.ok:
                print(f"error: {name} failed in round {r + 1}: {t.reason}", file=sys.stderr)
                return 1
            results[name].append(t)
            print(f"round {r + 1} {name}: {t.images_per_s:.0f} images/s "
                  f"({t.median_ms:.1f} ms/step, spread {t.spread:.3f})", file=sys.stderr,
                  flush=True)

    ips = {n: statistics.median(t.images_per_s for t in ts) for n, ts in results.items()}
    ratio = ips["ours"] / ips["timm"]
    info = describe_device(target)
    command = "python bench/train_throughput_vs_timm.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    timm_version = timm.__version__ if timm is not None else "not installed"
    lines = [
        f"# Training throughput, ours vs timm: {target.device_name}",
        "",
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{command}`",
        f"- machine: {info['device_name']}; driver {info['driver_version']}; CUDA "
        f"{info['cuda_version']}; cuDNN {info['cudnn_version']}; torch {info['torch_version']}; "
        f"timm {timm_version}",
        f"- resolution {args.resolution}, batch {args.batch}, {args.precision} autocast, "
        f"channels_last, SGD, dropout {args.dropout}, drop path {args.drop_path}, "
        f"{args.rounds} alternating rounds of {args.steps} timed steps",
        *(["- **rehearsal**: these figures check that the bench runs; they compare nothing"]
          if args.rehearsal else []),
        "",
        "| model | params | images/s (median of rounds) | per round |",
        "|---|---|---|---|",
        f"| ours `{args.ours}` | {params['ours']:,} | {ips['ours']:.0f} | "
        + ", ".join(f"{t.images_per_s:.0f}" for t in results["ours"]) + " |",
        f"| {timm_label} | {params['timm']:,} | {ips['timm']:.0f} | "
        + ", ".join(f"{t.images_per_s:.0f}" for t in results["timm"]) + " |",
        "",
        f"Ratio ours / timm: {ratio:.3f}x (target >= 1.0x: "
        f"{'met' if ratio >= 1.0 else 'NOT met'}).",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        _write(args.out, report)
    if args.json:
        record = {
            "command": command, "device": info, "timm_version": timm_version,
            "rehearsal": args.rehearsal, "ours": args.ours,
            "timm_model": args.timm_model if timm is not None else None,
            "resolution": args.resolution, "batch": args.batch, "precision": args.precision,
            "figures": {"ours_images_per_s": ips["ours"], "timm_images_per_s": ips["timm"],
                        "ratio": ratio, "ours_params": params["ours"],
                        "timm_params": params["timm"]},
            "rounds": {name: [t.to_dict() for t in ts] for name, ts in results.items()},
        }
        _write(args.json, json.dumps(record, indent=1, default=str) + "\n")
    return 0


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
