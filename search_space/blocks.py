"""The building blocks of an EfficientNet(V2) network, as small ``nn.Module``s.

Semantics follow the official ``google/automl`` ``efficientnetv2/effnetv2_model.py``
(see ``search_space.spec``): bias-free convs each followed by BatchNorm (eps 1e-3, PyTorch
momentum 0.1 = Keras 0.9), SiLU everywhere, SE with biased 1x1 convs reducing from the block
*input* width, and a residual (with drop path) iff stride 1 and ``in == out``.

Padding is symmetric ``k // 2``: for odd kernels it gives the same output shapes as TF SAME
(``ceil(H / stride)``), which is all the cost model relies on. Optional parts are
``nn.Identity`` so that every ``forward`` is straight-line code.
"""

from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.1


class ConvBnAct(nn.Module):
    """Conv (no bias) + BatchNorm + SiLU (or no activation when ``act`` is false)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel, stride=stride, padding=kernel // 2,
            groups=groups, bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Global mean -> 1x1 conv (bias) -> SiLU -> 1x1 conv (bias) -> sigmoid gate on the input."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = nn.SiLU()
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        s = self.expand(self.act(self.reduce(s)))
        return x * torch.sigmoid(s)


class DropPath(nn.Module):
    """Per-sample stochastic depth on a residual branch, active only in training.

    Kept samples are scaled by ``1 / (1 - p)``. It draws from torch's global generator, which
    the training loop seeds.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path rate {p} must be in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p:.4f}"


def _se_or_identity(channels: int, reduced: int) -> nn.Module:
    return SqueezeExcite(channels, reduced) if reduced > 0 else nn.Identity()


def _drop_path_or_identity(residual: bool, rate: float) -> nn.Module:
    return DropPath(rate) if residual and rate > 0 else nn.Identity()


class FusedMBConv(nn.Module):
    """Fused-MBConv: k x k conv in->in*e (+ SE) + 1x1 projection; for e == 1 a single k x k conv.

    With ``expansion == 1`` the block is one k x k conv in->out + BN + SiLU; an SE, if asked
    for, gates the block input before that conv (official ``FusedMBConvBlock`` order).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        expansion: int,
        se_channels: int = 0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.has_residual = stride == 1 and in_channels == out_channels
        self.se_in: nn.Module
        self.se: nn.Module
        self.project: nn.Module
        if expansion == 1:
            self.se_in = _se_or_identity(in_channels, se_channels)
            self.conv = ConvBnAct(in_channels, out_channels, kernel, stride)
            self.se = nn.Identity()
            self.project = nn.Identity()
        else:
            mid = in_channels * expansion
            self.se_in = nn.Identity()
            self.conv = ConvBnAct(in_channels, mid, kernel, stride)
            self.se = _se_or_identity(mid, se_channels)
            self.project = ConvBnAct(mid, out_channels, 1, act=False)
        self.drop_path = _drop_path_or_identity(self.has_residual, drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.conv(self.se_in(x))))
        if self.has_residual:
            out = self.drop_path(out) + x
        return out


class MBConv(nn.Module):
    """MBConv: 1x1 expand (absent for e == 1) + k x k depthwise + SE + 1x1 projection."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        expansion: int,
        se_channels: int = 0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.has_residual = stride == 1 and in_channels == out_channels
        mid = in_channels * expansion
        self.expand = ConvBnAct(in_channels, mid, 1) if expansion != 1 else nn.Identity()
        self.dw = ConvBnAct(mid, mid, kernel, stride, groups=mid)
        self.se = _se_or_identity(mid, se_channels)
        self.project = ConvBnAct(mid, out_channels, 1, act=False)
        self.drop_path = _drop_path_or_identity(self.has_residual, drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.dw(self.expand(x))))
        if self.has_residual:
            out = self.drop_path(out) + x
        return out
