"""Build a PyTorch network from an ``ArchSpec``.

``build_model(spec)`` gives stem (3x3 stride-2 ConvBnAct) -> stages (``nn.Sequential`` of
``nn.Sequential`` of blocks) -> head (1x1 ConvBnAct) -> global average pool -> flatten ->
dropout -> linear classifier with bias. Its parameter count equals
``search_space.cost.count_params(spec)`` exactly.

Stochastic depth follows the official schedule: block ``i`` (0-based over the whole network)
of ``N`` drops its residual branch with probability ``drop_path * i / N``; blocks without a
residual have none. Initialisation follows the official code (and torchvision): conv weights
Kaiming normal with fan-out, linear weights uniform in ``+-1/sqrt(out_features)``, biases 0.

The model takes float NCHW images in either memory format; nothing in it reshapes in a way
that breaks ``torch.channels_last``. To count parameters of a big spec without allocating,
build it under ``with torch.device("meta"):``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from search_space.blocks import ConvBnAct, FusedMBConv, MBConv
from search_space.checks import is_int
from search_space.errors import SpecError
from search_space.spec import FUSED, ArchSpec, BlockSpec

_IMAGE_CHANNELS = 3


class EfficientNet(nn.Module):
    """Stem, stages of blocks, head and classifier (see the module docstring)."""

    def __init__(
        self,
        stem: nn.Module,
        blocks: nn.Sequential,
        head: nn.Module,
        head_channels: int,
        num_classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = blocks
        self.head = head
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(head_channels, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map after the head conv, before pooling."""
        return self.head(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.pool(self.forward_features(x)))
        return self.classifier(self.dropout(x))


def drop_path_rate(index: int, num_blocks: int, drop_path: float) -> float:
    """Official stochastic-depth rate of block ``index`` (0-based) out of ``num_blocks``."""
    return drop_path * index / num_blocks


def make_block(block: BlockSpec, drop_path: float = 0.0) -> nn.Module:
    """The module of one resolved block, with its own drop-path rate."""
    cls = FusedMBConv if block.block == FUSED else MBConv
    return cls(
        in_channels=block.in_channels,
        out_channels=block.out_channels,
        kernel=block.kernel,
        stride=block.stride,
        expansion=block.expansion,
        se_channels=block.se_channels,
        drop_path=drop_path,
    )


def build_model(
    spec: ArchSpec,
    num_classes: int | None = None,
    dropout: float = 0.2,
    drop_path: float = 0.2,
) -> nn.Module:
    """Build the network of ``spec``; ``num_classes`` overrides ``spec.num_classes``."""
    classes = spec.num_classes if num_classes is None else num_classes
    if not is_int(classes) or classes < 1:
        raise SpecError(f"num_classes {classes!r} must be an integer >= 1")
    for name, value in (("dropout", dropout), ("drop_path", drop_path)):
        if not 0.0 <= value < 1.0:
            raise SpecError(f"{name} {value!r} must be in [0, 1)")
    n = spec.num_blocks
    stages: list[list[nn.Module]] = [[] for _ in spec.stages]
    stage_of = [i for i, stage in enumerate(spec.stages) for _ in range(stage.layers)]
    for block in spec.blocks():
        rate = drop_path_rate(block.index, n, drop_path)
        stages[stage_of[block.index]].append(make_block(block, rate))
    model = EfficientNet(
        stem=ConvBnAct(_IMAGE_CHANNELS, spec.stem_channels, 3, stride=2),
        blocks=nn.Sequential(*(nn.Sequential(*blocks) for blocks in stages)),
        head=ConvBnAct(spec.stages[-1].out_channels, spec.head_channels, 1),
        head_channels=spec.head_channels,
        num_classes=classes,
        dropout=dropout,
    )
    init_weights(model)
    return model


@torch.no_grad()
def init_weights(model: nn.Module) -> None:
    """Official initialisation (conv: Kaiming normal fan-out; linear: U(+-1/sqrt(out)))."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def count_model_params(model: nn.Module) -> int:
    """Number of parameters of ``model`` (buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters())
