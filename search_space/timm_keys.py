"""Our ``state_dict`` keys as timm's, and the Python that loads them into timm (torch-free).

timm (checked against 1.0.31) builds the network of a spec from the ``arch_def`` that
:func:`search_space.export.to_timm` writes. Its modules hold the same tensors as ours, in the
same order, under other names. The renaming is one table per timm block type
(:data:`BLOCK_MODULES`), keyed by the module path inside one block; the parameter or buffer
name after it is kept::

    our module in a block     cn          er              ir              ds
    expand.conv, expand.bn    -           -               conv_pw, bn1    -
    conv.conv, conv.bn        conv, bn1   conv_exp, bn1   -               -
    dw.conv, dw.bn            -           -               conv_dw, bn2    conv_dw, bn1
    se.reduce, se.expand      -           se.conv_reduce, se.conv_expand (er, ir, ds)
    project.conv, project.bn  -           conv_pwl, bn2   conv_pwl, bn3   conv_pw, bn2

and outside the blocks ``stem.conv`` -> ``conv_stem``, ``stem.bn`` -> ``bn1``, ``head.conv`` ->
``conv_head``, ``head.bn`` -> ``bn2``, ``classifier`` -> ``classifier``. Block ``j`` of stage
``i`` is ``blocks.{i}.{j}`` in both networks. ``tests/search_space/golden/timm_keys.json``
holds timm's own keys and shapes for one spec per block type, with and without SE.

A spec that timm cannot express exactly is refused by ``to_timm`` with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

from search_space.codec import encode
from search_space.errors import SpecError
from search_space.export import timm_kwargs, to_timm
from search_space.spec import ArchSpec

T = TypeVar("T")

_SE = {"se.reduce": "se.conv_reduce", "se.expand": "se.conv_expand"}
BLOCK_MODULES: dict[str, dict[str, str]] = {
    "cn": {"conv.conv": "conv", "conv.bn": "bn1"},
    "er": {"conv.conv": "conv_exp", "conv.bn": "bn1", **_SE,
           "project.conv": "conv_pwl", "project.bn": "bn2"},
    "ir": {"expand.conv": "conv_pw", "expand.bn": "bn1", "dw.conv": "conv_dw", "dw.bn": "bn2",
           **_SE, "project.conv": "conv_pwl", "project.bn": "bn3"},
    "ds": {"dw.conv": "conv_dw", "dw.bn": "bn1", **_SE,
           "project.conv": "conv_pw", "project.bn": "bn2"},
}
"""timm block type -> {our module path inside a block: timm's}."""
TOP_MODULES: dict[str, str] = {"stem.conv": "conv_stem", "stem.bn": "bn1",
                               "head.conv": "conv_head", "head.bn": "bn2",
                               "classifier": "classifier"}


def block_types(spec: ArchSpec) -> list[str]:
    """timm's block type (``cn``, ``er``, ``ir``, ``ds``) of every stage; refuses what
    ``to_timm`` refuses."""
    return [row[0].split("_", 1)[0] for row in to_timm(spec)]


def timm_state_dict(spec: ArchSpec, state: Mapping[str, T]) -> dict[str, T]:
    """``state`` (our network's ``state_dict``) under timm's key names, in the same order.

    Every key must belong to the network of ``spec``; one that does not raises
    :class:`SpecError` naming it."""
    kinds = block_types(spec)
    return {_timm_key(key, kinds): value for key, value in state.items()}


def _timm_key(key: str, kinds: list[str]) -> str:
    module, _, name = key.rpartition(".")
    if module in TOP_MODULES:
        return f"{TOP_MODULES[module]}.{name}"
    parts = module.split(".", 3)
    if len(parts) == 4 and parts[0] == "blocks" and parts[1].isdigit() and parts[2].isdigit():
        stage = int(parts[1])
        table = BLOCK_MODULES[kinds[stage]] if stage < len(kinds) else {}
        if parts[3] in table:
            return f"blocks.{parts[1]}.{parts[2]}.{table[parts[3]]}.{name}"
    raise SpecError(f"state_dict key {key!r} has no timm name for this architecture "
                    f"(stage block types {kinds})")


def _source(value: object) -> str:
    """A keyword value as Python source (a builtin such as ``int`` by its name)."""
    return value.__name__ if isinstance(value, type) else repr(value)


def timm_snippet(spec: ArchSpec, checkpoint: str, *, resolution: int | None = None) -> str:
    """Python source that builds timm's ``EfficientNet`` for ``spec`` and loads
    ``checkpoint`` (a safetensors file of :func:`timm_state_dict`) with ``strict=True``."""
    rows = "\n".join(f"    {row!r}," for row in to_timm(spec))
    kwargs = "".join(f"    {key}={_source(value)},\n" for key, value in timm_kwargs(spec).items())
    size = f"{resolution} x {resolution}, " if resolution else ""
    return (
        f"# {encode(spec)}\n"
        "from functools import partial\n\n"
        "from safetensors.torch import load_file\n"
        "from timm.models._efficientnet_builder import decode_arch_def\n"
        "from timm.models.efficientnet import EfficientNet\n"
        "from torch import nn\n\n"
        f"arch_def = [\n{rows}\n]\n"
        "model = EfficientNet(\n"
        "    block_args=decode_arch_def(arch_def),\n"
        f"{kwargs}"
        "    act_layer=nn.SiLU,\n"
        "    norm_layer=partial(nn.BatchNorm2d, eps=1e-3),\n"
        ")\n"
        f"model.load_state_dict(load_file({checkpoint!r}), strict=True)\n"
        "model.eval()\n"
        f"# input: float RGB images, NCHW, {size}normalized as (pixel - 128) / 128\n"
    )


TIMM_LAYERS: dict[str, object] = {
    "round_chs_fn": "builtins.int",
    "act_layer": "torch.nn.SiLU",
    "norm_layer": "torch.nn.BatchNorm2d",
    "norm_kwargs": {"eps": 1e-3},
}
"""The callables timm's ``EfficientNet`` needs besides its plain keyword arguments, by import
path (``norm_kwargs``: the keyword arguments of ``norm_layer``)."""


def checkpoint_metadata(spec: ArchSpec) -> dict[str, str]:
    """String metadata stored in the safetensors header: enough to rebuild the model.

    ``timm_arch_def`` (JSON) is the ``arch_def`` to decode; ``timm_kwargs`` (JSON) holds the
    keyword arguments that pass to ``EfficientNet`` as they are; ``timm_layers`` (JSON,
    :data:`TIMM_LAYERS`) the callables by import path: ``round_chs_fn``, the activation
    ``act_layer`` and the norm ``norm_layer`` with its ``norm_kwargs``."""
    kwargs = {k: v for k, v in timm_kwargs(spec).items() if not callable(v)}
    return {"format": "pt", "arch": encode(spec), "timm_arch_def": json.dumps(to_timm(spec)),
            "timm_kwargs": json.dumps(kwargs), "timm_layers": json.dumps(TIMM_LAYERS)}


__all__ = ["BLOCK_MODULES", "TIMM_LAYERS", "TOP_MODULES", "block_types", "checkpoint_metadata",
           "timm_snippet", "timm_state_dict"]
