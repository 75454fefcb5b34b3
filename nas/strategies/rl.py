"""REINFORCE over the factorized decisions (the MnasNet controller, without the RNN).

The policy is one independent categorical distribution per decision (``s3.kernel``,
``s3.layers``, ...), held as logits in numpy. A proposal draws every decision from its
distribution; only the *active* decisions (those that shaped the spec; a dropped stage's
kernel did not) are credited when the result comes back:

    advantage = reward - baseline,   baseline <- decay * baseline + (1 - decay) * reward
    logits[d] += step(advantage * (onehot(choice_d) - softmax(logits[d])))

with an Adam step by default (rewards differ by a few percent between candidates, and Adam's
per-parameter scaling makes ``lr`` meaningful without tuning it to the reward's scale) or a
plain SGD step. An optional entropy bonus slows premature collapse. Failed candidates are
skipped by default, or scored ``failure_reward``. The proposal carries its own active
choices, so asks and tells may interleave freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nas.strategies.base import BaseStrategy, Observation, Proposal, StrategyError
from search_space.sampling import decisions, from_choices, to_choices
from search_space.space import SearchSpace
from search_space.spec import ArchSpec

CONTROLLER_OPTIMIZERS = ("adam", "sgd")
"""Optimizers of the REINFORCE controller (not of candidate training)."""


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()


def _index(choices: tuple[Any, ...], value: Any) -> int | None:
    for i, choice in enumerate(choices):
        # bool is an int subclass: True must not match 1.
        if isinstance(choice, bool) or isinstance(value, bool):
            if choice is value:
                return i
        elif choice == value:
            return i
    return None


class Reinforce(BaseStrategy):
    """Policy-gradient controller; options ``lr`` (0.1), ``optimizer`` (``adam``|``sgd``),
    ``baseline_decay`` (0.95), ``entropy_weight`` (0.0), ``failure_reward`` (None = skip)."""

    name = "rl"
    OPTIONS = ("lr", "optimizer", "baseline_decay", "entropy_weight", "failure_reward")

    def __init__(self, space: SearchSpace, *, seed: int, num_classes: int = 1000,
                 allow_repeats: bool = False, lr: float = 0.1, optimizer: str = "adam",
                 baseline_decay: float = 0.95, entropy_weight: float = 0.0,
                 failure_reward: float | None = None, **kwargs: Any) -> None:
        super().__init__(space, seed=seed, num_classes=num_classes,
                         allow_repeats=allow_repeats, **kwargs)
        if optimizer not in CONTROLLER_OPTIMIZERS:
            raise StrategyError(f"optimizer {optimizer!r} not in {CONTROLLER_OPTIMIZERS}")
        if not lr > 0:
            raise StrategyError(f"lr {lr!r} must be > 0")
        if not 0 <= baseline_decay < 1:
            raise StrategyError(f"baseline_decay {baseline_decay!r} must be in [0, 1)")
        if not entropy_weight >= 0:
            raise StrategyError(f"entropy_weight {entropy_weight!r} must be >= 0")
        self.lr = float(lr)
        self.optimizer = optimizer
        self.baseline_decay = float(baseline_decay)
        self.entropy_weight = float(entropy_weight)
        self.failure_reward = None if failure_reward is None else float(failure_reward)
        self.decisions = {d.name: d for d in decisions(space)}
        self.logits = {name: np.zeros(len(d.choices)) for name, d in self.decisions.items()}
        self.baseline: float | None = None
        self.updates = 0
        self.np_rng = np.random.default_rng(seed)
        # Adam moments, typed as arrays of any shape (numpy 2.2's stubs give 1-D zeros a 1-D type)
        self._m: dict[str, np.ndarray] = {n: np.zeros_like(v) for n, v in self.logits.items()}
        self._v: dict[str, np.ndarray] = {n: np.zeros_like(v) for n, v in self.logits.items()}
        self._t = dict.fromkeys(self.logits, 0)  # Adam steps per decision (some are inactive)

    def probabilities(self) -> dict[str, dict[Any, float]]:
        """The current policy: for each decision, the probability of each choice."""
        return {name: dict(zip(d.choices, _softmax(self.logits[name]).tolist()))
                for name, d in self.decisions.items()}

    def _propose(self, number: int) -> tuple[ArchSpec, Mapping[str, Any]]:
        drawn = {}
        for name, d in self.decisions.items():
            drawn[name] = d.choices[int(self.np_rng.choice(len(d.choices),
                                                           p=_softmax(self.logits[name])))]
        spec = from_choices(self.space, drawn, self.num_classes)
        return spec, to_choices(self.space, spec)

    def _observe(self, proposal: Proposal, observation: Observation) -> None:
        if observation.status == "ok":
            assert observation.reward is not None
            value = float(observation.reward)
        elif self.failure_reward is not None:
            value = self.failure_reward
        else:
            return
        if self.baseline is None:
            self.baseline = value
        advantage = value - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * value
        self.updates += 1
        for name, choice in proposal.choices.items():
            decision = self.decisions.get(name)
            index = None if decision is None else _index(decision.choices, choice)
            if index is None:
                continue  # a decision this space does not have (or a value it does not allow)
            probs = _softmax(self.logits[name])
            grad = -probs * advantage
            grad[index] += advantage
            if self.entropy_weight:
                log_p = np.log(probs)
                entropy = -float(np.sum(probs * log_p))
                grad -= self.entropy_weight * probs * (log_p + entropy)
            self._step(name, grad)

    def _step(self, name: str, grad: np.ndarray) -> None:
        """Gradient *ascent* on one decision's logits."""
        if self.optimizer == "sgd":
            self.logits[name] += self.lr * grad
            return
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self._t[name] += 1
        t = self._t[name]
        self._m[name] = beta1 * self._m[name] + (1 - beta1) * grad
        self._v[name] = beta2 * self._v[name] + (1 - beta2) * grad * grad
        m_hat = self._m[name] / (1 - beta1 ** t)
        v_hat = self._v[name] / (1 - beta2 ** t)
        self.logits[name] += self.lr * m_hat / (np.sqrt(v_hat) + eps)
