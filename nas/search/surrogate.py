"""A surrogate objective: a deterministic, cheap function of the spec that stands in for proxy
training and step timing (``nas-search --objective surrogate``, ``bench/strategy_quality.py``).

It lets the whole machinery (strategy, driver, executors, Ray Tune, leaderboard, resume) run
at full budget in minutes, and gives strategies a fixed, replayable problem to be compared on.
Nothing is trained or timed; the same spec always gets the same figures:

* **accuracy**: ``0.72 + 0.12 * (1 - sqrt(MACs_ref / MACs))`` (bigger networks are more
  accurate, with diminishing returns, so the reward's cost terms put the optimum near the
  reference's size) plus a fixed score per (decision, choice) and two pairwise interactions
  (``s4.block x s5.block``, ``s2.kernel x s3.expansion``, where the space has them), all drawn
  once from ``problem_seed`` (Gaussian, sd 0.006 and 0.015); clipped to [0, 1].
* **step time** (ms): per stage, MACs at a cost per MAC 2.5x higher for MBConv (depthwise
  convolutions are memory-bound on accelerators) than for Fused-MBConv, plus activation
  traffic and a fixed per-layer overhead (``search_space.cost.stage_costs``):
  ``sum(MACs * k) / 2e9 + sum(activations) / 4e7 + 0.05 * blocks``.
* **params**: ``search_space.cost.count_params``.

MACs and activations are taken at ``resolution`` (``nas-search``: the timing resolution);
``MACs_ref`` is the reference model's. Accuracy needs the spec's decisions, so it is defined
for specs of ``space``; step time and params for any spec (the reference need not be in the
space).
"""

from __future__ import annotations

import math
import random

from search_space.cost import count_macs, count_params, stage_costs
from search_space.sampling import decisions, to_choices
from search_space.space import SearchSpace
from search_space.spec import FUSED, ArchSpec

BASE_ACCURACY = 0.72
SIZE_GAIN = 0.12
CHOICE_SD = 0.006
PAIR_SD = 0.015
MBCONV_COST = 2.5
"""Cost per MAC of an MBConv stage relative to a Fused-MBConv one."""
PAIRS: tuple[tuple[str, tuple[object, ...], str, tuple[object, ...]], ...] = (
    ("s4.block", ("fused", "mbconv"), "s5.block", ("fused", "mbconv")),
    ("s2.kernel", (3, 5), "s3.expansion", (1, 4, 6)),
)


class Surrogate:
    """The surrogate objective of one space, reference and resolution (see module docstring).

    Plain data once built (picklable): sent to every worker of a run with the run's context.
    """

    def __init__(self, space: SearchSpace, reference: ArchSpec, resolution: int,
                 problem_seed: int = 0) -> None:
        rng = random.Random(problem_seed)
        self.space = space
        self.resolution = resolution
        self.problem_seed = problem_seed
        self.scores: dict[tuple[str, object], float] = {
            (d.name, c): rng.gauss(0.0, CHOICE_SD) for d in decisions(space) for c in d.choices}
        self.pairs: dict[tuple[str, object, str, object], float] = {
            (a, va, b, vb): rng.gauss(0.0, PAIR_SD)
            for a, a_values, b, b_values in PAIRS for va in a_values for vb in b_values}
        self.ref_macs = count_macs(reference, resolution)

    def step_time_ms(self, spec: ArchSpec) -> float:
        costs = stage_costs(spec, self.resolution)
        per_mac = [1.0] + [1.0 if s.block == FUSED else MBCONV_COST for s in spec.stages] \
            + [1.0, 1.0]
        ms = sum(c.macs * k for c, k in zip(costs, per_mac)) / 2e9
        ms += sum(c.activations for c in costs) / 4e7
        return ms + 0.05 * spec.num_blocks

    def accuracy(self, spec: ArchSpec) -> float:
        choices = to_choices(self.space, spec)
        macs = count_macs(spec, self.resolution)
        acc = BASE_ACCURACY + SIZE_GAIN * (1.0 - math.sqrt(self.ref_macs / macs))
        acc += sum(self.scores.get((name, value), 0.0) for name, value in choices.items())
        for (a, va, b, vb), score in self.pairs.items():
            if choices.get(a) == va and choices.get(b) == vb:
                acc += score
        return min(1.0, max(0.0, acc))

    def __call__(self, spec: ArchSpec) -> tuple[float, float, int]:
        """``(accuracy, step time in ms, params)`` of ``spec``."""
        return self.accuracy(spec), self.step_time_ms(spec), count_params(spec)

    def describe(self) -> dict[str, object]:
        """What defines this objective, for the run's record."""
        return {"function": "nas.search.surrogate.Surrogate", "problem_seed": self.problem_seed,
                "resolution": self.resolution, "space": self.space.name}


__all__ = ["Surrogate"]
