"""Draw a run's plots with the plotting code of an earlier commit and with this one's, side by
side, as small PNGs: the record behind ``bench/results/plots.md``.

    python bench/plots_before_after.py --before REV --out bench/results/plots \\
        search:runs/s50 search:runs/s6 train:runs/t1 train:runs/t3 validate:runs/s6

Each ``KIND:FOLDER`` is a finished run: ``search`` draws ``reward.png`` and ``pareto.png`` from
its leaderboard, ``train`` ``curves.png`` from its ``metrics.parquet`` and ``train.json``,
``validate`` ``validation.png`` from its ``validation.parquet`` and ``validation.json``. The
earlier code is read with ``git show REV:PATH`` (``results/report.py``, ``results/curves.py``,
``results/validation_plot.py``) and run in a module of its own; everything it imports is this
commit's. Pictures are written as ``<folder name>-<plot>-before.png`` and ``-after.png``,
scaled to ``--width`` pixels and reduced to a 128-colour palette to stay small.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results.leaderboard import Leaderboard  # noqa: E402
from results.metrics import METRICS_FILE, read_metrics  # noqa: E402
from results.validation import read_validation  # noqa: E402

MODULES = {"report": "results/report.py", "curves": "results/curves.py",
           "validation_plot": "results/validation_plot.py"}


def load_at(rev: str) -> dict[str, types.ModuleType]:
    """The plotting modules as they were at ``rev``."""
    out = {}
    for name, path in MODULES.items():
        source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout
        module = types.ModuleType(f"before_{name}")
        exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)  # noqa: S102
        out[name] = module
    return out


def current() -> dict[str, types.ModuleType]:
    import results.curves
    import results.report
    import results.validation_plot

    return {"report": results.report, "curves": results.curves,
            "validation_plot": results.validation_plot}


def draw(kind: str, folder: Path, mods: dict[str, types.ModuleType],
         into: Path) -> dict[str, Path]:
    """The plots of one run, drawn by ``mods`` into ``into``; by plot name."""
    if kind == "search":
        paths = mods["report"].plot_run(Leaderboard(folder).read(), into)
        return {p.stem: p for p in paths}
    if kind == "train":
        record = json.loads((folder / "train.json").read_text())
        result = record["result"]
        test = result["test_top1_ema"] if result["test_top1_ema"] is not None \
            else result["test_top1"]
        path = mods["curves"].plot_curves(read_metrics(folder / METRICS_FILE),
                                          into / "curves.png",
                                          title=record["model"]["name"], test_top1=test)
        return {"curves": path}
    rows, _ = read_validation(folder / "validation.parquet")
    stats = json.loads((folder / "validation.json").read_text())["statistics"]
    return {"validation": mods["validation_plot"].plot_validation(rows, stats,
                                                                  into / "validation.png")}


def shrink(source: Path, target: Path, width: int) -> None:
    image = Image.open(source).convert("RGB")
    height = round(image.height * width / image.width)
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    image.quantize(colors=128).save(target, optimize=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="KIND:FOLDER (search, train, validate)")
    p.add_argument("--before", required=True, help="the commit whose plotting code is 'before'")
    p.add_argument("--out", default="bench/results/plots")
    p.add_argument("--width", type=int, default=900)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    versions: dict[str, Callable[[], dict[str, types.ModuleType]]] = {
        "before": lambda: load_at(args.before), "after": current}
    for label, load in versions.items():
        mods = load()
        for spec in args.runs:
            kind, _, folder = spec.partition(":")
            with tempfile.TemporaryDirectory() as scratch:
                for plot, path in draw(kind, Path(folder), mods, Path(scratch)).items():
                    target = out / f"{Path(folder).name}-{plot}-{label}.png"
                    shrink(path, target, args.width)
                    print(f"wrote {target} ({target.stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
