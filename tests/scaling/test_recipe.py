"""Progressive-learning recipes: Table 6 endpoints, Algorithm 1 interpolation, released code."""

from __future__ import annotations

import pytest

from scaling.errors import ScalingError
from scaling.recipe import ProgressiveRecipe, recipe_for, stage_schedule


@pytest.mark.parametrize(("name", "size", "ram", "mix", "drop"), [
    ("S", 300, 15, 0.0, 0.3), ("M", 380, 20, 0.2, 0.4), ("L", 380, 25, 0.4, 0.5)])
def test_paper_table6_endpoints(name: str, size: int, ram: float, mix: float,
                                drop: float) -> None:
    recipe = recipe_for(name, params=1, train_size=999)
    assert recipe.image_size == (128, size)
    assert recipe.randaug == (5, ram)
    assert recipe.mixup == (0.0, mix)
    assert recipe.dropout == (0.1, drop)
    assert (recipe.stages, recipe.epochs, recipe.source) == (4, 350, "paper")
    rows = stage_schedule(recipe)
    first, last = rows[0], rows[-1]
    assert (first.image_size, first.randaug, first.mixup, first.dropout) == (128, 5, 0, 0.1)
    assert (last.image_size, last.randaug, last.mixup) == (size, ram, mix)
    assert last.dropout == pytest.approx(drop)


def test_algorithm1_linear_interpolation_per_stage() -> None:
    rows = stage_schedule(recipe_for("L", params=1, train_size=384))
    assert [r.image_size for r in rows] == [128, 212, 296, 380]
    assert [r.randaug for r in rows] == pytest.approx([5, 5 + 20 / 3, 5 + 40 / 3, 25])
    assert [r.mixup for r in rows] == pytest.approx([0, 0.4 / 3, 0.8 / 3, 0.4])
    assert [r.dropout for r in rows] == pytest.approx([0.1, 0.1 + 0.4 / 3, 0.1 + 0.8 / 3, 0.5])
    assert [r.epochs for r in rows] == [(0, 87), (87, 175), (175, 262), (262, 350)]
    assert [r.stage for r in rows] == [0, 1, 2, 3]


RELEASED = {  # reference section 3.2: size / RandAugment / mixup per stage, fixed dropout
    "S": ([171, 214, 257, 300], [5, 6.667, 8.333, 10], [0, 0, 0, 0], 0.2),
    "M": ([192, 256, 320, 384], [5, 8.333, 11.667, 15], [0, 0.0667, 0.1333, 0.2], 0.3),
    "L": ([192, 256, 320, 384], [5, 10, 15, 20], [0, 0.1667, 0.3333, 0.5], 0.4),
    "XL": ([192, 256, 320, 384], [5, 10, 15, 20], [0, 0.1667, 0.3333, 0.5], 0.4),
}


@pytest.mark.parametrize("name", list(RELEASED))
def test_released_schedule_table(name: str) -> None:
    sizes, ram, mix, drop = RELEASED[name]
    rows = stage_schedule(recipe_for(name, params=1, train_size=1, source="released"))
    assert [r.image_size for r in rows] == sizes
    assert [r.randaug for r in rows] == pytest.approx(ram, abs=5e-4)
    assert [r.mixup for r in rows] == pytest.approx(mix, abs=5e-5)
    assert [r.dropout for r in rows] == [drop] * 4
    assert [r.epochs for r in rows] == [(0, 87), (87, 175), (175, 262), (262, 350)]
    assert 128 not in [r.image_size for r in rows]


def test_xl_uses_l_regularization_and_its_train_size() -> None:
    recipe = recipe_for("XL", params=200_000_000, train_size=384)
    assert (recipe.image_size, recipe.randaug, recipe.mixup, recipe.dropout) == (
        (128, 384), (5, 25), (0.0, 0.4), (0.1, 0.5))


def test_other_models_interpolate_in_log_params() -> None:
    at_m = recipe_for(None, params=54_139_356, train_size=352)
    assert (at_m.image_size, at_m.randaug, at_m.mixup, at_m.dropout) == (
        (128, 352), (5, 20), (0.0, 0.2), (0.1, 0.4))
    between = recipe_for(None, params=80_000_000, train_size=384)
    assert 20 < between.randaug[1] < 25 and 0.2 < between.mixup[1] < 0.4
    assert recipe_for(None, params=5_000_000, train_size=224).randaug == (5, 15)  # clamped at S
    assert recipe_for(None, params=10**9, train_size=384).dropout == (0.1, 0.5)  # clamped at L
    released = recipe_for(None, params=54_139_356, train_size=384, source="released")
    assert released.dropout == (0.3, 0.3) and released.randaug == (5, 15)


def test_round_trip_and_errors() -> None:
    recipe = recipe_for("M", params=1, train_size=1)
    assert ProgressiveRecipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(ScalingError, match="unknown recipe source 'tpu'"):
        recipe_for("M", params=1, train_size=1, source="tpu")
    with pytest.raises(ScalingError, match="stages 0"):
        ProgressiveRecipe((128, 300), (5, 15), (0, 0), (0.1, 0.3), stages=0)
    with pytest.raises(ScalingError, match="stages True must be an integer"):
        ProgressiveRecipe((128, 300), (5, 15), (0, 0), (0.1, 0.3), stages=True)
