"""Architecture specs as frozen data.

A network is a stem (3x3 stride-2 conv), a sequence of stages and a head (1x1 conv, pooling,
classifier). A stage repeats one block type ``layers`` times; only its first block uses the
stage's stride and the previous stage's width, the others use stride 1 and ``in == out``.

Block semantics follow the official EfficientNetV2 code:

* ``fused`` (Fused-MBConv): expansion 1 is a single k x k conv in->out (BN, SiLU), with no
  1x1 projection; expansion e > 1 is a k x k conv in->in*e (BN, SiLU), optional SE, and a
  1x1 projection (BN, no activation). SE on a fused e1 block gates the block input before
  its single conv (as the official ``FusedMBConvBlock`` does); no official model uses it.
* ``mbconv`` (MBConv): a 1x1 expand conv in->in*e (absent when e == 1), a k x k depthwise
  conv, optional SE, and a 1x1 projection (BN, no activation).
* SE reduces to ``max(1, int(in * se_ratio))`` channels, from the block *input* channels.
* A block has a residual connection iff its stride is 1 and ``in == out``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from search_space.checks import is_int, is_number
from search_space.errors import SpecError

FUSED = "fused"
MBCONV = "mbconv"
BLOCK_TYPES: tuple[str, ...] = (FUSED, MBCONV)
STRIDES: tuple[int, ...] = (1, 2)


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage: ``layers`` blocks of one type. ``stride`` applies to the first block only."""

    block: str
    layers: int
    kernel: int
    expansion: int
    out_channels: int
    stride: int
    se_ratio: float = 0.0

    def __post_init__(self) -> None:
        if is_number(self.se_ratio):
            object.__setattr__(self, "se_ratio", float(self.se_ratio))
        problem = stage_problem(self)
        if problem:
            raise SpecError(problem)


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """One resolved block of a network, with its real input width and stride."""

    block: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    expansion: int
    se_ratio: float
    index: int
    """0-based position among all blocks of the network (drives the drop-path schedule)."""

    @property
    def mid_channels(self) -> int:
        return self.in_channels * self.expansion

    @property
    def se_channels(self) -> int:
        """SE reduce width, from the block input channels (official rule); 0 without SE."""
        if self.se_ratio <= 0:
            return 0
        return max(1, int(self.in_channels * self.se_ratio))

    @property
    def has_residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclass(frozen=True, slots=True)
class ArchSpec:
    """A whole network: stem width, stages, head width and number of classes."""

    stem_channels: int
    stages: tuple[StageSpec, ...]
    head_channels: int = 1280
    num_classes: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.stages, tuple):
            raise SpecError(f"stages must be a tuple of StageSpec, got {type(self.stages).__name__}")
        if not self.stages:
            raise SpecError("a spec needs at least one stage")
        for i, stage in enumerate(self.stages, start=1):
            if not isinstance(stage, StageSpec):
                raise SpecError(f"stage {i}: expected a StageSpec, got {type(stage).__name__}")
        for name in ("stem_channels", "head_channels", "num_classes"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise SpecError(f"{name} {value!r} must be an integer >= 1")

    @property
    def num_blocks(self) -> int:
        return sum(stage.layers for stage in self.stages)

    def stage_in_channels(self) -> tuple[int, ...]:
        """Input width of each stage's first block."""
        widths = (self.stem_channels,) + tuple(s.out_channels for s in self.stages)
        return widths[:-1]

    def blocks(self) -> Iterator[BlockSpec]:
        """Every block of the network in order, with resolved widths and strides."""
        index = 0
        for stage, cin in zip(self.stages, self.stage_in_channels()):
            for j in range(stage.layers):
                yield BlockSpec(
                    block=stage.block,
                    in_channels=cin if j == 0 else stage.out_channels,
                    out_channels=stage.out_channels,
                    kernel=stage.kernel,
                    stride=stage.stride if j == 0 else 1,
                    expansion=stage.expansion,
                    se_ratio=stage.se_ratio,
                    index=index,
                )
                index += 1

    def total_stride(self) -> int:
        stride = 2
        for stage in self.stages:
            stride *= stage.stride
        return stride


def stage_problem(stage: StageSpec) -> str | None:
    """Why a stage is invalid, phrased without the stage number; ``None`` if it is valid."""
    if stage.block not in BLOCK_TYPES:
        return f"unknown block type {stage.block!r}; expected one of {list(BLOCK_TYPES)}"
    for name in ("layers", "kernel", "expansion", "out_channels", "stride"):
        value = getattr(stage, name)
        if not is_int(value):
            return f"{name} {value!r} must be an integer"
    if stage.layers < 1:
        return f"layers {stage.layers} must be >= 1"
    if stage.kernel < 1 or stage.kernel % 2 == 0:
        return f"kernel {stage.kernel} must be an odd integer >= 1"
    if stage.expansion < 1:
        return f"expansion {stage.expansion} must be >= 1"
    if stage.out_channels < 1:
        return f"out_channels {stage.out_channels} must be >= 1"
    if stage.stride not in STRIDES:
        return f"stride {stage.stride} not in {STRIDES}"
    se = stage.se_ratio
    if not is_number(se) or not 0.0 <= se <= 1.0:
        return f"se_ratio {se!r} must be a number in [0, 1]"
    return None
