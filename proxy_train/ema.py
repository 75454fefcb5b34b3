"""An exponential moving average of a model's weights, as the official training keeps one.

The official code uses ``tf.train.ExponentialMovingAverage(0.9999, num_updates=global_step)``
over every variable, BatchNorm's moving mean and variance included, and evaluates with the
averaged weights. With ``num_updates`` TF does not use the decay as given from the first step:
update ``t`` (0-based) uses

    decay_t = min(decay, (1 + t) / (10 + t))

so the average follows the weights closely early on and settles to ``decay`` only after
``~10 / (1 - decay)`` steps. This warm-up is what makes an EMA usable in runs of a few epochs
(with a fixed 0.9999 a run of 2,000 steps would still be 80% its random initialisation); it is
the rule used here, for every decay.

Integer buffers (BatchNorm's ``num_batches_tracked``) are copied, not averaged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from proxy_train.errors import RecipeError


class ModelEma:
    """``ema = ModelEma(model, 0.9999)``; ``ema.update(model)`` after every optimizer step;
    ``ema.module`` is the averaged model (eval mode, no gradients)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise RecipeError(f"ema decay {decay!r} must be in (0, 1)")
        self.decay = float(decay)
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._float = [k for k, v in self.module.state_dict().items() if v.is_floating_point()]

    def current_decay(self) -> float:
        """The decay the next update uses (TF's ``num_updates`` warm-up)."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        source, target = model.state_dict(), self.module.state_dict()
        averaged = [target[k] for k in self._float]
        torch._foreach_lerp_(averaged, [source[k].detach() for k in self._float], 1.0 - decay)
        for key, value in target.items():
            if not value.is_floating_point():
                value.copy_(source[key])
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates,
                "weights": {k: v.detach().clone() for k, v in self.module.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["weights"], strict=True)


__all__ = ["ModelEma"]
