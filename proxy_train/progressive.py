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
  linearly in ``log(params)`` between the S, M and L anchors (their parameter counts, from the
  presets), clamped outside ``[S, L]``, and the maximum image size is the model's own train
  size.
  Minima are the shared ones (128 px, RandAugment 5, mixup 0, dropout 0.1; released: fixed
  dropout). Interpolated values are rounded to 3 decimals. A model whose train size is below
  128 px starts at the same fraction of it as S does (128 / 300), never above its maximum.

Epoch boundaries follow the released TF2 loop: stage ``i`` spans
``int(i / stages * epochs) .. int((i + 1) / stages * epochs)`` (350 epochs: 0-87, 87-175,
175-262, 262-350).

``nas-scale`` writes these recipes for the models it derives; the training loop
(``proxy_train.loop``) runs them: :meth:`ProgressiveRecipe.to_stages` turns a recipe into the
``Stage`` list of a ``Recipe`` (a proxy run is the one-stage case), and
:meth:`ProgressiveRecipe.fit_to` maps the sizes onto a data set stored at a lower resolution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy_train.errors import RecipeError
from proxy_train.recipe import Stage
from search_space.checks import check_keys, is_int, is_number
from search_space.cost import count_params
from search_space.presets import get_preset

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
        problem = _problem(self)
        if problem:
            raise RecipeError(problem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": list(self.image_size), "randaug": list(self.randaug),
            "mixup": list(self.mixup), "dropout": list(self.dropout), "stages": self.stages,
            "epochs": self.epochs, "source": self.source, "basis": self.basis,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> ProgressiveRecipe:
        """Inverse of ``to_dict``. ``stages``, ``epochs``, ``source`` and ``basis`` may be
        left out (defaults); unknown or malformed fields raise ``RecipeError`` naming them."""
        if not isinstance(obj, Mapping):
            raise RecipeError(f"progressive recipe must be an object, got {type(obj).__name__}")
        check_keys(obj, _FIELDS, _RANGES, where="progressive recipe", error=RecipeError)
        pairs = {k: _pair(k, obj[k]) for k in _RANGES}
        rest = {k: obj[k] for k in ("stages", "epochs", "source", "basis") if k in obj}
        return cls(**pairs, **rest)  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> ProgressiveRecipe:
        """A copy with ``changes`` (validated like a new recipe)."""
        return ProgressiveRecipe.from_dict({**self.to_dict(), **changes})

    def fit_to(self, native: int) -> tuple[ProgressiveRecipe, str | None]:
        """The recipe for data stored at ``native`` px: a data set cannot be trained above
        its own resolution, so when the maximum size is larger both sizes are scaled by
        ``native / max`` (at least 8 px). Returns the recipe and a line saying what changed
        (None when nothing did)."""
        low, high = self.image_size
        if high <= native:
            return self, None
        scaled = (max(8, min(native, round(low * native / high))), native)
        line = (f"image sizes {low}->{high} px scaled to {scaled[0]}->{scaled[1]} px: the data "
                f"is stored at {native} px")
        return self.replace(image_size=list(scaled)), line

    def to_stages(self, regularization: str = "adaptive") -> tuple[Stage, ...]:
        """The stages a training run executes (``proxy_train.recipe.Stage``, one per
        :func:`stage_schedule` row). ``regularization``: ``'adaptive'`` grows it with the
        image size (Algorithm 1); ``'final'`` keeps every stage at the last stage's values
        (progressive resizing alone, the paper's ablation in Table 13)."""
        if regularization not in REGULARIZATION:
            raise RecipeError(f"regularization {regularization!r} not in {REGULARIZATION}")
        rows = stage_schedule(self)
        last = rows[-1]
        return tuple(Stage(epochs=r.epochs[1] - r.epochs[0], resolution=r.image_size,
                           randaug_magnitude=(r if regularization == "adaptive" else last).randaug,
                           mixup_alpha=(r if regularization == "adaptive" else last).mixup,
                           dropout=(r if regularization == "adaptive" else last).dropout)
                     for r in rows)


REGULARIZATION: tuple[str, ...] = ("adaptive", "final")
_RANGES: dict[str, tuple[float, float]] = {
    "image_size": (8, math.inf), "randaug": (0.0, 30.0), "mixup": (0.0, math.inf),
    "dropout": (0.0, 0.999),
}
_FIELDS: tuple[str, ...] = (*_RANGES, "stages", "epochs", "source", "basis")


def _pair(name: str, value: object) -> tuple[Any, Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)) \
            or len(value) != 2:
        raise RecipeError(f"{name} {value!r} must be a pair [min, max]")
    return value[0], value[1]


def _problem(r: ProgressiveRecipe) -> str | None:
    """Why a progressive recipe is invalid, or None."""
    if r.source not in SOURCES:
        return f"unknown recipe source {r.source!r}; expected one of {list(SOURCES)}"
    if not is_int(r.stages) or r.stages < 1:
        return f"stages {r.stages!r} must be an integer >= 1"
    if not is_int(r.epochs) or r.epochs < r.stages:
        return f"epochs {r.epochs!r} must be an integer >= stages ({r.stages})"
    if not isinstance(r.basis, str):
        return f"basis {r.basis!r} must be a string"
    for name, (low, high) in _RANGES.items():
        pair = getattr(r, name)
        if not isinstance(pair, tuple) or len(pair) != 2:
            return f"{name} {pair!r} must be a pair (min, max)"
        check, kind = (is_int, "an integer") if name == "image_size" else (is_number, "a number")
        for value in pair:
            if not check(value) or not low <= value <= high:
                bound = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
                return f"{name} {list(pair)!r}: each must be {kind} {bound}"
        if pair[0] > pair[1]:
            return f"{name} {list(pair)!r}: min {pair[0]!r} is above max {pair[1]!r}"
    return None


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
ANCHOR_PARAMS: dict[str, int] = {
    name: count_params(get_preset(f"efficientnetv2-{name.lower()}").spec)
    for name in ("S", "M", "L")
}
"""Parameter counts of the models with a Table 6 row (the interpolation anchors), counted
from the presets' specs once, at import (a fraction of a millisecond): the official 21.5 M,
54.1 M and 118.5 M."""


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
        raise RecipeError(f"unknown recipe source {source!r}; expected one of {list(SOURCES)}")
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
        image_size=(min_size(size), size), randaug=(PAPER_MIN[1], ram), mixup=(0.0, mix),
        dropout=dropout, stages=stages, epochs=epochs, source=source, basis=basis,
    )


def min_size(max_size: int) -> int:
    """The first stage's image size for a model trained at ``max_size`` at the end: 128 px,
    or for models trained below 128 px the fraction S starts at (128 / 300), at least 8 px."""
    if max_size >= IBASE:
        return IBASE
    return max(8, min(max_size, round(max_size * IBASE / PAPER_TABLE6["S"][0])))


def _interpolate(table: dict[str, tuple[int, float, float, float]],
                 params: int) -> tuple[float, float, float]:
    if params < 1:
        raise RecipeError(f"params {params!r} must be >= 1")
    names = ("S", "M", "L")
    xs = [math.log(ANCHOR_PARAMS[n]) for n in names]
    x = min(max(math.log(params), xs[0]), xs[-1])
    j = 0 if x <= xs[1] else 1
    frac = (x - xs[j]) / (xs[j + 1] - xs[j])
    lo, hi = table[names[j]], table[names[j + 1]]
    randaug, mixup, dropout = (round(lo[k] + (hi[k] - lo[k]) * frac, 3) for k in (1, 2, 3))
    return randaug, mixup, dropout
