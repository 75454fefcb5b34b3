"""Do timm checkpoints from ``nas-arch export --format timm-weights`` give our logits in timm?

For every preset timm can express and ``--n`` random specs of each shipped space: build our
network, calibrate its BatchNorm statistics on random images (so its logits are of order one,
as a trained network's; a fresh one's are ~1e-6), save it as a model file, export it with
``nas-arch export MODEL --format timm-weights``, run the printed snippet verbatim (timm's
``EfficientNet`` loading the file with ``strict=True``) and compare both networks' eval logits
on random images. timm is not a dependency: point ``--timm-site`` at the site-packages of an
environment that has it (timm 1.0.31 with torch 2.13.0 was used; its torchvision needs only
its pure-Python part).

    python bench/timm_weights_parity.py --timm-site /path/to/venv/lib/python3.11/site-packages \
        --n 10 --out bench/results/timm_weights_parity.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from nas.cli.arch import main as nas_arch
from proxy_train.model_file import save_model
from search_space.codec import encode
from search_space.errors import SpecError
from search_space.export import to_timm
from search_space.model import build_model
from search_space.presets import PRESETS
from search_space.sampling import sample
from search_space.space_files import SHIPPED_SPACES, load_space
from search_space.spec import ArchSpec

SIZE = 64


def calibrated(spec: ArchSpec, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(spec, dropout=0.0, drop_path=0.0)
    for bn in model.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.reset_running_stats()
            bn.momentum = None
    with torch.no_grad():
        model.train()(torch.randn(8, 3, SIZE, SIZE))
    return model.eval()


def compare(name: str, spec: ArchSpec, folder: Path, seed: int) -> dict[str, Any]:
    ours = calibrated(spec, seed)
    model_file = save_model(folder / f"{seed}.pt", spec, num_classes=spec.num_classes,
                            eval_size=SIZE, model=ours.state_dict())
    out = folder / f"{seed}.safetensors"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = nas_arch(["export", str(model_file), "--format", "timm-weights", "--out", str(out)])
    if code != 0:
        raise SystemExit(f"{name}: export failed")
    namespace: dict[str, Any] = {}
    exec(printed.getvalue().split("load it with timm:\n", 1)[1], namespace)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        a, b = ours(x), namespace["model"](x)
    return {"name": name, "params": sum(p.numel() for p in ours.parameters()),
            "scale": float(a.abs().max()), "diff": float((a - b).abs().max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timm-site", required=True, help="site-packages holding timm")
    parser.add_argument("--n", type=int, default=10, help="random specs per shipped space")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the report here")
    args = parser.parse_args(argv)
    sys.path.append(args.timm_site)  # after our own packages: only timm comes from there
    warnings.simplefilter("ignore")  # torchvision's missing C extension
    import timm

    torch.set_num_threads(1)
    specs: list[tuple[str, ArchSpec]] = []
    skipped: list[str] = []
    for name, preset in sorted(PRESETS.items()):
        try:
            to_timm(preset.spec)
            specs.append((name, preset.spec))
        except SpecError as exc:
            skipped.append(f"{name} ({exc})")
    rng = random.Random(args.seed)
    for space_name in SHIPPED_SPACES:
        space = load_space(space_name)
        for i in range(args.n):
            spec = sample(space, rng, num_classes=1000)
            specs.append((f"{space_name} #{i}", spec))
    load_start = os.getloadavg()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = [compare(name, spec, Path(tmp), seed)
                   for seed, (name, spec) in enumerate(specs)]
    worst = max(r["diff"] for r in results)
    load = [" / ".join(f"{x:.2f}" for x in avg) for avg in (load_start, os.getloadavg())]
    lines = [
        "# timm checkpoints from `nas-arch export --format timm-weights`: logits in timm",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}",
        f"- machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}; load "
        f"average {load[0]} at the start, {load[1]} at the end",
        f"- python {platform.python_version()}, torch {torch.__version__}, timm {timm.__version__}",
        f"- command: `python bench/timm_weights_parity.py --timm-site ... --n {args.n} "
        f"--seed {args.seed}`",
        f"- {len(results)} networks ({len(results) - len(SHIPPED_SPACES) * args.n} presets, "
        f"{args.n} random specs of each of {', '.join(SHIPPED_SPACES)}), eval logits of "
        f"2 random {SIZE}x{SIZE} images, BatchNorm calibrated; {time.perf_counter() - start:.0f} s",
        "",
        f"**Largest absolute logit difference, ours vs timm: {worst:.3g}**",
        "",
        "| network | params | max abs logit | max abs difference |",
        "|---|---|---|---|",
        *[f"| {r['name']} | {r['params']:,} | {r['scale']:.3f} | {r['diff']:.3g} |"
          for r in results],
        "",
        "Presets timm cannot express (refused by the export): "
        + (", ".join(skipped) if skipped else "none"),
        "",
        "Random specs:",
        "",
        *[f"- {name}: `{encode(spec)}`" for name, spec in specs if "#" in name],
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
