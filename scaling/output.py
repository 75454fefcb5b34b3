"""The JSON document ``nas-scale`` writes, and reading it back (schema version 1).

Layout::

    {
      "schema_version": 1,
      "base":    {MODEL, "source": "preset efficientnetv2-s"},
      "targets": [{MODEL,
                   "coefficients": {phi, width[], depth[], resolution, eval_size,
                                    train_size, extra_stage: [layers, channels] | null},
                   "rule": {alpha, alpha_late, beta, beta_late, gamma, extra_stage{...},
                            max_size, train_ratio, size_divisor},
                   "base": {"arch", "hash", "params", "source"},
                   "verify": {StepTiming fields ..., "peak_memory_bytes"} | null}, ...]
    }

where MODEL is ``"name", "arch"`` (canonical string), ``"hash"`` (``spec_hash``), ``"spec"``
(``codec.to_dict``), ``"params"``, ``"macs": {"train", "eval"}`` (MACs at the train and eval
sizes), ``"train_size"``, ``"eval_size"``, ``"recipe"`` (the :class:`ProgressiveRecipe`
fields plus its resolved ``"schedule"``) and ``"arch_def"`` (timm ``arch_def``, or ``null``
where timm cannot express the spec). :func:`load_scaled` checks that ``arch``, ``hash`` and
``spec`` agree and rebuilds the same objects :func:`make_report` returned.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy_train.files import atomic_write
from proxy_train.progressive import ProgressiveRecipe, StageSettings, stage_schedule
from scaling.errors import ScalingError
from scaling.rules import Coefficients, Scaled, ScalingRule
from search_space.codec import decode, encode, from_dict, spec_hash, to_dict
from search_space.cost import count_macs, count_params
from search_space.errors import SpecError
from search_space.export import to_timm
from search_space.spec import ArchSpec

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One model of a report: the base or a derived target."""

    name: str
    spec: ArchSpec
    params: int
    macs_train: int
    macs_eval: int
    train_size: int
    eval_size: int
    recipe: ProgressiveRecipe
    schedule: tuple[StageSettings, ...]
    arch_def: tuple[tuple[str, ...], ...] | None
    source: str = ""
    """Base: where it came from. Target: how it was requested (``target L``, ``params <= N``)."""
    coefficients: Coefficients | None = None
    rule: ScalingRule | None = None
    verify: dict[str, Any] | None = None

    @property
    def arch(self) -> str:
        return encode(self.spec)

    @property
    def hash(self) -> str:
        return spec_hash(self.spec)


@dataclass(frozen=True, slots=True)
class ScaleReport:
    """A base and the targets derived from it."""

    base: ModelRecord
    targets: tuple[ModelRecord, ...]
    schema_version: int = SCHEMA_VERSION


def make_record(
    name: str,
    spec: ArchSpec,
    *,
    train_size: int,
    eval_size: int,
    recipe: ProgressiveRecipe,
    source: str,
    scaled: Scaled | None = None,
    verify: dict[str, Any] | None = None,
) -> ModelRecord:
    """Measure ``spec`` (params, MACs at both sizes), resolve its schedule and timm form."""
    try:
        arch_def: tuple[tuple[str, ...], ...] | None = tuple(tuple(r) for r in to_timm(spec))
    except SpecError:
        arch_def = None  # e.g. a fused e1 stage with SE: timm's single-conv block has no SE
    return ModelRecord(
        name=name, spec=spec, params=count_params(spec),
        macs_train=count_macs(spec, train_size), macs_eval=count_macs(spec, eval_size),
        train_size=train_size, eval_size=eval_size, recipe=recipe,
        schedule=tuple(stage_schedule(recipe)), arch_def=arch_def, source=source,
        coefficients=None if scaled is None else scaled.coefficients,
        rule=None if scaled is None else scaled.rule, verify=verify,
    )


def report_to_dict(report: ScaleReport) -> dict[str, Any]:
    base = report.base
    return {
        "schema_version": report.schema_version,
        "base": _model_to_dict(base),
        "targets": [
            {
                **_model_to_dict(t),
                "coefficients": None if t.coefficients is None else t.coefficients.to_dict(),
                "rule": None if t.rule is None else t.rule.to_dict(),
                "base": {"arch": base.arch, "hash": base.hash, "params": base.params,
                         "source": base.source},
                "verify": t.verify,
            }
            for t in report.targets
        ],
    }


def _model_to_dict(m: ModelRecord) -> dict[str, Any]:
    return {
        "name": m.name, "arch": m.arch, "hash": m.hash, "spec": to_dict(m.spec),
        "params": m.params, "macs": {"train": m.macs_train, "eval": m.macs_eval},
        "train_size": m.train_size, "eval_size": m.eval_size, "source": m.source,
        "recipe": {**m.recipe.to_dict(), "schedule": [s.to_dict() for s in m.schedule]},
        "arch_def": None if m.arch_def is None else [list(r) for r in m.arch_def],
    }


def write_scaled(report: ScaleReport, path: str | os.PathLike[str]) -> Path:
    """Write the report as JSON (parents created; replaced atomically)."""
    text = json.dumps(report_to_dict(report), indent=2) + "\n"
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def load_scaled(path: str | os.PathLike[str]) -> ScaleReport:
    """Read a report written by :func:`write_scaled` back into the same objects."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScalingError(f"cannot read scaling report {str(path)!r}: {exc}") from None
    if not isinstance(obj, dict) or obj.get("schema_version") != SCHEMA_VERSION:
        version = obj.get("schema_version") if isinstance(obj, dict) else None
        raise ScalingError(f"{str(path)!r}: schema_version {version!r} is not {SCHEMA_VERSION}")
    try:
        base = _model_from_dict(obj["base"])
        targets = []
        for t in obj["targets"]:
            coeffs = t.get("coefficients")
            rule = t.get("rule")
            targets.append(_model_from_dict(
                t,
                coefficients=None if coeffs is None else Coefficients.from_dict(coeffs),
                rule=None if rule is None else ScalingRule.from_dict(rule),
                verify=t.get("verify"),
            ))
    except (KeyError, TypeError, ValueError) as exc:
        raise ScalingError(f"{str(path)!r}: malformed scaling report: {exc!r}") from None
    return ScaleReport(base=base, targets=tuple(targets), schema_version=SCHEMA_VERSION)


def _model_from_dict(obj: dict[str, Any], **extra: Any) -> ModelRecord:
    spec = from_dict(obj["spec"])
    if decode(obj["arch"]) != spec or obj["hash"] != spec_hash(spec):
        raise ScalingError(f"model {obj.get('name')!r}: 'arch', 'hash' and 'spec' disagree")
    recipe_obj = dict(obj["recipe"])
    schedule = tuple(StageSettings.from_dict(s) for s in recipe_obj.pop("schedule"))
    arch_def = obj.get("arch_def")
    return ModelRecord(
        name=obj["name"], spec=spec, params=obj["params"], macs_train=obj["macs"]["train"],
        macs_eval=obj["macs"]["eval"], train_size=obj["train_size"], eval_size=obj["eval_size"],
        recipe=ProgressiveRecipe.from_dict(recipe_obj), schedule=schedule,
        arch_def=None if arch_def is None else tuple(tuple(r) for r in arch_def),
        source=obj.get("source", ""), **extra,
    )
