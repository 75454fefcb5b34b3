"""Weights out of the toolkit: an ONNX graph, or a checkpoint that timm loads.

What is exported is an :class:`ExportSource`: a trained model file (``model.pt``, a folder
holding one, or any file ``proxy_train.model_file`` wrote; EMA weights unless
``weights="final"``), or any architecture ``nas-arch`` takes (a preset, a JSON file, a
canonical string), built with random initialisation from a fixed seed. Both exports check
their result before writing, write atomically and leave no file when they fail.

* :func:`write_onnx`: see :mod:`proxy_train.onnx_export`.
* :func:`write_timm_checkpoint`: a safetensors file with timm's key names
  (:mod:`search_space.timm_keys`) and, in its header, the canonical architecture string,
  timm's ``arch_def`` and keyword arguments; it returns the Python that builds timm's
  ``EfficientNet`` and loads the file with ``strict=True``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from proxy_train.errors import ExportError
from proxy_train.files import atomic_write
from proxy_train.model_file import WEIGHTS, load_model
from proxy_train.onnx_export import TOLERANCE as ONNX_TOLERANCE
from proxy_train.onnx_export import OnnxExport, export_onnx
from search_space.codec import encode, spec_hash
from search_space.errors import SpecError
from search_space.model import build_model
from search_space.resolve import find_preset, resolve_arch
from search_space.spec import ArchSpec
from search_space.timm_keys import checkpoint_metadata, timm_snippet, timm_state_dict

RANDOM_INIT = "random init"
INIT_SEED = 0
NORMALIZATION = "(pixel - 128) / 128"
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


@dataclass(frozen=True)
class ExportSource:
    """A network to export, in eval mode, with where its weights came from."""

    spec: ArchSpec
    model: nn.Module
    weights: str
    """``'ema'`` or ``'final'`` (from a model file) or ``'random init'``."""
    eval_size: int | None
    """The image size the network is meant for, if known: a model file's (or preset's)
    evaluation size, or the size a search's ``best.json`` ran at (:func:`run_size`)."""
    origin: str


def is_model_file(ref: str) -> bool:
    """Whether ``ref`` names a trained model file (or a folder holding ``model.pt``)."""
    path = Path(ref)
    try:
        if path.is_dir():
            return (path / "model.pt").is_file()
        if not path.is_file():
            return False
        with path.open("rb") as handle:
            return path.suffix in (".pt", ".pth") or handle.read(4) == _ZIP_MAGIC
    except (OSError, ValueError):  # a name too long for the file system, or a NUL byte
        return False


def load_source(ref: str, *, weights: str | None = None,
                num_classes: int | None = None) -> ExportSource:
    """The network ``ref`` names: a model file's weights (``weights``: ``'ema'``, the
    default, or ``'final'``) or an architecture with random initialisation."""
    if is_model_file(ref):
        trained = load_model(ref)
        if num_classes is not None and num_classes != trained.num_classes:
            raise ExportError(f"--num-classes {num_classes} does not match the model file's "
                              f"{trained.num_classes} classes")
        chosen = weights or "ema"
        if chosen not in WEIGHTS:
            raise ExportError(f"weights {chosen!r} not in {WEIGHTS}")
        used = chosen if chosen == "final" or trained.ema is not None else "final"
        return ExportSource(spec=trained.spec, model=trained.build(chosen), weights=used,
                            eval_size=trained.eval_size, origin=ref)
    if weights is not None:
        raise ExportError(f"weights {weights!r} apply to a model file; {ref!r} is an "
                          "architecture (exported with random initialisation)")
    spec = resolve_arch(ref)
    if num_classes is not None:
        if num_classes < 1:
            raise SpecError(f"--num-classes {num_classes} must be >= 1")
        spec = dataclasses.replace(spec, num_classes=num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        model = build_model(spec).eval()
    preset = find_preset(ref)
    size = preset.eval_size if preset is not None else run_size(ref)
    return ExportSource(spec=spec, model=model, weights=RANDOM_INIT, eval_size=size, origin=ref)


def run_size(ref: str) -> int | None:
    """The image size of the search a ``best.json`` comes from (its ``timing_resolution``:
    the data's size, at which every candidate was timed), or None for any other reference."""
    path = Path(ref)
    if path.suffix != ".json" or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    provenance = doc.get("provenance") if isinstance(doc, dict) else None
    size = provenance.get("timing_resolution") if isinstance(provenance, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def write_onnx(source: ExportSource, out: str | os.PathLike[str], *, resolution: int,
               batch: int | None,
               progress: Callable[[str], None] | None = None) -> OnnxExport:
    """Export ``source`` to ONNX at ``out``; see :func:`proxy_train.onnx_export.export_onnx`."""
    if resolution < 1:
        raise ExportError(f"resolution {resolution} must be >= 1")
    metadata = {"effnas.arch": encode(source.spec), "effnas.hash": spec_hash(source.spec),
                "effnas.weights": source.weights, "effnas.resolution": str(resolution),
                "effnas.input": f"float RGB NCHW, {NORMALIZATION}"}
    return export_onnx(source.model, out, resolution=resolution, batch=batch,
                       metadata=metadata, progress=progress)


@dataclass(frozen=True, slots=True)
class TimmCheckpoint:
    """A written timm checkpoint and the Python that loads it."""

    path: Path
    tensors: int
    size_bytes: int
    snippet: str


def write_timm_checkpoint(source: ExportSource, out: str | os.PathLike[str]) -> TimmCheckpoint:
    """Write ``source``'s weights under timm's key names as a safetensors file."""
    state = timm_state_dict(source.spec, source.model.state_dict())
    blob = safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in state.items()},
                             metadata={**checkpoint_metadata(source.spec),
                                       "effnas.weights": source.weights})
    path = atomic_write(out, lambda handle: handle.write(blob))
    return TimmCheckpoint(path=path, tensors=len(state), size_bytes=len(blob),
                          snippet=timm_snippet(source.spec, str(out),
                                               resolution=source.eval_size))


__all__ = ["ONNX_TOLERANCE", "ExportSource", "TimmCheckpoint", "is_model_file", "load_source",
           "write_onnx", "write_timm_checkpoint"]
