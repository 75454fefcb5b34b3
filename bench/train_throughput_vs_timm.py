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
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import sys

import torch

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
    p.add_argument("--drop-path", type=float, default=0.2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--out", default=None, help="also write the markdown report here")
    return p.parse_args(argv)


def _timm():
    try:
        import timm  # only this bench uses timm; the toolkit never depends on it
    except ImportError:
        return None
    return timm


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("error: this bench needs a CUDA GPU; torch.cuda.is_available() is False "
              f"(torch {torch.__version__})", file=sys.stderr)
        return 2
    timm = _timm()
    if timm is None:
        print("error: timm is not installed; this bench compares against "
              f"timm.create_model({TIMM_NAME!r}) (pip install timm)", file=sys.stderr)
        return 2
    try:
        target = resolve_hardware(args.hardware)
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not target.is_cuda:
        print(f"error: hardware {args.hardware!r} resolved to {target.device}; this bench "
              "needs a CUDA device", file=sys.stderr)
        return 2

    models = {
        "ours": build_model(get_preset(OUR_PRESET).spec, num_classes=1000,
                            dropout=args.dropout, drop_path=args.drop_path),
        "timm": timm.create_model(TIMM_NAME, pretrained=False, num_classes=1000,
                                  drop_rate=args.dropout, drop_path_rate=args.drop_path),
    }
    params = {name: count_model_params(m) for name, m in models.items()}
    results: dict[str, list[StepTiming]] = {name: [] for name in models}
    for r in range(args.rounds):
        order = ["ours", "timm"] if r % 2 == 0 else ["timm", "ours"]
        for name in order:
            t = time_module_step(models[name], target=target, resolution=args.resolution,
                                 num_classes=1000, batch_size=args.batch,
                                 precision=args.precision, recipe=Recipe(optimizer="sgd"),
                                 min_steps=args.steps, max_steps=args.steps,
                                 warmup_max_steps=30, time_budget_s=120.0)
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
    lines = [
        f"# Training throughput, ours vs timm: {target.device_name}",
        "",
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{command}`",
        f"- machine: {info['device_name']}; driver {info['driver_version']}; CUDA "
        f"{info['cuda_version']}; cuDNN {info['cudnn_version']}; torch {info['torch_version']}; "
        f"timm {timm.__version__}",
        f"- resolution {args.resolution}, batch {args.batch}, {args.precision} autocast, "
        f"channels_last, SGD, dropout {args.dropout}, drop path {args.drop_path}, "
        f"{args.rounds} alternating rounds of {args.steps} timed steps",
        "",
        "| model | params | images/s (median of rounds) | per round |",
        "|---|---|---|---|",
        f"| ours `{OUR_PRESET}` | {params['ours']:,} | {ips['ours']:.0f} | "
        + ", ".join(f"{t.images_per_s:.0f}" for t in results["ours"]) + " |",
        f"| timm `{TIMM_NAME}` | {params['timm']:,} | {ips['timm']:.0f} | "
        + ", ".join(f"{t.images_per_s:.0f}" for t in results["timm"]) + " |",
        "",
        f"Ratio ours / timm: {ratio:.3f}x (target >= 1.0x: "
        f"{'met' if ratio >= 1.0 else 'NOT met'}).",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
