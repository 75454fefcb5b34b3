"""Everything a run needs before its first candidate: space, data, recipe, hardware, reference.

Set-up runs in three steps so that every check comes before any work: :func:`check_settings`
resolves what needs no data (hardware, space, reference model) in milliseconds and refuses
constraints that no spec of the space can meet (from the analytic cost of the space's
smallest spec); :func:`prepare_setup` adds the data, the recipe and the timing settings and
repeats that check with the data's class count and resolution; :func:`time_reference_once`
adds the reference timing.

The reference model (by default the space's backbone) is timed once per run, on the run's
hardware, and stored with the run: every candidate's step time and parameter count are
normalized by it, so rewards within a run are comparable, also across a resume. A continued
run re-uses the stored timing and never measures it again.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas.run.proxy_file import apply_proxy_fields
from nas.run.settings import MIN_RESOLUTION, ConfigError
from nas.search.config import SearchConfig
from nas.search.record import Reference, RunRecord
from nas.search.reward import RewardConfig
from nas.search.surrogate import Surrogate
from nas.search.trial import TrialContext
from proxy_train.data import DataSplits
from proxy_train.hardware import PROFILES, HardwareProfile, resolve_hardware
from proxy_train.recipe import Recipe
from proxy_train.timing import StepTiming
from search_space.bounds import smallest_cost
from search_space.codec import encode
from search_space.cost import count_params
from search_space.messages import counted
from search_space.resolve import resolve_arch
from search_space.space import SearchSpace
from search_space.space_files import load_space, space_to_dict
from search_space.spec import ArchSpec

TimeReference = Callable[[ArchSpec, TrialContext], StepTiming]
"""Times the reference model on the run's hardware."""
Say = Callable[[str], None]
"""Prints one progress line of the set-up."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the settings resolve to without any data: checked before anything is written."""

    profile: HardwareProfile
    space: SearchSpace
    reference_name: str
    reference_spec: ArchSpec


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

    def reference_record(self) -> Reference:
        return Reference(name=self.reference_name, arch=encode(self.reference_spec),
                         params=int(self.context.reward.ref_params),
                         step_time_ms=self.context.reward.ref_step_time,
                         timing=dict(self.reference_timing))

    def record(self, run_id: str, config: SearchConfig) -> RunRecord:
        """The run's ``run.json``: ``config`` and what the set-up resolved it to."""
        data = self.data
        return RunRecord(
            run_id=run_id,
            config=config.to_dict(),
            space=space_to_dict(self.space),
            recipe=self.context.recipe.to_dict(),
            data={
                "name": data.name,
                "num_classes": data.num_classes,
                "resolution": data.resolution,
                "train": int(data.train.labels.shape[0]),
                "minival": int(data.minival.labels.shape[0]),
                "cache": data.cache,
            },
            timing={"batch": self.context.timing_batch,
                    "resolution": self.context.timing_resolution},
            reference=self.reference_record(),
        )


def hardware_profile(config: SearchConfig) -> HardwareProfile:
    """The run's hardware profile. Locally the hardware must be present; on a cluster the
    nodes that have it are chosen by the executor. A surrogate run measures nothing on it, so
    any known profile will do (it is only recorded)."""
    if config.address is None and config.objective == "train":
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
    recipe = apply_proxy_fields(recipe, config.proxy)
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
    return 1 if profile.kind == "cuda" or config.objective == "surrogate" else 2


def reference_of(config: SearchConfig, space: SearchSpace) -> tuple[str, ArchSpec]:
    name = config.reference or space.reference
    if not name:
        raise ConfigError(
            f"space {space.name!r} names no reference model; pass --reference PRESET|ARCH|FILE "
            "or give the space file a 'reference' key"
        )
    return name, resolve_arch(name)


def check_settings(config: SearchConfig) -> Plan:
    """Resolve and check what needs no data (hardware, space, reference, constraints as far
    as they are known without the data): milliseconds."""
    profile = hardware_profile(config)
    space = load_space(config.space)
    name, spec = reference_of(config, space)
    check_reachable(config, space, None, config.timing_resolution)
    return Plan(profile, space, name, spec)


