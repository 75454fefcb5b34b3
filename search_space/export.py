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
is exactly the official rule, so ``_skip`` is always written.

Use with timm (not a dependency of this package)::

    from functools import partial
    from torch import nn
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.efficientnet import EfficientNet
    model = EfficientNet(block_args=decode_arch_def(to_timm(spec)), **timm_kwargs(spec),
                         act_layer=nn.SiLU, norm_layer=partial(nn.BatchNorm2d, eps=1e-3))

This is timm's plain ``EfficientNet`` with symmetric padding (not the ``tf_*`` variants with
TF-SAME padding), which is what our models use.

What timm would change, and what this module does about it
-----------------------------------------------------------
timm (checked against timm 1.0.31) builds a spec's exact widths only where three rules agree:

1. **Stage widths.** timm passes every block's ``c`` (and the stem, unless ``fix_stem``)
   through ``round_chs_fn``, by default ``round_channels``: a multiple of 8 (with the 0.9 rule),
   so ``c18`` would become 24. :func:`timm_kwargs` therefore passes ``round_chs_fn=int``, which
   keeps every (already resolved) width as given, and ``fix_stem=True``.
2. **Mid widths.** ``InvertedResidual`` and ``EdgeResidual`` always size their expanded width
   as ``make_divisible(in * e)`` (a multiple of 8, at least 8); no argument changes that. A
   ``mbconv`` or ``fused`` stage with ``e > 1`` whose ``in * e`` is not a multiple of 8 (for
   any of its blocks: the first block's input is the previous stage's width, the others' is
   the stage's own) cannot be expressed, and :func:`to_timm` refuses it with a
   :class:`SpecError` naming the stage and the rule.
3. **SE widths.** timm reduces to ``round(mid * se / e)`` channels (``round(in * se)`` for
   ``ds``), the official rule is ``max(1, int(in * se))``. They agree whenever ``in * se`` is an
   integer (every preset and every spec of the shipped spaces); where they do not (``in = 30``,
   ``se = 0.25``: 8 against 7) :func:`to_timm` refuses the spec. timm's ``cn`` block has no SE
   at all, so a ``fused`` e1 stage with SE is refused too.

Everything :func:`to_timm` accepts builds in timm with exactly our parameter count, and with
our ``state_dict`` copied over in order, the same outputs.
"""

from __future__ import annotations

from typing import Any

from search_space.codec import format_ratio
from search_space.errors import SpecError
from search_space.rounding import round_filters
from search_space.spec import FUSED, ArchSpec, BlockSpec, StageSpec

TIMM_MID_DIVISOR = 8
"""timm's ``make_divisible`` divisor for the expanded width of ``ir`` and ``er`` blocks."""
_TIMM_ROUND_LIMIT = 0.9


def to_timm(spec: ArchSpec) -> list[list[str]]:
    """timm ``arch_def`` of ``spec``: one single-string list per stage.

    Raises :class:`SpecError` naming the first stage timm cannot build exactly (see the module
    docstring for the rules).
    """
    problem = timm_problem(spec)
    if problem:
        raise SpecError(problem)
    return [[_stage_string(stage)] for stage in spec.stages]


def timm_problem(spec: ArchSpec) -> str | None:
    """Why timm cannot build exactly ``spec`` (one line naming the stage and the rule), or
    ``None`` if it can."""
    stage_of = [n for n, stage in enumerate(spec.stages, start=1) for _ in range(stage.layers)]
    for block in spec.blocks():
        problem = _block_problem(block)
        if problem:
            return f"stage {stage_of[block.index]}: {problem}"
    return None


def _block_problem(block: BlockSpec) -> str | None:
    if block.block == FUSED and block.expansion == 1:
        if block.se_ratio > 0:
            return (f"fused e1 with se_ratio {block.se_ratio!r} is not expressible in timm "
                    "(its single-conv 'cn' block has no SE)")
        return None
    if block.expansion > 1:
        mid = block.mid_channels
        timm_mid = round_filters(mid, 1.0, TIMM_MID_DIVISOR, round_limit=_TIMM_ROUND_LIMIT)
        if timm_mid != mid:
            return (f"not expressible in timm: timm rounds a block's mid width to a multiple of "
                    f"{TIMM_MID_DIVISOR}, and in_channels {block.in_channels} x expansion "
                    f"{block.expansion} = {mid} would become {timm_mid}")
    if block.se_ratio > 0:
        # timm: rd_ratio = se / exp_ratio (exp_ratio 1.0 for ds), SE input = mid (in for ds).
        timm_se = round(block.mid_channels * (block.se_ratio / float(block.expansion)))
        if timm_se != block.se_channels:
            return (f"not expressible in timm: timm's SE width round({block.mid_channels} * "
                    f"{format_ratio(block.se_ratio)} / {block.expansion}) = {timm_se} differs "
                    f"from this spec's max(1, int({block.in_channels} * "
                    f"{format_ratio(block.se_ratio)})) = {block.se_channels}")
    return None


def _stage_string(stage: StageSpec) -> str:
    core = f"r{stage.layers}_k{stage.kernel}_s{stage.stride}_e{stage.expansion}_c{stage.out_channels}"
    se = f"_se{format_ratio(stage.se_ratio)}" if stage.se_ratio > 0 else ""
    if stage.block == FUSED:
        return f"cn_{core}_skip" if stage.expansion == 1 else f"er_{core}{se}"
    if stage.expansion == 1:
        return f"ds_{core}{se}"
    return f"ir_{core}{se}"


def timm_kwargs(spec: ArchSpec) -> dict[str, Any]:
    """Keyword arguments for timm's ``EfficientNet`` besides ``block_args``.

    ``round_chs_fn=int`` and ``fix_stem`` keep timm from re-rounding the (already resolved)
    stage and stem widths. Also pass ``act_layer=nn.SiLU`` and BatchNorm with eps 1e-3 (the
    official value) yourself.
    """
    return {
        "stem_size": spec.stem_channels,
        "fix_stem": True,
        "round_chs_fn": int,
        "num_features": spec.head_channels,
        "num_classes": spec.num_classes,
    }
