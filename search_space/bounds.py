"""The cheapest spec of a search space, found without listing its specs.

A ``--max-params`` or ``--max-macs`` below it leaves no candidate, which is said before any
work starts.
"""

from __future__ import annotations

from collections.abc import Callable

from search_space.cost import count_macs, count_params
from search_space.space import SearchSpace, StageChoices
from search_space.spec import ArchSpec, StageSpec


def smallest_cost(space: SearchSpace, num_classes: int, resolution: int) -> tuple[int, int]:
    """The fewest parameters and the fewest MACs (at ``resolution``) of any spec of ``space``,
    each minimised on its own.

    A stage's cost depends only on its own choices: its input and output widths and its
    stride are fixed by the backbone. So for every number of kept stages, choosing each
    stage's cheapest option (fewest layers, then the best block, kernel, expansion and SE)
    one stage at a time gives the exact minimum.
    """
    metrics: tuple[Callable[[ArchSpec], int], ...] = (
        count_params, lambda spec: count_macs(spec, resolution))
    fewest = []
    for metric in metrics:
        totals = []
        for kept in range(space.min_stages, len(space.stages) + 1):
            options = [_stage_options(sc) for sc in space.stages[:kept]]
            stages = [choices[0] for choices in options]
            for i, choices in enumerate(options):
                stages[i] = min(choices, key=lambda st: metric(
                    _spec(space, stages, i, st, num_classes)))
            totals.append(metric(_spec(space, stages, 0, stages[0], num_classes)))
        fewest.append(min(totals))
    return fewest[0], fewest[1]


def _stage_options(sc: StageChoices) -> list[StageSpec]:
    low = sc.layers[0]  # more layers only add blocks
    return [StageSpec(block=block, layers=low, kernel=kernel, expansion=expansion,
                      out_channels=sc.out_channels, stride=sc.stride, se_ratio=se)
            for block in sc.blocks for kernel in sc.kernels for expansion in sc.expansions
            for se in sc.se_choices(block)]


def _spec(space: SearchSpace, stages: list[StageSpec], i: int, stage: StageSpec,
          num_classes: int) -> ArchSpec:
    chosen = (*stages[:i], stage, *stages[i + 1:])
    return ArchSpec(stem_channels=space.stem_channels, stages=chosen,
                    head_channels=space.head_channels, num_classes=num_classes)


__all__ = ["smallest_cost"]
