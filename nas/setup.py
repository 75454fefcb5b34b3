"""Everything a run needs before its first candidate: space, data, recipe, hardware, reference.

The reference model (by default the space's backbone) is timed once per run, on the run's
hardware, and stored in ``run.json``: every candidate's step time and parameter count are
normalized by it, so rewards within a run are comparable, also across a resume.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas.config import ConfigError, SearchConfig
from nas.trial import TrialContext
from proxy_train.data import DataSplits, load_data
from proxy_train.timing import StepTiming
from proxy_train.hardware import PROFILES, HardwareProfile, resolve_hardware
from proxy_train.recipe import Recipe
from search_space.codec import encode
from search_space.cost import count_params
from search_space.resolve import resolve_arch
from search_space.space import SearchSpace
from search_space.space_files import load_space, space_to_dict
from search_space.spec import ArchSpec

TimeReference = Callable[[ArchSpec, TrialContext], StepTiming]
"""Times the reference model on the run's hardware."""


@dataclass(frozen=True, slots=True)
class RunSetup:
    space: SearchSpace
    data: DataSplits
    context: TrialContext
    reference_name: str
    reference_spec: ArchSpec
    reference_timing: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def reference_record(self) -> dict[str, Any]:
        return {
            "name": self.reference_name,
            "arch": encode(self.reference_spec),
            "params": self.context.ref_params,
            "step_time_ms": self.context.ref_step_time_ms,
            "timing": self.reference_timing,
        }

    def record(self) -> dict[str, Any]:
        """What ``run.json`` stores besides the config."""
        data = self.data
        return {
            "space": space_to_dict(self.space),
            "recipe": self.context.recipe.to_dict(),
            "data": {
                "name": data.name,
                "num_classes": data.num_classes,
                "resolution": data.resolution,
                "train": int(data.train.labels.shape[0]),
                "minival": int(data.minival.labels.shape[0]),
            },
            "timing": {"batch": self.context.timing_batch, "resolution": self.context.timing_resolution},
            "reference": self.reference_record(),
        }


def hardware_profile(config: SearchConfig) -> HardwareProfile:
    """The run's hardware profile. Locally the hardware must be present; on a cluster the
    nodes that have it are chosen by the executor."""
    if config.address is None:
        return resolve_hardware(config.hardware).profile
    name = config.hardware.lower()
    if name not in PROFILES:
        raise ConfigError(f"unknown hardware {config.hardware!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[name]


def default_recipe(config: SearchConfig, profile: HardwareProfile) -> Recipe:
    changes: dict[str, Any] = {"seed": config.seed}
    if profile.kind == "cpu":
        recipe = Recipe.cpu_quick()
        changes["cpu_threads"] = cpus_per_trial(config, profile)
    else:
        recipe = Recipe()
    if config.epochs is not None:
        changes["epochs"] = config.epochs
    if config.proxy_resolution is not None:
        changes["resolution"] = config.proxy_resolution
    return dataclasses.replace(recipe, **changes)


def cpus_per_trial(config: SearchConfig, profile: HardwareProfile) -> int:
    """CPU threads (and Ray CPUs) per trial: by default the local machine's cores are shared
    evenly among the workers; on a cluster a GPU trial takes one core, a CPU trial two."""
    if config.cpus_per_trial is not None:
        return max(1, int(config.cpus_per_trial))
    if config.address is None:
        return max(1, (os.cpu_count() or 1) // config.workers)
    return 1 if profile.kind == "cuda" else 2


def reference_of(config: SearchConfig, space: SearchSpace, num_classes: int) -> tuple[str, ArchSpec]:
    name = config.reference or getattr(space, "reference", None)
    if not name:
        raise ConfigError(
            f"space {space.name!r} names no reference model; pass --reference PRESET|ARCH|FILE"
        )
    spec = dataclasses.replace(resolve_arch(name), num_classes=num_classes)
    return name, spec


def build_setup(
    config: SearchConfig, stored: dict[str, Any] | None, time_reference: TimeReference
) -> RunSetup:
    """Resolve every setting of the run; time the reference unless ``stored`` has it."""
    profile = hardware_profile(config)
    space = load_space(config.space)
    data = load_data(config.data, seed=config.seed)
    recipe = default_recipe(config, profile)
    name, spec = reference_of(config, space, data.num_classes)
    context = TrialContext(
        recipe=recipe,
        hardware=config.hardware,
        timing_batch=config.timing_batch or profile.timing_batch,
        timing_resolution=config.timing_resolution or data.resolution,
        ref_step_time_ms=1.0,
        ref_params=count_params(spec),
        reward_w=config.reward_w,
        reward_v=config.reward_v,
        threads=cpus_per_trial(config, profile),
        timing_min_steps=config.timing_steps or (10 if profile.kind == "cpu" else 20),
        timing_budget_s=config.timing_budget or (3.0 if profile.kind == "cpu" else 10.0),
        timing_threads=1 if profile.kind == "cpu" else None,
    )
    stored_ref = (stored or {}).get("reference")
    if stored_ref and stored_ref.get("step_time_ms"):
        timing = stored_ref.get("timing", {})
        step_ms = float(stored_ref["step_time_ms"])
    else:
        measured = time_reference(spec, context)
        if not measured.ok or measured.median_ms is None:
            raise ConfigError(
                f"the reference model {name!r} could not be timed on {config.hardware}: "
                f"{measured.reason}; pass a smaller --reference or --timing-batch"
            )
        timing, step_ms = measured.to_dict(), measured.median_ms
    context = dataclasses.replace(context, ref_step_time_ms=step_ms)
    return RunSetup(space, data, context, name, spec, timing)
