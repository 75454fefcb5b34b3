"""Derive named or budget-sized targets from a base, with their recipes: the library call
behind ``nas-scale``."""

from __future__ import annotations

from dataclasses import dataclass, replace

from proxy_train.progressive import DEFAULT_EPOCHS, SOURCES, recipe_for
from scaling.base import RECIPE_NAMES, Base
from scaling.errors import ScalingError
from scaling.output import ModelRecord, ScaleReport, make_record
from scaling.rules import (
    DEFAULT_BASE_EVAL_SIZE,
    DEFAULT_MAX_SIZE,
    DEFAULT_RULE,
    TARGET_PHI,
    Scaled,
    ScalingRule,
    check_sizes,
    scale_to_budget,
    scale_to_target,
    train_size_for,
)
from search_space.checks import is_int
from search_space.cost import count_params

CALIBRATION_BASE = "efficientnetv2-s"


@dataclass(frozen=True, slots=True)
class ScaleRequest:
    """What to derive. ``targets`` are names in ``TARGET_PHI``; a budget adds one more model."""

    targets: tuple[str, ...] = ()
    params: int | None = None
    macs: int | None = None
    max_size: int = DEFAULT_MAX_SIZE
    recipe: str = "paper"
    epochs: int = DEFAULT_EPOCHS
    base_eval_size: int | None = None
    """Overrides the base's eval size (preset or file value; else 384)."""
    rule: ScalingRule = DEFAULT_RULE

    def __post_init__(self) -> None:
        bad = [t for t in self.targets if t.upper() not in TARGET_PHI]
        if bad:
            raise ScalingError(f"unknown target {bad[0]!r}; expected one of {list(TARGET_PHI)}")
        if self.params is not None and self.macs is not None:
            raise ScalingError("give one budget, --params or --macs, not both")
        if not self.targets and self.params is None and self.macs is None:
            raise ScalingError(f"nothing to derive: give a target ({', '.join(TARGET_PHI)}) "
                               "or a --params/--macs budget")
        if self.recipe not in SOURCES:
            raise ScalingError(f"unknown recipe {self.recipe!r}; expected one of {list(SOURCES)}")
        if not is_int(self.max_size) or self.max_size < 32:
            raise ScalingError(f"max size {self.max_size!r} must be an integer >= 32")


def budget_name(params: int | None, macs: int | None) -> str:
    """``params<=80M``, ``macs<=30G``, ``params<=1234567``."""
    kind, value = ("params", params) if params is not None else ("macs", macs)
    assert value is not None
    for div, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "K")):
        if value % div == 0:
            return f"{kind}<={value // div}{suffix}"
    return f"{kind}<={value}"


def derive(base: Base, request: ScaleRequest) -> ScaleReport:
    """Scale ``base`` to every requested target and attach recipes and costs."""
    rule = replace(request.rule, max_size=request.max_size)
    eval_size = request.base_eval_size or base.eval_size or DEFAULT_BASE_EVAL_SIZE
    check_sizes(eval_size, rule)
    if request.base_eval_size is not None or base.train_size is None:
        train_size = train_size_for(eval_size, rule)
    else:
        train_size = base.train_size
    recipe_name = RECIPE_NAMES.get(base.preset or "")
    # Table rows describe the official family, so named targets use them only when scaled
    # from EfficientNetV2-S itself; from any other base they are interpolated by size.
    from_s = base.preset == CALIBRATION_BASE
    base_record = make_record(
        base.label, base.spec, train_size=train_size, eval_size=eval_size,
        recipe=recipe_for(recipe_name, params=count_params(base.spec), train_size=train_size,
                          source=request.recipe, epochs=request.epochs),
        source=base.source,
    )
    targets: list[ModelRecord] = []
    seen: set[str] = set()
    for name in (t.upper() for t in request.targets):
        if name in seen:
            continue
        seen.add(name)
        scaled = scale_to_target(base.spec, name, rule, base_eval_size=eval_size)
        targets.append(_record(name, name if from_s else None, scaled, request,
                               f"target {name}"))
    if request.params is not None or request.macs is not None:
        scaled = scale_to_budget(base.spec, params=request.params, macs=request.macs, rule=rule,
                                 base_eval_size=eval_size, base_train_size=train_size)
        label = budget_name(request.params, request.macs)
        targets.append(_record(label, None, scaled, request, label))
    return ScaleReport(base=base_record, targets=tuple(targets))


def _record(name: str, recipe_name: str | None, scaled: Scaled, request: ScaleRequest,
            source: str) -> ModelRecord:
    recipe = recipe_for(recipe_name, params=count_params(scaled.spec),
                        train_size=scaled.train_size, source=request.recipe,
                        epochs=request.epochs)
    return make_record(name, scaled.spec, train_size=scaled.train_size,
                       eval_size=scaled.eval_size, recipe=recipe, source=source, scaled=scaled)

