"""What ``nas-train`` trains and how: the model, its progressive recipe, the training recipe.

The model (a :class:`ModelSource`) comes from anything the other commands take, resolved by the
command layer (``nas.cli.models``: a preset, a canonical string, a spec JSON, a search's
``best.json``, a leaderboard with ``--rank``, a ``nas-scale`` output whose recipe is used). The recipe is the paper's final training
(section 5.1 and the released code), made to fit the run:

* **progressive** (default): Algorithm 1 with the model's Table 6 values (``nas-scale``'s
  interpolation for models without a row; ``proxy_train.progressive``), 4 stages, stretched or
  shrunk to ``--epochs``; ``--stages`` and ``--sizes`` override. **fixed**: one stage at the
  final size and regularization. A **recipe file** (JSON or TOML) may hold a ``progressive``
  table (the fields of ``ProgressiveRecipe``) and a ``training`` table (fields of
  ``proxy_train.recipe.Recipe``) that override the defaults.
* Image sizes above the data set's own resolution are mapped proportionally onto it (a 64 px
  data set cannot be trained at 300 px), and the output says so.
* The optimizer step is the paper's: TF-semantics RMSProp (0.9 / 0.9, eps 1e-3), 0.016 per
  256 images, weight decay 1e-5 on conv/linear weights, label smoothing 0.1, stochastic depth
  0.2 (survival 0.8), EMA of the weights (0.9999 with TF's warm-up, ``proxy_train.ema``).
  Learning rate: linear warm-up over ``min(5, epochs / 10)`` epochs, then the paper's
  exponential decay (0.97 every 2.4 epochs) for runs of 100 epochs or more, and a cosine to 0
  for shorter ones (0.97 every 2.4 epochs would leave a 20-epoch run at 84% of its peak).
* Evaluation runs at the model's eval size: its own where it has one (a preset, a
  ``nas-scale`` model), else the last training size times 384 / 300 (EfficientNetV2-S's
  eval / train ratio), FixRes-style.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from nas.run.progress import counted
from nas.train.config import TrainConfig
from proxy_train.errors import RecipeError
from proxy_train.progressive import ProgressiveRecipe, recipe_for
from proxy_train.recipe import Recipe, Stage
from scaling.base import RECIPE_NAMES
from search_space.checks import check_keys
from search_space.codec import encode
from search_space.cost import count_params
from search_space.resolve import preset_of
from search_space.spec import ArchSpec

EVAL_RATIO = 384 / 300
"""EfficientNetV2-S evaluates at 384 px what it trains at 300 px."""
LONG_RUN_EPOCHS = 100
"""Runs at least this long decay the learning rate exponentially, shorter ones by a cosine."""
FINAL_TRAINING: dict[str, Any] = {
    "optimizer": "rmsprop", "lr": None, "weight_decay": 1e-5, "label_smoothing": 0.1,
    "randaug_layers": 2, "crop_area": 0.08, "drop_path": 0.2, "decay_rate": 0.97,
    "decay_epochs": 2.4, "eval_batch_size": 256,
}
# Fields a recipe file's training table may not set: they come from the progressive schedule
# or from the command line.
_SCHEDULED = ("epochs", "stages", "seed", "resolution", "randaug_magnitude", "mixup_alpha",
              "dropout")
TRAINING_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Recipe)
                                         if f.name not in _SCHEDULED)


@dataclass(frozen=True, slots=True)
class ModelSource:
    """The model to train and what its origin says about its sizes and recipe."""

    spec: ArchSpec
    name: str
    source: str
    recipe_name: str | None = None
    """Its Table 6 row (``S``, ``M``, ``L``, ``XL``), if it has one."""
    train_size: int | None = None
    eval_size: int | None = None
    progressive: ProgressiveRecipe | None = None
    """The recipe a ``nas-scale`` output wrote for it."""


@dataclass(frozen=True, slots=True)
class RecipeFile:
    progressive: dict[str, Any]
    training: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TrainPlan:
    """A resolved training: the model, the recipe it runs and what was adapted, said once."""

    model: ModelSource
    recipe: Recipe
    progressive: ProgressiveRecipe
    notes: tuple[str, ...]

    def settings(self, config: TrainConfig) -> dict[str, Any]:
        """What defines this training: a folder continues only the same one (on any hardware,
        and with another batch size: ``nas.train.record.RESUMABLE_CHANGES``)."""
        return {"arch": encode(self.model.spec), "data": config.data, "seed": config.seed,
                "recipe": self.recipe.to_dict()}


def spec_model(spec: ArchSpec, name: str = "base", source: str = "arch string") -> ModelSource:
    """A model known by its spec alone (a search's candidate); a preset's spec gets the
    preset's sizes and Table 6 row. Models a user names are resolved by ``nas.cli.models``."""
    preset = preset_of(spec)
    if preset is None:
        return ModelSource(spec, name, source)
    return ModelSource(spec, name, source, RECIPE_NAMES.get(preset.name), preset.train_size,
                       preset.eval_size)


def load_recipe_file(path: str) -> RecipeFile:
    """Read a recipe file: ``progressive`` and ``training`` tables, nothing else."""
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
        obj = tomllib.loads(text) if where.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RecipeError(f"recipe file {path!r} is not readable JSON or TOML: {err}") from None
    if not isinstance(obj, dict):
        raise RecipeError(f"recipe file {path!r} must hold an object")
    check_keys(obj, ("progressive", "training"), where=f"recipe file {path!r}",
               error=RecipeError)
    progressive, training = obj.get("progressive", {}), obj.get("training", {})
    for name, table in (("progressive", progressive), ("training", training)):
        if not isinstance(table, dict):
            raise RecipeError(f"recipe file {path!r}: {name} must be a table of fields")
    check_keys(training, TRAINING_FIELDS, where=f"recipe file {path!r}: training",
               error=RecipeError)
    try:  # every value checked now, before any work
        _ = Recipe(**{**FINAL_TRAINING, **training})
        if progressive:
            ProgressiveRecipe.from_dict({**recipe_for("S", params=1, train_size=300).to_dict(),
                                         **progressive})
    except RecipeError as err:
        raise RecipeError(f"recipe file {path!r}: {err}") from None
    return RecipeFile(dict(progressive), dict(training))


def make_plan(config: TrainConfig, model: ModelSource, data_resolution: int, *,
              cuda: bool, recipe_file: RecipeFile | None = None,
              num_classes: int | None = None) -> TrainPlan:
    """The recipe ``config`` asks for, fitted to data stored at ``data_resolution`` px; with
    ``num_classes`` (the data's) the model's classifier is sized for it."""
    notes: list[str] = []
    if num_classes is not None and num_classes != model.spec.num_classes:
        model = replace(model, spec=replace(model.spec, num_classes=num_classes))
    params = count_params(model.spec)
    progressive = model.progressive or recipe_for(
        model.recipe_name, params=params, train_size=model.train_size or data_resolution)
    file = recipe_file or RecipeFile({}, {})
    changes: dict[str, Any] = dict(file.progressive)
    epochs = config.epochs or int(changes.get("epochs", progressive.epochs))
    changes["epochs"] = epochs
    if config.recipe == "fixed":
        changes["stages"] = 1
    elif config.stages is not None:
        changes["stages"] = config.stages
    elif epochs < int(changes.get("stages", progressive.stages)):
        changes["stages"] = epochs
        notes.append(f"{counted(epochs, 'stage')}: a run of {counted(epochs, 'epoch')} has one "
                     "stage per epoch at most")
    if config.sizes is not None:
        changes["image_size"] = list(config.sizes)
    progressive = progressive.replace(**changes)
    progressive, line = progressive.fit_to(data_resolution)
    if line:
        notes.append(line)
    stages = progressive.to_stages()
    if config.recipe == "fixed":
        last = stages[-1]
        stages = (Stage(epochs, last.resolution, last.randaug_magnitude, last.mixup_alpha,
                        last.dropout),)
    eval_size = config.eval_size or _eval_size(model, progressive.image_size[1])
    schedule = "exponential" if epochs >= LONG_RUN_EPOCHS else "cosine"
    training: dict[str, Any] = {
        **FINAL_TRAINING, "schedule": schedule, "warmup_epochs": min(5.0, epochs / 10),
        "batch_size": config.batch_size or (128 if cuda else 64),
        "ema_decay": config.ema or None, "eval_resolution": eval_size, **file.training}
    recipe = Recipe(**training, epochs=epochs, stages=stages, seed=config.seed)
    notes.append(_lr_line(recipe))
    return TrainPlan(model, recipe, progressive, tuple(notes))


def _eval_size(model: ModelSource, last_train_size: int) -> int:
    if model.train_size and model.eval_size:
        return round(last_train_size * model.eval_size / model.train_size)
    return round(last_train_size * EVAL_RATIO)


def _lr_line(recipe: Recipe) -> str:
    decay = (f"x{recipe.decay_rate} every {counted(recipe.decay_epochs, 'epoch')}"
             if recipe.schedule == "exponential" else f"{recipe.schedule} to 0")
    return (f"learning rate: {recipe.peak_lr():.4g} ({recipe.optimizer}, batch "
            f"{recipe.batch_size}), warm-up {counted(float(recipe.warmup_epochs), 'epoch')}, "
            f"then {decay}")


__all__ = ["EVAL_RATIO", "FINAL_TRAINING", "ModelSource", "RecipeFile", "TrainPlan",
           "load_recipe_file", "make_plan", "spec_model"]
