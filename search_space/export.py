"""Export an :class:`ArchSpec` to timm's ``arch_def`` block strings (no timm import needed).

Block mapping (one ``arch_def`` row per stage, ``ratio`` written with ``repr(float)``):

=============================  =====================================  ========================
spec stage                     timm string                            timm block
=============================  =====================================  ========================
``fused``, e == 1              ``cn_r{r}_k{k}_s{s}_e1_c{c}_skip``     ConvBnAct (single conv)
``fused``, e > 1               ``er_r{r}_k{k}_s{s}_e{e}_c{c}[_se..]`` EdgeResidual
``mbconv``, e > 1              ``ir_r{r}_k{k}_s{s}_e{e}_c{c}[_se..]`` InvertedResidual
``mbconv``, e == 1             ``ds_r{r}_k{k}_s{s}_e1_c{c}[_se..]``   DepthwiseSeparable
=============================  =====================================  ========================

``cn`` has a residual only with ``skip`` (and then only where stride is 1 and in == out), which
is exactly the official rule, so ``_skip`` is always written. timm's ``cn`` has no SE, so a
``fused`` e == 1 stage with SE cannot be exported. timm computes SE width as
``round(mid * se / e)`` = ``in * se``, the same as the official ``int(in * se)`` for the widths
of every preset.

Use with timm (not a dependency of this package)::

    from functools import partial
    from torch import nn
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.efficientnet import EfficientNet
    model = EfficientNet(block_args=decode_arch_def(to_timm(spec)), **timm_kwargs(spec),
                         act_layer=nn.SiLU, norm_layer=partial(nn.BatchNorm2d, eps=1e-3))

Channels in a spec are already resolved, so no width multiplier or ``round_chs_fn`` is
involved: timm's default rounding is a no-op for widths that are multiples of 8 (every
preset). timm always rounds a block's mid width to a multiple of 8, so a spec with other
widths builds with slightly different mid widths there.
"""

from __future__ import annotations

from typing import Any

from search_space.codec import format_ratio
from search_space.errors import SpecError
from search_space.spec import FUSED, ArchSpec, StageSpec


def to_timm(spec: ArchSpec) -> list[list[str]]:
    """timm ``arch_def`` of ``spec``: one single-string list per stage."""
    return [[_stage_string(stage, n)] for n, stage in enumerate(spec.stages, start=1)]


def _stage_string(stage: StageSpec, n: int) -> str:
    core = f"r{stage.layers}_k{stage.kernel}_s{stage.stride}_e{stage.expansion}_c{stage.out_channels}"
    se = f"_se{format_ratio(stage.se_ratio)}" if stage.se_ratio > 0 else ""
    if stage.block == FUSED:
        if stage.expansion == 1:
            if se:
                raise SpecError(
                    f"stage {n}: fused e1 with se_ratio {stage.se_ratio!r} is not expressible in "
                    "timm (its single-conv 'cn' block has no SE)"
                )
            return f"cn_{core}_skip"
        return f"er_{core}{se}"
    if stage.expansion == 1:
        return f"ds_{core}{se}"
    return f"ir_{core}{se}"


def timm_kwargs(spec: ArchSpec) -> dict[str, Any]:
    """Keyword arguments for timm's ``EfficientNet`` besides ``block_args``.

    ``fix_stem`` keeps timm from re-rounding the (already resolved) stem width. Also pass
    ``act_layer=nn.SiLU`` and BatchNorm with eps 1e-3 (the official value) yourself.
    """
    return {
        "stem_size": spec.stem_channels,
        "fix_stem": True,
        "num_features": spec.head_channels,
        "num_classes": spec.num_classes,
    }
