"""A search space as frozen data: ``StageChoices`` and ``SearchSpace``.

A space is stage-based and factorized (the paper's section 3.3): channel widths and strides are
fixed by a backbone, and each stage independently chooses its block type, number of layers,
kernel size, expansion ratio and SE ratio. SE choices are kept per block type because the
official models put SE 0.25 on MBConv and none on Fused-MBConv. Trailing stages may be marked
``optional``: a spec may stop before them (EfficientNetV2 dropped the backbone's last stage).

Decisions, sampling, membership, mutation and size live in ``search_space.sampling``; reading
and writing space files, and the shipped spaces, in ``search_space.space_files``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from search_space.checks import is_int
from search_space.errors import SpaceError
from search_space.spec import BLOCK_TYPES, FUSED, MBCONV, STRIDES

DEFAULT_BLOCKS: tuple[str, ...] = (FUSED, MBCONV)
DEFAULT_KERNELS: tuple[int, ...] = (3, 5)
DEFAULT_EXPANSIONS: tuple[int, ...] = (1, 4, 6)
DEFAULT_SE_FUSED: tuple[float, ...] = (0.0,)
DEFAULT_SE_MBCONV: tuple[float, ...] = (0.25,)


@dataclass(frozen=True, slots=True)
class StageChoices:
    """The choices of one stage. ``out_channels`` and ``stride`` are fixed by the backbone.

    ``layers`` is an inclusive ``(min, max)`` range. ``se_fused`` / ``se_mbconv`` are the SE
    ratios allowed for each block type (0.0 means no SE). Lists are accepted and stored as
    tuples; integer SE ratios are stored as floats.
    """

    out_channels: int
    stride: int
    blocks: tuple[str, ...]
    layers: tuple[int, int]
    kernels: tuple[int, ...] = DEFAULT_KERNELS
    expansions: tuple[int, ...] = DEFAULT_EXPANSIONS
    se_fused: tuple[float, ...] = DEFAULT_SE_FUSED
    se_mbconv: tuple[float, ...] = DEFAULT_SE_MBCONV
    optional: bool = False

    def __post_init__(self) -> None:
        for name in ("blocks", "layers", "kernels", "expansions", "se_fused", "se_mbconv"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        for name in ("se_fused", "se_mbconv"):
            value = getattr(self, name)
            if isinstance(value, tuple):
                object.__setattr__(self, name, tuple(_as_float(v) for v in value))
        problem = choices_problem(self)
        if problem:
            raise SpaceError(problem)

    def se_choices(self, block: str) -> tuple[float, ...]:
        """The SE ratios allowed for ``block`` in this stage."""
        return self.se_fused if block == FUSED else self.se_mbconv

    @property
    def layer_range(self) -> range:
        return range(self.layers[0], self.layers[1] + 1)

    def size(self) -> int:
        """Number of distinct ``StageSpec`` values this stage allows."""
        per_block = len(self.layer_range) * len(self.kernels) * len(self.expansions)
        return sum(per_block * len(self.se_choices(b)) for b in self.blocks)


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """A whole space: fixed stem and head widths, and one ``StageChoices`` per stage."""

    name: str
    description: str
    stem_channels: int
    head_channels: int
    stages: tuple[StageChoices, ...]
    reference: str | None = None
    """The model that normalizes step time and parameters in a search (a preset name or an
    architecture string); by convention the backbone the space was built around."""

    def __post_init__(self) -> None:
        if self.reference is not None and not isinstance(self.reference, str):
            raise SpaceError(f"reference {self.reference!r} must be a preset name or an architecture string")
        if isinstance(self.stages, list):
            object.__setattr__(self, "stages", tuple(self.stages))
        problem = space_problem(self)
        if problem:
            raise SpaceError(problem)

    @property
    def min_stages(self) -> int:
        """Number of required (non-optional) stages: the fewest stages a spec may have."""
        return sum(1 for s in self.stages if not s.optional)


def _as_float(value: object) -> object:
    # Only normalise genuine ints; anything else is left for choices_problem to reject.
    return float(value) if is_int(value) else value


def _tuple_problem(
    name: str, value: object, item_ok: Callable[[Any], bool], rule: str
) -> str | None:
    if not isinstance(value, tuple) or not value:
        return f"{name} {value!r} must be a non-empty list"
    for item in value:
        if not item_ok(item):
            return f"{name}: {item!r} {rule}"
    if len(set(value)) != len(value):
        return f"{name} {list(value)!r} has duplicates"
    return None


def choices_problem(stage: StageChoices) -> str | None:
    """Why a ``StageChoices`` is invalid, without the stage number; ``None`` if valid."""
    if not is_int(stage.out_channels) or stage.out_channels < 1:
        return f"out_channels {stage.out_channels!r} must be an integer >= 1"
    if not is_int(stage.stride) or stage.stride not in STRIDES:
        return f"stride {stage.stride!r} not in {STRIDES}"
    problem = _tuple_problem(
        "blocks", stage.blocks, lambda b: b in BLOCK_TYPES, f"is not a block type {list(BLOCK_TYPES)}"
    )
    if problem:
        return problem
    lay = stage.layers
    if not (isinstance(lay, tuple) and len(lay) == 2 and all(is_int(v) for v in lay)):
        return f"layers {lay!r} must be a pair of integers [min, max]"
    if not 1 <= lay[0] <= lay[1]:
        return f"layers {list(lay)} must satisfy 1 <= min <= max"
    problem = _tuple_problem(
        "kernels", stage.kernels, lambda k: is_int(k) and k >= 1 and k % 2 == 1,
        "must be an odd integer >= 1",
    )
    if problem:
        return problem
    problem = _tuple_problem(
        "expansions", stage.expansions, lambda e: is_int(e) and e >= 1, "must be an integer >= 1"
    )
    if problem:
        return problem
    for name in ("se_fused", "se_mbconv"):
        problem = _tuple_problem(
            name, getattr(stage, name),
            lambda r: isinstance(r, float) and 0.0 <= r <= 1.0, "must be a number in [0, 1]",
        )
        if problem:
            return problem
    if not isinstance(stage.optional, bool):
        return f"optional {stage.optional!r} must be true or false"
    return None


def space_problem(space: SearchSpace) -> str | None:
    """Why a ``SearchSpace`` is invalid; ``None`` if valid."""
    if not isinstance(space.name, str) or not space.name:
        return f"name {space.name!r} must be a non-empty string"
    if not isinstance(space.description, str):
        return f"description {space.description!r} must be a string"
    for name in ("stem_channels", "head_channels"):
        value = getattr(space, name)
        if not is_int(value) or value < 1:
            return f"{name} {value!r} must be an integer >= 1"
    if not isinstance(space.stages, tuple) or not space.stages:
        return "stages must be a non-empty list"
    for i, stage in enumerate(space.stages, start=1):
        if not isinstance(stage, StageChoices):
            return f"stage {i}: expected a StageChoices, got {type(stage).__name__}"
    if space.stages[0].optional:
        # A spec needs at least one stage, and optional stages must be trailing.
        return "stage 1: optional is not allowed; the first stage is always kept"
    for i in range(1, len(space.stages)):
        if space.stages[i - 1].optional and not space.stages[i].optional:
            return (
                f"stage {i}: optional but stage {i + 1} is not; "
                "only trailing stages may be optional"
            )
    return None
