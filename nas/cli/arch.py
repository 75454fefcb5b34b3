"""``nas-arch``: inspect, sample and export architectures.

Examples::

    nas-arch show efficientnetv2-s                  # per-stage params/MACs at 384 px
    nas-arch show stem24-fused_r2_k3_s1_e1_c24-...-head1280-cls1000 --resolution 224 --json
    nas-arch show runs/search/best.json --num-classes 10
    nas-arch sample --space paper --n 5 --seed 0
    nas-arch export efficientnetv2-s --format timm
    nas-arch export runs/train/model.pt --format onnx --out model.onnx
    nas-arch export runs/train/model.pt --format timm-weights --out model.safetensors

A model (``SPEC``) is whatever ``nas.cli.models`` resolves: a preset name, a canonical string,
a JSON file (a spec, a search's ``best.json``), a search's run folder or leaderboard (its best
row), a ``nas-scale`` output of one model, or a trained model file. Errors print one
``error: ...`` line to stderr and exit with 2.

The weight formats (``onnx``, ``timm-weights``) need torch, so their implementation,
``proxy_train.exports``, is imported only when one is asked for (as torch is for a model file
and pandas for a leaderboard: a spec alone needs only ``search_space``).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from typing import Any

from nas.cli.command import run_command
from nas.cli.models import resolve_model
from nas.cli.parser import OneLineParser
from nas.run.progress import say_on_stderr
from search_space.codec import encode, spec_hash, to_dict, to_json
from search_space.cost import cost, count_params, stage_costs
from search_space.errors import SpecError
from search_space.export import timm_kwargs, to_timm
from search_space.limits import check_size
from search_space.messages import counted
from search_space.sampling import sample
from search_space.space_files import load_space
from search_space.spec import ArchSpec

DEFAULT_RESOLUTION = 224
WEIGHT_FORMATS = ("onnx", "timm-weights")


def main(argv: list[str] | None = None) -> int:
    """Run ``nas-arch``; returns the exit code (0 ok, 2 user error; ``nas.cli.command``)."""
    return run_command(_parser(), lambda invocation: invocation.args.run(invocation.args), argv)


SPEC_HELP = ("preset name, canonical string, JSON file (spec, best.json), a search's run "
             "folder or leaderboard (its best row), a nas-scale output of one model, or a model "
             "file")


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="nas-arch", description="Inspect, sample and export architecture specs."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    show = sub.add_parser("show", help="per-stage table of params and MACs")
    show.add_argument("arch", metavar="SPEC", help=SPEC_HELP)
    show.add_argument("--resolution", type=int, default=None,
                      help="input size in pixels (default: the model's eval size, else 224)")
    show.add_argument("--num-classes", type=int, default=None,
                      help="replace the class count (default: the model's)")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(run=_show)

    smp = sub.add_parser("sample", help="sample architectures from a search space")
    smp.add_argument("--space", required=True, help="space name (paper, v2s, v2b0) or TOML file")
    smp.add_argument("--n", type=int, default=1, help="how many specs")
    smp.add_argument("--seed", type=int, default=0, help="random seed")
    smp.add_argument("--num-classes", type=int, default=1000, help="class count")
    smp.add_argument("--json", action="store_true", help="JSON lines with arch, hash, params")
    smp.set_defaults(run=_sample)

    exp = sub.add_parser("export", help="export to spec JSON, timm arch_def, ONNX or timm weights")
    exp.add_argument("arch", metavar="SPEC", help=SPEC_HELP)
    what = exp.add_argument_group("what to write")
    what.add_argument("--format", choices=("json", "timm") + WEIGHT_FORMATS, default="json",
                      help="output format")
    what.add_argument("--out", default=None,
                      help="output file of onnx and timm-weights (default: none; they need it)")
    what.add_argument("--num-classes", type=int, default=None,
                      help="replace the class count (default: the model's)")
    what.add_argument("--weights", choices=("ema", "final"), default=None,
                      help="weights of a model file (default: ema)")
    onnx = exp.add_argument_group("onnx")
    onnx.add_argument("--resolution", type=int, default=None,
                      help="input size (default: the model's eval size, a search's "
                               "best.json: the run's size, else 224)")
    onnx.add_argument("--batch", default="dynamic", help="batch: dynamic or N")
    exp.set_defaults(run=_export)
    return parser


def _check_positive(flag: str, value: int) -> None:
    if value < 1:
        raise SpecError(f"{flag} {value} must be >= 1")


# --------------------------------------------------------------------------- show


def _show(args: argparse.Namespace) -> int:
    model = resolve_model(args.arch, num_classes=args.num_classes, target_option=None)
    if args.resolution is not None:
        _check_positive("--resolution", args.resolution)
    resolution = args.resolution or model.eval_size or DEFAULT_RESOLUTION
    report = describe(model.spec, resolution)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(report))
    return 0


def describe(spec: ArchSpec, resolution: int) -> dict[str, Any]:
    """Everything ``show`` prints, as a JSON-able dict."""
    total = cost(spec, resolution)
    parts = stage_costs(spec, resolution)
    rows: list[dict[str, Any]] = []
    cin = spec.stem_channels
    for part in parts:
        if part.name == "stem":
            row = {"block": "conv", "layers": 1, "kernel": 3, "expansion": None, "se_ratio": 0.0,
                   "in_channels": 3, "out_channels": spec.stem_channels, "stride": 2}
        elif part.name == "head":
            row = {"block": "conv", "layers": 1, "kernel": 1, "expansion": None, "se_ratio": 0.0,
                   "in_channels": cin, "out_channels": spec.head_channels, "stride": 1}
        elif part.name == "classifier":
            row = {"block": "linear", "layers": 1, "kernel": None, "expansion": None,
                   "se_ratio": 0.0, "in_channels": spec.head_channels,
                   "out_channels": spec.num_classes, "stride": None}
        else:
            stage = spec.stages[part.index - 1]
            row = {"block": stage.block, "layers": stage.layers, "kernel": stage.kernel,
                   "expansion": stage.expansion, "se_ratio": stage.se_ratio, "in_channels": cin,
                   "out_channels": stage.out_channels, "stride": stage.stride}
            cin = stage.out_channels
        rows.append({"stage": part.name, **row, "out_size": part.resolution,
                     "params": part.params, "macs": part.macs})
    return {
        "arch": encode(spec),
        "hash": spec_hash(spec),
        "params": total.params,
        "macs": total.macs,
        "resolution": resolution,
        "activation_bytes": total.activation_bytes,
        "num_classes": spec.num_classes,
        "num_blocks": spec.num_blocks,
        "stages": rows,
        "spec": to_dict(spec),
    }


def format_table(report: dict[str, Any]) -> str:
    """The human-readable form of :func:`describe`'s dict."""
    header = ("stage", "block", "layers", "k", "e", "se", "channels", "stride", "out",
              "params", "MACs")
    lines = [header]
    for r in report["stages"]:
        lines.append((
            r["stage"], r["block"], str(r["layers"]), _dash(r["kernel"]), _dash(r["expansion"]),
            format(r["se_ratio"], "g") if r["se_ratio"] else "-",
            f"{r['in_channels']}->{r['out_channels']}", _dash(r["stride"]), str(r["out_size"]),
            f"{r['params']:,}", format_macs(r["macs"]),
        ))
    lines.append(("total", "", str(report["num_blocks"]), "", "", "", "", "", "",
                  f"{report['params']:,}", format_macs(report["macs"])))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    left = {0, 1, 6}  # text columns; numbers are right-aligned
    out = [
        "  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in lines
    ]
    out.insert(1, "-" * len(out[0]))
    out.insert(len(out) - 1, "-" * len(out[0]))
    mib = report["activation_bytes"] / 2**20
    out += [
        "",
        f"resolution   {report['resolution']}  ({counted(report['num_classes'], 'class', 'classes')})",
        f"params       {report['params']:,}",
        f"MACs         {format_macs(report['macs'])} ({report['macs']:,})",
        f"activations  {mib:.1f} MiB per image (16-bit, kept for backward)",
        f"arch         {report['arch']}",
        f"hash         {report['hash']}",
    ]
    return "\n".join(out)