def prepare_setup(config: SearchConfig, plan: Plan, data: DataSplits) -> RunSetup:
    """The run's set-up without the reference timing; refuses unreachable constraints."""
    profile = plan.profile
    recipe = default_recipe(config, profile)
    spec = dataclasses.replace(plan.reference_spec, num_classes=data.num_classes)
    timing_resolution = config.timing_resolution or data.resolution
    check_reachable(config, plan.space, data.num_classes, timing_resolution)
    context = TrialContext(
        recipe=recipe,
        hardware=config.hardware,
        timing_batch=config.timing_batch or profile.timing_batch,
        timing_resolution=timing_resolution,
        reward=RewardConfig(w=config.reward_w, v=config.reward_v,
                            estimate=config.reward_accuracy,
                            ref_step_time=1.0,  # set by time_reference_once
                            ref_params=count_params(spec), reference_arch=encode(spec)),
        threads=cpus_per_trial(config, profile),
        timing_min_steps=config.timing_steps or (10 if profile.kind == "cpu" else 20),
        timing_budget_s=config.timing_budget or (3.0 if profile.kind == "cpu" else 10.0),
        timing_threads=1 if profile.kind == "cpu" else None,
        surrogate=(Surrogate(plan.space, spec, timing_resolution)
                   if config.objective == "surrogate" else None),
    )
    return RunSetup(plan.space, data, context, plan.reference_name, spec, {})


def time_reference_once(setup: RunSetup, stored: RunRecord | None,
                        time_reference: TimeReference, say: Say) -> RunSetup:
    """``setup`` with its reference step time: the stored one of a continued run (never
    measured again), else measured now."""
    name, context = setup.reference_name, setup.context
    if stored is not None:
        reference = stored.reference
        arch = encode(setup.reference_spec)
        if (reference.arch or arch) != arch:
            raise ConfigError(f"the reference {name!r} is now {arch}, but the run stored in "
                              f"--out was normalized by {reference.arch}; use another --out")
        step_ms, timing = float(reference.step_time_ms), dict(reference.timing or {})
        say(f"reference {name}: {step_ms:.2f} ms per step (stored with the run)")
    else:
        say(f"timing the reference {name} on {context.hardware} ..." if context.surrogate is None
            else f"surrogate step time of the reference {name} ...")
        measured = time_reference(setup.reference_spec, context)
        if not measured.ok or measured.median_ms is None:
            raise ConfigError(
                f"the reference model {name!r} could not be timed on {context.hardware}: "
                f"{measured.reason}; pass a smaller --reference or --timing-batch"
            )
        step_ms, timing = measured.median_ms, measured.to_dict()
        say(f"reference {name}: {step_ms:.2f} ms per step")
    context = dataclasses.replace(
        context, reward=dataclasses.replace(context.reward, ref_step_time=step_ms))
    return dataclasses.replace(setup, context=context, reference_timing=timing)


def check_reachable(config: SearchConfig, space: SearchSpace, num_classes: int | None,
                    resolution: int | None) -> None:
    """Refuse ``--max-params`` / ``--max-macs`` below the space's smallest spec: no candidate
    could ever be trained. Before the data is loaded (``num_classes`` None) a single class
    gives a lower bound, and the MACs are checked only if the resolution is known."""
    if config.max_params is None and (config.max_macs is None or resolution is None):
        return
    classes = f"with {counted(num_classes, 'class', 'classes')}" if num_classes else "even with a single class"
    params, macs = smallest_cost(space, num_classes or 1, resolution or MIN_RESOLUTION)
    if config.max_params is not None and params > config.max_params:
        raise ConfigError(
            f"--max-params {config.max_params:,} is below the smallest spec of space "
            f"{space.name!r} ({params:,} params {classes}): no candidate fits; raise "
            "--max-params or choose a smaller space")
    if config.max_macs is not None and resolution is not None and macs > config.max_macs:
        raise ConfigError(
            f"--max-macs {config.max_macs:,} is below the smallest spec of space "
            f"{space.name!r} ({macs:,} MACs at resolution {resolution}): no candidate fits; "
            "raise --max-macs or choose a smaller space")
