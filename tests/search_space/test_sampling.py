"""Contracts of ``search_space.sampling``: sampling, decisions, membership, mutation, size."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from search_space.cost import count_params
from search_space.errors import ConstraintError, SpaceError
from search_space.presets import get_preset
from search_space.sampling import (
    active_decisions,
    check_constraints,
    check_in_space,
    decisions,
    from_choices,
    mutate,
    sample,
    sample_within,
    space_size,
    to_choices,
)
from search_space.space import SearchSpace, StageChoices
from search_space.space_files import SHIPPED_SPACES, load_space
from search_space.spec import ArchSpec

V2S = get_preset("efficientnetv2-s").spec


def tiny_space() -> SearchSpace:
    """Small enough to enumerate, yet with every feature: two trailing optional stages, a
    stage with one block type, SE choices for one block type only, fixed and ranged layers."""
    return SearchSpace(
        name="tiny", description="", stem_channels=8, head_channels=16,
        stages=(
            StageChoices(8, 1, ("fused", "mbconv"), (1, 2), kernels=(3,), expansions=(1, 4),
                         se_fused=(0.0,), se_mbconv=(0.0, 0.25)),
            StageChoices(16, 2, ("mbconv",), (1, 1), kernels=(3, 5), expansions=(4,),
                         se_mbconv=(0.25, 0.5), optional=True),
            StageChoices(24, 2, ("fused",), (1, 3), kernels=(3,), expansions=(1,),
                         optional=True),
        ),
    )


def all_spaces() -> list[SearchSpace]:
    return [load_space(name) for name in SHIPPED_SPACES] + [tiny_space()]


# --- sampling -------------------------------------------------------------------------------

def test_same_seed_same_spec_and_random_is_the_same_path() -> None:
    for space in all_spaces():
        assert sample(space, 7) == sample(space, 7) == sample(space, random.Random(7))
        assert len({sample(space, seed) for seed in range(20)}) >= 15
    assert sample(load_space("v2s"), 3, num_classes=10).num_classes == 10


def test_samples_are_in_space_and_round_trip() -> None:
    for space in all_spaces():
        rng = random.Random(0)
        for _ in range(1000):
            spec = sample(space, rng)
            check_in_space(space, spec)
            choices = to_choices(space, spec)
            assert from_choices(space, choices) == spec
            assert list(choices) == [d.name for d in active_decisions(space, spec)]


def test_bad_source_is_rejected() -> None:
    with pytest.raises(SpaceError, match="must be an int seed"):
        sample(tiny_space(), "seed")  # type: ignore[arg-type]


def test_optuna_trial_drives_sample_unchanged() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for space in (load_space("paper"), tiny_space()):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(25):
            trial = study.ask()
            spec = sample(space, trial)
            check_in_space(space, spec)
            assert trial.params == to_choices(space, spec)
            study.tell(trial, float(len(spec.stages)))
        # define-by-run: dropped stages and other block types' SE are not asked
        assert len({len(t.params) for t in study.trials}) > 1


# --- decisions and choices ------------------------------------------------------------------

def test_decision_order_and_omitted_single_choices() -> None:
    names = [d.name for d in decisions(load_space("paper"))]
    assert names[:4] == ["s1.block", "s1.layers", "s1.kernel", "s1.expansion"]
    assert names[-5:] == ["s7.keep", "s7.block", "s7.layers", "s7.kernel", "s7.expansion"]
    assert len(names) == 29  # no SE decision: one SE ratio per block type
    tiny = {d.name: d.choices for d in decisions(tiny_space())}
    assert tiny == {
        "s1.block": ("fused", "mbconv"), "s1.layers": (1, 2), "s1.expansion": (1, 4),
        "s1.se_mbconv": (0.0, 0.25), "s2.keep": (True, False), "s2.kernel": (3, 5),
        "s2.se_mbconv": (0.25, 0.5), "s3.keep": (True, False), "s3.layers": (1, 2, 3),
    }


def test_presets_are_points_of_their_spaces() -> None:
    for space_name, preset in (("v2s", "efficientnetv2-s"), ("v2b0", "efficientnetv2-b0"),
                               ("paper", "efficientnet-b4")):
        space, spec = load_space(space_name), get_preset(preset).spec
        choices = to_choices(space, spec)
        assert from_choices(space, choices, num_classes=spec.num_classes) == spec
    assert to_choices(load_space("v2s"), V2S)["s6.layers"] == 15


def test_from_choices_rules() -> None:
    space = tiny_space()
    full = {d.name: d.choices[0] for d in decisions(space)}
    spec = from_choices(space, full)
    assert spec.stages[0].block == "fused" and len(spec.stages) == 3
    # s1.se_mbconv is inactive for a fused stage 1 and is ignored, as are dropped stages
    dropped = from_choices(space, {**full, "s2.keep": False, "s3.layers": 99})
    assert len(dropped.stages) == 1
    with pytest.raises(SpaceError, match="unknown decision 's1.kernel'"):
        from_choices(space, {**full, "s1.kernel": 3})
    with pytest.raises(SpaceError, match="missing decision 's1.layers'"):
        from_choices(space, {k: v for k, v in full.items() if k != "s1.layers"})
    with pytest.raises(SpaceError, match=r"decision 's1.layers': 3 not in \[1, 2\]"):
        from_choices(space, {**full, "s1.layers": 3})
    with pytest.raises(SpaceError, match=r"decision 's1.block': 'conv' not in \('fused', 'mbconv'\)"):
        from_choices(space, {**full, "s1.block": "conv"})
    with pytest.raises(SpaceError, match="decision 's1.layers': True"):
        from_choices(space, {**full, "s1.layers": True})
    # an integer SE ratio is the same value as its float
    spec = from_choices(space, {**full, "s1.block": "mbconv", "s1.se_mbconv": 0})
    assert spec.stages[0].se_ratio == 0.0


def test_check_in_space_messages() -> None:
    space = load_space("v2s")
    stages = list(V2S.stages)

    def with_stage(i: int, **changes: object) -> ArchSpec:
        new = list(stages)
        new[i - 1] = dataclasses.replace(new[i - 1], **changes)
        return dataclasses.replace(V2S, stages=tuple(new))

    cases = [
        (with_stage(3, kernel=7), r"stage 3: kernel 7 not in \(3, 5\)"),
        (with_stage(2, out_channels=40), "stage 2: out_channels 40 != 48 fixed by the backbone"),
        (with_stage(4, stride=1), "stage 4: stride 1 != 2 fixed by the backbone"),
        (with_stage(5, layers=20), r"stage 5: layers 20 not in \[5, 18\]"),
        (with_stage(1, expansion=2), r"stage 1: expansion 2 not in \(1, 4, 6\)"),
        (with_stage(1, se_ratio=0.25), r"stage 1: se_ratio 0.25 not in \(0.0,\) for fused"),
        (dataclasses.replace(V2S, stages=tuple(stages[:5])),
         "spec has 5 stages; space 'v2s' allows 6"),
        (dataclasses.replace(V2S, stem_channels=32), "stem_channels 32 != 24"),
        (dataclasses.replace(V2S, head_channels=1792), "head_channels 1792 != 1280"),
    ]
    for spec, message in cases:
        with pytest.raises(SpaceError, match=message):
            check_in_space(space, spec)
        with pytest.raises(SpaceError):
            to_choices(space, spec)
    paper = load_space("paper")
    b4 = get_preset("efficientnet-b4").spec
    check_in_space(paper, dataclasses.replace(b4, stages=b4.stages[:6]))
    with pytest.raises(SpaceError, match="spec has 5 stages; space 'paper' allows 6 to 7"):
        check_in_space(paper, dataclasses.replace(b4, stages=b4.stages[:5]))


# --- mutation -------------------------------------------------------------------------------

def test_mutate_changes_exactly_one_decision() -> None:
    rng = random.Random(1)
    for space in all_spaces():
        for seed in range(150):
            spec = sample(space, seed)
            child = mutate(space, spec, rng)
            check_in_space(space, child)
            assert child != spec and child.num_classes == spec.num_classes
            before, after = to_choices(space, spec), to_choices(space, child)
            changed = [k for k in before.keys() & after.keys() if before[k] != after[k]]
            assert len(changed) == 1
            if changed[0].endswith(".keep") or changed[0].endswith(".block"):
                continue  # may activate or deactivate dependent decisions
            assert before.keys() == after.keys()
    assert mutate(tiny_space(), sample(tiny_space(), 0), random.Random(0)) == mutate(
        tiny_space(), sample(tiny_space(), 0), random.Random(0))


def test_mutate_single_point_space_returns_the_spec() -> None:
    space = SearchSpace("one", "", 8, 16, (StageChoices(8, 1, ("fused",), (1, 1), kernels=(3,),
                                                        expansions=(1,)),))
    assert space_size(space) == 1 and decisions(space) == ()
    spec = sample(space, 0)
    assert mutate(space, spec, random.Random(0)) == spec


# --- size -----------------------------------------------------------------------------------

def test_space_size_matches_enumeration() -> None:
    space = tiny_space()
    ds = decisions(space)
    specs = set()
    for values in itertools.product(*(d.choices for d in ds)):
        spec = from_choices(space, dict(zip((d.name for d in ds), values)))
        check_in_space(space, spec)
        specs.add(spec)
    # stage 1: 2 layers x 2 expansions x (fused: 1 SE + mbconv: 2 SE) = 12
    # stage 2: 2 kernels x 2 SE = 4; stage 3: 3 layers; both optional
    assert space_size(space) == len(specs) == 12 * (1 + 4 * (1 + 3)) == 204


def test_space_size_of_shipped_spaces() -> None:
    per_layer = 2 * 2 * 3  # blocks x kernels x expansions (one SE ratio per block type)

    def product(layer_counts: list[int]) -> int:
        total = 1
        for n in layer_counts:
            total *= per_layer * n
        return total

    assert space_size(load_space("paper")) == product([4, 8, 8, 12, 12, 16]) * (1 + per_layer * 4)
    assert space_size(load_space("v2s")) == product([4, 7, 7, 10, 14, 23]) == 1_884_514_222_080
    assert space_size(load_space("v2b0")) == product([2, 3, 3, 4, 6, 9]) == 11_609_505_792
    assert space_size(load_space("paper")) == 86_299_046_313_984


# --- constraints ----------------------------------------------------------------------------

def test_check_constraints() -> None:
    check_constraints(V2S, max_params=21_458_488, max_macs=10**10)
    with pytest.raises(ConstraintError, match="^params 21,458,488 > max 20,000,000$"):
        check_constraints(V2S, max_params=20_000_000)
    with pytest.raises(ConstraintError, match=r"^macs [\d,]+ > max 1,000,000 at resolution 64$"):
        check_constraints(V2S, max_macs=1_000_000, resolution=64)
    with pytest.raises(ConstraintError, match="max_params 0 must be an integer >= 1"):
        check_constraints(V2S, max_params=0)


def test_sample_within() -> None:
    space = load_space("v2b0")
    limit = 7_000_000
    spec = sample_within(space, 0, max_params=limit)
    assert count_params(spec) <= limit
    assert spec == sample_within(space, 0, max_params=limit)
    with pytest.raises(SpaceError, match="no spec of space 'v2b0' fits after 20 tries"):
        sample_within(space, 0, max_params=1000, max_tries=20)


# --- cost parity ----------------------------------------------------------------------------

def test_analytic_params_equal_built_params(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from search_space import model as model_module

    # Weight initialisation does not change parameter counts and dominates the time on meta.
    monkeypatch.setattr(model_module, "init_weights", lambda model: None)
    for name in SHIPPED_SPACES:
        space = load_space(name)
        for seed in range(50):
            spec = sample(space, seed)
            with torch.device("meta"):
                built = model_module.build_model(spec)
            assert model_module.count_model_params(built) == count_params(spec), (name, seed)
