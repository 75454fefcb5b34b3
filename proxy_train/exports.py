"""Weights out of the toolkit: an ONNX graph, or a checkpoint that timm loads.

What is exported is an :class:`ExportSource` (:func:`export_source`): a trained model file's
network (``proxy_train.model_file``; EMA weights unless ``weights="final"``), or an
architecture built with random initialisation from a fixed seed. Which one a user named is
decided by the command layer's model reference (``nas.cli.models``). Both exports check
their result before writing, write atomically and leave no file when they fail.

* :func:`write_onnx`: see :mod:`proxy_train.onnx_export`.
* :func:`write_timm_checkpoint`: a safetensors file with timm's key names
  (:mod:`search_space.timm_keys`) and, in its header, the canonical architecture string,
  timm's ``arch_def`` and keyword arguments; it returns the Python that builds timm's
  ``EfficientNet`` and loads the file with ``strict=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from proxy_train.errors import ExportError
from proxy_train.files import atomic_write
from proxy_train.model_file import WEIGHTS, TrainedModel
from proxy_train.onnx_export import TOLERANCE as ONNX_TOLERANCE
from proxy_train.onnx_export import OnnxExport, export_onnx
from search_space.codec import encode, spec_hash
from search_space.model import build_model
from search_space.spec import ArchSpec
from search_space.timm_keys import checkpoint_metadata, timm_snippet, timm_state_dict

RANDOM_INIT = "random init"
INIT_SEED = 0
NORMALIZATION = "(pixel - 128) / 128"


@dataclass(frozen=True)
class ExportSource:
    """A network to export, in eval mode, with where its weights came from."""

    spec: ArchSpec
    model: nn.Module
    weights: str
    """``'ema'`` or ``'final'`` (from a model file) or ``'random init'``."""
    eval_size: int | None
    """The image size the network is meant for, if known: a model file's (or preset's)
    evaluation size, or the size a search's ``best.json`` ran at."""
    origin: str


def export_source(spec: ArchSpec, *, trained: TrainedModel | None = None,
                  weights: str | None = None, eval_size: int | None = None,
                  origin: str) -> ExportSource:
    """The network to export: a model file's (``trained``) with its ``weights`` (``'ema'``,
    the default, or ``'final'``), or ``spec`` with random initialisation (no ``weights``)."""
    if trained is not None:
        chosen = weights or "ema"
        if chosen not in WEIGHTS:
            raise ExportError(f"weights {chosen!r} not in {WEIGHTS}")
        used = chosen if chosen == "final" or trained.ema is not None else "final"
        return ExportSource(spec=trained.spec, model=trained.build(chosen), weights=used,
                            eval_size=trained.eval_size, origin=origin)
    if weights is not None:
        raise ExportError(f"weights {weights!r} apply to a model file; {origin!r} is an "
                          "architecture (exported with random initialisation)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        model = build_model(spec).eval()
    return ExportSource(spec=spec, model=model, weights=RANDOM_INIT, eval_size=eval_size,
                        origin=origin)


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


__all__ = ["ONNX_TOLERANCE", "ExportSource", "TimmCheckpoint", "export_source", "write_onnx",
           "write_timm_checkpoint"]