def format_macs(macs: int) -> str:
    """``8.366G`` from 1e9, ``717.600M`` from 1e6, ``1.280K`` below (three decimals)."""
    if macs >= 10**9:
        return f"{macs / 1e9:.3f}G"
    if macs >= 10**6:
        return f"{macs / 1e6:.3f}M"
    return f"{macs / 1e3:.3f}K"


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


# --------------------------------------------------------------------------- sample


def _sample(args: argparse.Namespace) -> int:
    _check_positive("--n", args.n)
    _check_positive("--num-classes", args.num_classes)
    space = load_space(args.space)
    rng = random.Random(args.seed)
    for _ in range(args.n):
        spec = check_size(sample(space, rng, num_classes=args.num_classes))
        if args.json:
            line = json.dumps({"arch": encode(spec), "hash": spec_hash(spec),
                               "params": count_params(spec)})
        else:
            line = encode(spec)
        print(line)
    return 0


# --------------------------------------------------------------------------- export


def _export(args: argparse.Namespace) -> int:
    if args.format in WEIGHT_FORMATS:
        return _export_weights(args)
    spec = resolve_model(args.arch, num_classes=args.num_classes, target_option=None).spec
    if args.format == "json":
        print(to_json(spec))
    else:
        print(format_timm(spec))
    return 0


