"""Scale a searched base up to bigger models the EfficientNetV2 way, with their
progressive-learning recipes (``nas-scale``)."""

from proxy_train.progressive import ProgressiveRecipe, StageSettings, recipe_for, stage_schedule
from scaling.errors import ScalingError
from scaling.rules import (
    DEFAULT_RULE,
    TARGET_PHI,
    Coefficients,
    ExtraStage,
    Scaled,
    ScalingRule,
    late_share,
    scale,
    scale_to_budget,
    scale_to_target,
)

__all__ = [
    "DEFAULT_RULE",
    "TARGET_PHI",
    "Coefficients",
    "ExtraStage",
    "ProgressiveRecipe",
    "Scaled",
    "ScalingError",
    "ScalingRule",
    "StageSettings",
    "late_share",
    "recipe_for",
    "scale",
    "scale_to_budget",
    "scale_to_target",
    "stage_schedule",
]
