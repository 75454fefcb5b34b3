"""The side-by-side text table ``nas-scale`` prints: base and targets, stage by stage."""

from __future__ import annotations

from scaling.output import ModelRecord, ScaleReport
from scaling.rules import late_share
from search_space.spec import FUSED, StageSpec


def format_count(n: int) -> str:
    """``21458488 -> '21.46M'``, ``8366000000 -> '8.37G'``."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.2f}{suffix}"
    return str(n)


def _stage_label(i: int, stage: StageSpec) -> str:
    kind = "fused" if stage.block == FUSED else "mbconv"
    se = f" se{stage.se_ratio:g}" if stage.se_ratio > 0 else ""
    return f"stage {i} {kind} k{stage.kernel} e{stage.expansion} s{stage.stride}{se}"


def format_table(report: ScaleReport) -> str:
    """Rows: stem, each stage (layers x width), head, params, MACs, sizes, phi, late share."""
    models = [report.base, *report.targets]
    longest = max(models, key=lambda m: len(m.spec.stages))
    header = ["", f"base: {report.base.name}"]
    header += [t.name for t in report.targets]
    rows: list[list[str]] = [header]
    rows.append(["stem"] + [str(m.spec.stem_channels) for m in models])
    for i, stage in enumerate(longest.spec.stages):
        cells = []
        for m in models:
            stages = m.spec.stages
            cells.append(f"{stages[i].layers} x {stages[i].out_channels}" if i < len(stages)
                         else "-")
        rows.append([_stage_label(i + 1, stage)] + cells)
    rows.append(["head"] + [str(m.spec.head_channels) for m in models])
    rows.append(["layers"] + [str(m.spec.num_blocks) for m in models])
    rows.append(["params"] + [format_count(m.params) for m in models])
    rows.append(["MACs @ train size"] + [f"{format_count(m.macs_train)} @{m.train_size}"
                                         for m in models])
    rows.append(["MACs @ eval size"] + [f"{format_count(m.macs_eval)} @{m.eval_size}"
                                        for m in models])
    rows.append(["train / eval size"] + [f"{m.train_size} / {m.eval_size}" for m in models])
    rows.append(["phi"] + ["0"] + [_phi(t) for t in report.targets])
    rows.append(["added layers in last 3 stages"] + ["-"] + [
        f"{late_share(report.base.spec, t.spec):.0%}" for t in report.targets])
    rows.append(["recipe (size, RandAug, mixup, dropout)"] + [_recipe(m) for m in models])
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if c == 0 else cell.rjust(w)
                               for c, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _phi(m: ModelRecord) -> str:
    return "-" if m.coefficients is None else f"{m.coefficients.phi:.4g}"


def _recipe(m: ModelRecord) -> str:
    r = m.recipe
    return (f"{r.image_size[1]}, {r.randaug[1]:g}, {r.mixup[1]:g}, {r.dropout[1]:g}")