def format_timm(spec: ArchSpec) -> str:
    """Python source assigning timm's ``arch_def`` and ``EfficientNet`` keyword arguments."""
    rows: Sequence[list[str]] = to_timm(spec)
    body = "\n".join(f"    {row!r}," for row in rows)
    kwargs = ", ".join(f"{key!r}: {_source(value)}" for key, value in timm_kwargs(spec).items())
    return (
        f"# {encode(spec)}\n"
        f"arch_def = [\n{body}\n]\n"
        f"kwargs = {{{kwargs}}}  # also act_layer=nn.SiLU, BatchNorm eps 1e-3"
    )


def _source(value: object) -> str:
    """A kwargs value as Python source: a builtin such as ``int`` by its name."""
    return value.__name__ if isinstance(value, type) else repr(value)


def _export_weights(args: argparse.Namespace) -> int:
    if not args.out:
        raise SpecError(f"--format {args.format} needs --out FILE")
    batch = _batch(args.batch)
    if args.resolution is not None:
        _check_positive("--resolution", args.resolution)
    from proxy_train import exports  # torch and model files: see the module docstring

    model = resolve_model(args.arch, num_classes=args.num_classes, target_option=None)
    source = exports.export_source(model.spec, trained=model.trained, weights=args.weights,
                                   eval_size=model.eval_size, origin=args.arch)
    origin = f"{source.origin}: {encode(source.spec)} ({source.weights} weights)"
    if args.format == "onnx":
        print(origin)
        size = args.resolution or source.eval_size or DEFAULT_RESOLUTION
        done = exports.write_onnx(source, args.out, resolution=size, batch=batch,
                                  progress=say_on_stderr)  # stdout: results only
        print(f"onnxruntime vs torch: max abs difference {done.max_abs_diff:.2e} (largest "
              f"logit {done.output_scale:.2g}; allowed {exports.ONNX_TOLERANCE:g})")
        print(f"wrote {done.path} ({done.size_bytes / 2**20:.1f} MiB, opset {done.opset}, input "
              f"images [{done.batch or 'batch'}, 3, {size}, {size}], output logits)")
        return 0
    written = exports.write_timm_checkpoint(source, args.out)
    print(origin)
    print(f"wrote {written.path} ({written.tensors} tensors, {written.size_bytes / 2**20:.1f} "
          f"MiB, timm key names); load it with timm:\n")
    print(written.snippet, end="")
    return 0


def _batch(text: str) -> int | None:
    if text == "dynamic":
        return None
    if not text.isdigit() or int(text) < 1:
        raise SpecError(f"--batch {text!r} must be 'dynamic' or a whole number >= 1")
    return int(text)


if __name__ == "__main__":
    raise SystemExit(main())
