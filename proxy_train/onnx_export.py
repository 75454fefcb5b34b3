"""ONNX export of a network, checked with onnxruntime before anything is written.

The only module that imports onnx and onnxruntime (and, through ``torch.onnx``, onnxscript):
the optional extra ``onnx``. They are imported on first use; without them an export stops
with one line naming the extra to install.

The graph comes from ``torch.onnx.export(..., dynamo=True)``, torch's ``torch.export``-based
exporter (the TorchScript one is deprecated since torch 2.9), with the weights inside the one
``.onnx`` file (protobuf limits that to 2 GB: about 500M float32 parameters). Input
``images`` is a float NCHW batch, output ``logits``; the batch dimension is fixed or
symbolic (``batch``). Before the file is written, onnxruntime runs the serialized graph on a
random batch (of another size than the example when the batch is dynamic) and its outputs
are compared with the eval-mode torch model's: a max absolute difference above
``tolerance`` (1e-4) fails the export and leaves no file. The file is written atomically.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from proxy_train.errors import ExportError
from proxy_train.files import atomic_write

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
TOLERANCE = 1e-4
EXTRA = "onnx"
_MODULES = ("onnx", "onnxscript", "onnxruntime")


@dataclass(frozen=True, slots=True)
class OnnxExport:
    """A written, checked ONNX file."""

    path: Path
    resolution: int
    batch: int | None
    """Fixed batch size, or None for a symbolic ``batch`` dimension."""
    opset: int
    check_batch: int
    max_abs_diff: float
    output_scale: float
    """Largest absolute torch output in the check (how much the difference is of it)."""
    size_bytes: int


def _require() -> dict[str, ModuleType]:
    try:
        return {name: importlib.import_module(name) for name in _MODULES}
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the optional extra '{EXTRA}' (missing module "
                          f"{exc.name!r}): pip install -e '.[{EXTRA}]' in the effnas "
                          "clone") from None


@contextmanager
def _quiet() -> Iterator[None]:
    """The exporter warns about torchvision ops and deprecations that do not concern us."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model: nn.Module, path: str | os.PathLike[str], *, resolution: int,
                batch: int | None = None, metadata: Mapping[str, str] | None = None,
                tolerance: float = TOLERANCE, seed: int = 0,
                progress: Callable[[str], None] | None = None) -> OnnxExport:
    """Export ``model`` (put in eval mode) for ``resolution`` x ``resolution`` inputs, check
    it with onnxruntime and write it to ``path``; ``metadata`` goes into the model's
    ``metadata_props``. Raises :class:`ExportError` (and writes nothing) when it fails."""
    mods = _require()
    if batch is not None and batch < 1:
        raise ExportError(f"batch {batch} must be >= 1 (or None for a dynamic batch)")
    say = progress or (lambda _line: None)
    model = model.eval()
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(batch or 2, 3, resolution, resolution, generator=gen)
    dynamic = None if batch else ({0: torch.export.Dim("batch", min=1)},)
    say(f"exporting with torch.onnx (dynamo) at {resolution}x{resolution}, "
        f"batch {batch or 'dynamic'}")
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(
                model, (example,), dynamo=True, external_data=False, verbose=False,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=dynamic)
    except Exception as exc:  # noqa: BLE001 - any exporter failure is one line for the user
        raise ExportError(f"torch.onnx.export failed: {_first_line(exc)}") from None
    assert program is not None  # dynamo=True always returns the program
    proto = program.model_proto
    mods["onnx"].helper.set_model_props(proto, dict(metadata or {}))
    try:
        blob = proto.SerializeToString()
    except Exception as exc:  # noqa: BLE001 - protobuf refuses messages over 2 GB
        raise ExportError(f"cannot serialize the ONNX graph ({_first_line(exc)}); one .onnx "
                          "file holds at most 2 GB of weights") from None
    check_batch = batch or 3  # another size than the example's proves the dimension is free
    say(f"checking with onnxruntime {mods['onnxruntime'].__version__} on a random batch of "
        f"{check_batch}")
    diff, scale = _check(mods["onnxruntime"], blob, model, check_batch, resolution, gen)
    if not diff <= tolerance:  # also catches NaN
        raise ExportError(f"ONNX check failed: max abs difference {diff:.3g} between "
                          f"onnxruntime and torch exceeds {tolerance:g}; nothing written")
    target = atomic_write(path, lambda handle: handle.write(blob))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxExport(path=target, resolution=resolution, batch=batch, opset=int(opset),
                      check_batch=check_batch, max_abs_diff=diff, output_scale=scale,
                      size_bytes=len(blob))


def _check(ort: Any, blob: bytes, model: nn.Module, batch: int, resolution: int,
           gen: torch.Generator) -> tuple[float, float]:
    x = torch.randn(batch, 3, resolution, resolution, generator=gen)
    with torch.no_grad():
        expected = model(x).numpy()
    try:
        session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    except Exception as exc:  # noqa: BLE001 - an unloadable graph is a failed check
        raise ExportError(f"ONNX check failed: onnxruntime could not run the graph: "
                          f"{_first_line(exc)}") from None
    if got.shape != expected.shape:
        raise ExportError(f"ONNX check failed: output shape {list(got.shape)} != torch's "
                          f"{list(expected.shape)}")
    diff = float(np.max(np.abs(got.astype(np.float64) - expected)))
    return diff, float(np.max(np.abs(expected)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


__all__ = ["INPUT_NAME", "OUTPUT_NAME", "TOLERANCE", "OnnxExport", "export_onnx"]
