"""A zero-cost score of a network at initialization: MeCo (Jiang et al. 2023, "MeCo: Zero-Shot
NAS with One Data and Single Forward Pass via Minimum Eigenvalue of Correlation").

For the feature map of one image at every layer, reshaped to ``C x (H*W)`` (channels as
variables, spatial positions as samples), take the Pearson correlation matrix of the channels
(``C x C``) and its smallest eigenvalue; MeCo is the sum over the layers. A network whose
layers keep their channels less correlated, so better conditioned, scores higher. The proxy
computes it once per candidate, on the freshly initialized network, before its first step.

Why MeCo rather than ZiCo (Li et al. 2023, "ZiCo: Zero-shot NAS via inverse Coefficient of
Variation on Gradients"), the other candidate:
ZiCo needs gradients, a backward pass of at least two labelled batches and per-parameter
statistics over them; MeCo needs one forward pass and no labels, no gradients, no optimizer
state, so it cannot disturb the training that follows, and it costs about a third of one
training step plus small eigendecompositions (EfficientNetV2-B0, a batch of 32 at 32 px, one
CPU thread: 0.07 s, against 21.6 s for its ``Recipe.cpu_quick()`` proxy run). Whether it
ranks this space's candidates is what ``nas-validate`` measures (its ``meco_vs_long``).

Choices made here (the paper's reference code hooks every module):

* the layers are the convolutions: each ``nn.Conv2d``'s output counts once (hooking every
  module counts a map again after its BatchNorm, whose per-channel affine leaves the
  correlations unchanged at initialization, and after its activation);
* the image is the first of a small batch, and the network runs as it trains (BatchNorm
  normalizes with the batch's statistics), but without dropout and stochastic depth (no
  random draw: the training's random stream is untouched) and without changing anything (the
  BatchNorm running statistics are put back bit for bit);
* exact shortcuts, no approximation: a map with no more positions than channels
  (``H*W <= C``) has a singular correlation matrix (its rank is at most ``H*W - 1``), and a
  constant channel gets correlations of 0 (the reference code's rule for NaN), which makes
  the matrix singular too; both give a smallest eigenvalue of exactly 0 without an
  eigendecomposition. At proxy resolutions most deep layers are such maps, so the
  eigendecompositions left are of the small early layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def meco(model: nn.Module, images: torch.Tensor) -> float:
    """MeCo of ``model`` on the first of ``images`` (a float batch ``[N, 3, H, W]`` as the
    model takes it), with BatchNorm on the batch's statistics (see the module docstring).
    The model is left exactly as it was."""
    maps: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        maps.append(output[0].detach())

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles = [conv.register_forward_hook(keep) for conv in convs]
    try:
        with _as_at_the_first_step(model):
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return float(sum(min_correlation_eigenvalue(f) for f in maps))


def min_correlation_eigenvalue(feature_map: torch.Tensor) -> float:
    """The smallest eigenvalue of the channels' correlation matrix of one feature map
    ``[C, H, W]`` (exactly 0 when the matrix is singular: ``H*W <= C`` or a constant
    channel)."""
    x = feature_map.reshape(feature_map.shape[0], -1).double()
    channels, positions = x.shape
    x = x - x.mean(dim=1, keepdim=True)
    norms = x.norm(dim=1)
    if positions <= channels or bool((norms == 0).any()):
        return 0.0
    x = x / norms[:, None]
    return float(torch.linalg.eigvalsh(x @ x.T)[0])


@contextlib.contextmanager
def _as_at_the_first_step(model: nn.Module) -> Iterator[None]:
    """BatchNorm in training mode, every other module (dropout, stochastic depth) in eval
    mode; the modes and every buffer restored on exit."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.clone()) for b in model.buffers()]
    try:
        for module, _ in modes:
            module.training = isinstance(module, _BatchNorm)
        yield
    finally:
        for module, mode in modes:
            module.training = mode
        for buffer, saved in buffers:
            buffer.copy_(saved)


__all__ = ["meco", "min_correlation_eigenvalue"]
