"""Progressive-learning recipes: Table 6 endpoints, Algorithm 1 interpolation, released code."""

from __future__ import annotations

import pytest

from proxy_train.errors import RecipeError
from proxy_train.progressive import ANCHOR_PARAMS, ProgressiveRecipe, recipe_for, stage_schedule


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


def test_the_anchors_are_the_official_parameter_counts_of_s_m_l() -> None:
    # Counted from the presets; the paper's models have exactly these.
    assert ANCHOR_PARAMS == {"S": 21_458_488, "M": 54_139_356, "L": 118_515_272}


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
    with pytest.raises(RecipeError, match="unknown recipe source 'tpu'"):
        recipe_for("M", params=1, train_size=1, source="tpu")
    with pytest.raises(RecipeError, match="stages 0"):
        ProgressiveRecipe((128, 300), (5, 15), (0, 0), (0.1, 0.3), stages=0)
    with pytest.raises(RecipeError, match="stages True must be an integer"):
        ProgressiveRecipe((128, 300), (5, 15), (0, 0), (0.1, 0.3), stages=True)


# --- what a training run executes --------------------------------------------------------------

def test_table6_s_row_as_four_training_stages() -> None:
    recipe = recipe_for("S", params=1, train_size=300, epochs=20)
    stages = recipe.to_stages()
    assert [s.resolution for s in stages] == [128, 185, 243, 300]
    assert [s.randaug_magnitude for s in stages] == pytest.approx([5, 8.333, 11.667, 15],
                                                                   abs=5e-4)
    assert [s.dropout for s in stages] == pytest.approx([0.1, 0.1667, 0.2333, 0.3], abs=5e-5)
    assert [s.mixup_alpha for s in stages] == [0, 0, 0, 0]
    assert [s.epochs for s in stages] == [5, 5, 5, 5] and sum(s.epochs for s in stages) == 20


def test_custom_three_stage_recipe() -> None:
    recipe = ProgressiveRecipe.from_dict({"image_size": [32, 64], "randaug": [2, 10],
                                          "mixup": [0, 0.3], "dropout": [0.0, 0.4],
                                          "stages": 3, "epochs": 10})
    stages = recipe.to_stages()
    assert [(s.epochs, s.resolution) for s in stages] == [(3, 32), (3, 48), (4, 64)]
    assert [s.randaug_magnitude for s in stages] == pytest.approx([2, 6, 10])
    assert [s.mixup_alpha for s in stages] == pytest.approx([0, 0.15, 0.3])
    assert [s.dropout for s in stages] == pytest.approx([0, 0.2, 0.4])
    fixed = recipe.to_stages(regularization="final")
    assert [s.resolution for s in fixed] == [32, 48, 64]  # sizes still grow
    assert {(s.randaug_magnitude, s.mixup_alpha, s.dropout) for s in fixed} == {(10, 0.3, 0.4)}
    with pytest.raises(RecipeError, match="regularization 'none' not in"):
        recipe.to_stages(regularization="none")


def test_sizes_fit_a_data_set_stored_smaller() -> None:
    recipe = recipe_for("S", params=1, train_size=300, epochs=8)
    fitted, line = recipe.fit_to(64)
    assert fitted.image_size == (27, 64)  # 128 * 64 / 300 = 27.3
    assert line == ("image sizes 128->300 px scaled to 27->64 px: the data is stored at 64 px")
    assert fitted.randaug == recipe.randaug and fitted.epochs == 8
    same, nothing = recipe.fit_to(300)
    assert same is recipe and nothing is None
    assert recipe_for(None, params=5_000_000, train_size=64).image_size == (27, 64)


@pytest.mark.parametrize(("changes", "message"), [
    ({"colour": 1}, "progressive recipe: unknown field 'colour'; allowed: image_size, "),
    ({"image_size": [300, 128]}, "image_size [300, 128]: min 300 is above max 128"),
    ({"image_size": [4, 128]}, "image_size [4, 128]: each must be an integer >= 8"),
    ({"image_size": 128}, "image_size 128 must be a pair [min, max]"),
    ({"randaug": [5, 40]}, "randaug [5, 40]: each must be a number in [0, 30]"),
    ({"dropout": [0.1, 1.5]}, "dropout [0.1, 1.5]: each must be a number in [0, 0.999]"),
    ({"mixup": [-1, 0]}, "mixup [-1, 0]: each must be a number >= 0"),
    ({"epochs": 2, "stages": 4}, "epochs 2 must be an integer >= stages (4)"),
])
def test_recipe_file_errors(changes: dict, message: str) -> None:
    base = recipe_for("S", params=1, train_size=300).to_dict()
    with pytest.raises(RecipeError) as info:
        ProgressiveRecipe.from_dict({**base, **changes})
    assert message in str(info.value)
    with pytest.raises(RecipeError, match="progressive recipe: missing field 'mixup'"):
        ProgressiveRecipe.from_dict({"image_size": [8, 9], "randaug": [0, 1],
                                     "dropout": [0, 0]})
