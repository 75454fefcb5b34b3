"""Width and depth rounding used to scale a block list by width/depth multipliers.

Two width rules exist in the EfficientNet family:

* EfficientNetV2 (``google/automl`` ``efficientnetv2/effnetv2_model.py::round_filters``):
  ``max(min_depth, int(c * m + divisor / 2) // divisor * divisor)`` and nothing else.
  This is ``round_limit=0.0`` here.
* EfficientNet V1 TF code, timm's ``make_divisible`` and torchvision's ``_make_divisible``
  add the "0.9 rule": if rounding down lost more than 10 % of ``c * m``, add one divisor.
  This is ``round_limit=0.9`` here.

The V2 base models (B0-B3) need the plain rule: with the 0.9 rule B3's first stage becomes
24 channels instead of 16 and the model 14,377,062 parameters instead of 14,358,406.

Depth uses ``int(math.ceil(r * m))`` in float64 with no epsilon: ``5 * 1.2`` and ``5 * 1.4``
are exactly 6.0 and 7.0, and the official counts depend on them not rounding up further.
"""

from __future__ import annotations

import math

from search_space.errors import SpecError


def round_filters(
    channels: int,
    multiplier: float,
    divisor: int = 8,
    min_depth: int | None = None,
    round_limit: float = 0.0,
) -> int:
    """Scale ``channels`` by ``multiplier`` and round to a multiple of ``divisor``.

    ``min_depth`` defaults to ``divisor``. ``round_limit`` > 0 enables the V1/timm rule that
    bumps the result by one ``divisor`` when it is below ``round_limit * channels * multiplier``.
    A falsy ``multiplier`` returns ``channels`` unchanged, as the official code does.
    """
    if divisor < 1:
        raise SpecError(f"divisor {divisor} must be >= 1")
    if not multiplier:
        return channels
    scaled = channels * multiplier
    floor = min_depth or divisor
    new = max(floor, int(scaled + divisor / 2) // divisor * divisor)
    if round_limit > 0 and new < round_limit * scaled:
        new += divisor
    return int(new)


def round_repeats(repeats: int, multiplier: float) -> int:
    """Scale a stage's block count: ``int(math.ceil(repeats * multiplier))`` (official rule)."""
    if not multiplier:
        return repeats
    return int(math.ceil(repeats * multiplier))
