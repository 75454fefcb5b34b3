"""Progressive learning with adaptive regularization (paper section 4, Algorithm 1).

Training is split into ``stages`` equal parts; image size and regularization (RandAugment
magnitude, mixup alpha, dropout) grow from their minimum in the first stage to their maximum
in the last. Two sources:

``paper`` (default): Algorithm 1 and Table 6. Stage ``i`` of ``M`` uses
``S_i = S_0 + (S_e - S_0) * i / (M - 1)`` (image size rounded to the nearest pixel), and the
same linear rule for every regularization, so stage 0 gets the minima and the last stage the
maxima. Table 6 (min -> max):

====  ==========  ===========  =========  ==========
      image size  RandAugment  mixup      dropout
====  ==========  ===========  =========  ==========
S     128 -> 300  5 -> 15      0 -> 0     0.1 -> 0.3
M     128 -> 380  5 -> 20      0 -> 0.2   0.1 -> 0.4
L     128 -> 380  5 -> 25      0 -> 0.4   0.1 -> 0.5
====  ==========  ===========  =========  ==========

``released``: what ``google/automl`` ``efficientnetv2/main.py`` actually runs. Size of stage
``i`` is ``int(ibase + (S_e - ibase) * (i + 1) / stages)`` with ``ibase = 128`` (so 128 itself
is never used), RandAugment ``linspace(5, ram, stages)``, mixup ``linspace(0, alpha,
stages)``, and dropout fixed at the model's value (the code builds a dropout list and then
deletes it). Values from ``efficientnetv2_params``: S 300 / 10 / 0 / 0.2, M 384 / 15 / 0.2 /
0.3, L and XL 384 / 20 / 0.5 / 0.4 (max size / ram / mixup / dropout).

Which row applies: the table rows describe the official family, so ``nas-scale`` uses them
for EfficientNetV2-S itself and for the M/L/XL targets derived from it; every other model
(another base, the targets derived from it, a budget-sized model) is interpolated as below.

Models without a row:

* **XL** (paper): L's regularization (the largest in Table 6, and what the released code gives
  XL too) with the maximum image size set to XL's own train size.
* **Any other model** (a searched base, a budget-scaled model): the maxima are interpolated
  linearly in ``log(params)`` between the S, M and L anchors (official parameter counts),
  clamped outside ``[S, L]``, and the maximum image size is the model's own train size.
  Minima are the shared ones (128 px, RandAugment 5, mixup 0, dropout 0.1; released: fixed
  dropout). Interpolated values are rounded to 3 decimals.

Epoch boundaries follow the released TF2 loop: stage ``i`` spans
``int(i / stages * epochs) .. int((i + 1) / stages * epochs)`` (350 epochs: 0-87, 87-175,
175-262, 262-350).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scaling.errors import ScalingError
from search_space.checks import is_int

SOURCES: tuple[str, ...] = ("paper", "released")
IBASE = 128
DEFAULT_EPOCHS = 350
DEFAULT_STAGES = 4


@dataclass(frozen=True, slots=True)
class ProgressiveRecipe:
    """Minimum (first stage) and maximum (last stage) of each schedule, plus where they came from."""

    image_size: tuple[int, int]
    randaug: tuple[float, float]
    mixup: tuple[float, float]
    dropout: tuple[float, float]
    stages: int = DEFAULT_STAGES
    epochs: int = DEFAULT_EPOCHS
    source: str = "paper"
    basis: str = ""
    """How the maxima were chosen, e.g. ``table 6: L`` or ``interpolated at 80.1M params``."""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ScalingError(f"unknown recipe source {self.source!r}; expected one of {list(SOURCES)}")
        if not is_int(self.stages) or self.stages < 1:
            raise ScalingError(f"stages {self.stages!r} must be an integer >= 1")
        if not is_int(self.epochs) or self.epochs < self.stages:
            raise ScalingError(f"epochs {self.epochs!r} must be an integer >= stages ({self.stages})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": list(self.image_size), "randaug": list(self.randaug),
            "mixup": list(self.mixup), "dropout": list(self.dropout), "stages": self.stages,
            "epochs": self.epochs, "source": self.source, "basis": self.basis,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ProgressiveRecipe:
        return cls(
            image_size=tuple(obj["image_size"]), randaug=tuple(obj["randaug"]),
            mixup=tuple(obj["mixup"]), dropout=tuple(obj["dropout"]), stages=obj["stages"],
            epochs=obj["epochs"], source=obj["source"], basis=obj.get("basis", ""),
        )


@dataclass(frozen=True, slots=True)
class StageSettings:
    """Settings of one progressive-learning stage (0-based ``stage``)."""

    stage: int
    epochs: tuple[int, int]
    """``(start, end)``: the stage trains epochs ``start <= e < end``."""
    image_size: int
    randaug: float
    mixup: float
    dropout: float

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "epochs": list(self.epochs), "image_size": self.image_size,
                "randaug": self.randaug, "mixup": self.mixup, "dropout": self.dropout}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> StageSettings:
        return cls(stage=obj["stage"], epochs=tuple(obj["epochs"]), image_size=obj["image_size"],
                   randaug=obj["randaug"], mixup=obj["mixup"], dropout=obj["dropout"])


def stage_schedule(recipe: ProgressiveRecipe) -> list[StageSettings]:
    """Resolve a recipe into its per-stage settings (see the module docstring for both rules)."""
    m = recipe.stages
    rows = []
    for i in range(m):
        epochs = (int(i / m * recipe.epochs), int((i + 1) / m * recipe.epochs))
        frac = i / (m - 1) if m > 1 else 1.0  # Algorithm 1; numpy.linspace in the code
        lo, hi = recipe.image_size
        if recipe.source == "released":
            size = int(lo + (hi - lo) * (i + 1) / m)
            dropout = recipe.dropout[1]
        else:
            size = int(math.floor(lo + (hi - lo) * frac + 0.5))
            dropout = _lerp(recipe.dropout, frac)
        rows.append(StageSettings(i, epochs, size, _lerp(recipe.randaug, frac),
                                  _lerp(recipe.mixup, frac), dropout))
    return rows


def _lerp(pair: tuple[float, float], frac: float) -> float:
    lo, hi = pair
    return lo + (hi - lo) * frac


# name -> (max image size, max RandAugment, max mixup, max dropout)
PAPER_TABLE6: dict[str, tuple[int, float, float, float]] = {
    "S": (300, 15, 0.0, 0.3),
    "M": (380, 20, 0.2, 0.4),
    "L": (380, 25, 0.4, 0.5),
}
PAPER_MIN: tuple[int, float, float, float] = (IBASE, 5, 0.0, 0.1)
RELEASED: dict[str, tuple[int, float, float, float]] = {
    "S": (300, 10, 0.0, 0.2),
    "M": (384, 15, 0.2, 0.3),
    "L": (384, 20, 0.5, 0.4),
    "XL": (384, 20, 0.5, 0.4),
}
ANCHOR_PARAMS: dict[str, int] = {"S": 21_458_488, "M": 54_139_356, "L": 118_515_272}
"""Official parameter counts of the models with a Table 6 row (interpolation anchors)."""


def recipe_for(
    name: str | None,
    *,
    params: int,
    train_size: int,
    source: str = "paper",
    epochs: int = DEFAULT_EPOCHS,
    stages: int = DEFAULT_STAGES,
) -> ProgressiveRecipe:
    """The recipe of a named model (``S``, ``M``, ``L``, ``XL``) or of any model by its size.

    ``name`` selects a table row when there is one for ``source``; otherwise the maxima are
    interpolated by ``params`` and the maximum image size is ``train_size``.
    """
    if source not in SOURCES:
        raise ScalingError(f"unknown recipe source {source!r}; expected one of {list(SOURCES)}")
    key = name.upper() if name else None
    table = PAPER_TABLE6 if source == "paper" else RELEASED
    if key in table:
        size, ram, mix, drop = table[key]
        basis = f"{'table 6' if source == 'paper' else 'efficientnetv2_params'}: {key}"
    elif key == "XL" and source == "paper":
        _, ram, mix, drop = PAPER_TABLE6["L"]
        size, basis = train_size, "table 6: L regularization, XL train size"
    else:
        size = train_size
        ram, mix, drop = _interpolate(table, params)
        basis = f"interpolated at {params:,} params"
    dropout = (PAPER_MIN[3], drop) if source == "paper" else (drop, drop)
    return ProgressiveRecipe(
        image_size=(IBASE, size), randaug=(PAPER_MIN[1], ram), mixup=(0.0, mix),
        dropout=dropout, stages=stages, epochs=epochs, source=source, basis=basis,
    )


def _interpolate(table: dict[str, tuple[int, float, float, float]],
                 params: int) -> tuple[float, float, float]:
    if params < 1:
        raise ScalingError(f"params {params!r} must be >= 1")
    names = ("S", "M", "L")
    xs = [math.log(ANCHOR_PARAMS[n]) for n in names]
    x = min(max(math.log(params), xs[0]), xs[-1])
    j = 0 if x <= xs[1] else 1
    frac = (x - xs[j]) / (xs[j + 1] - xs[j])
    lo, hi = table[names[j]], table[names[j + 1]]
    randaug, mixup, dropout = (round(lo[k] + (hi[k] - lo[k]) * frac, 3) for k in (1, 2, 3))
    return randaug, mixup, dropout
