"""The conformance suite every search strategy passes (no training: a cheap objective)."""

from __future__ import annotations

import pytest

from nas.strategies import (
    STRATEGY_NAMES,
    Observation,
    Proposal,
    SpaceExhaustedError,
    StrategyError,
    make_strategy,
    proposal_for,
    replay,
)
from search_space.codec import encode
from search_space.cost import count_params
from search_space.errors import NasError
from search_space.sampling import check_in_space, space_size, to_choices
from search_space.space import SearchSpace, StageChoices
from search_space.space_files import load_space
from search_space.spec import ArchSpec

NAMES = list(STRATEGY_NAMES)
NUM_CLASSES = 10


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return load_space("v2b0")


def tiny_space() -> SearchSpace:
    """20 points, with a droppable last stage (conditional decisions)."""
    return SearchSpace(
        name="tiny", description="test space", stem_channels=8, head_channels=16,
        stages=(
            StageChoices(out_channels=8, stride=1, blocks=("fused", "mbconv"), layers=(1, 2),
                         kernels=(3,), expansions=(1,)),
            StageChoices(out_channels=16, stride=2, blocks=("mbconv",), layers=(1, 1),
                         kernels=(3, 5), expansions=(1, 4), optional=True),
        ),
    )


def objective(spec: ArchSpec) -> Observation:
    """Deterministic and cheap: a made-up accuracy from the decisions, real params."""
    params = count_params(spec)
    score = sum(0.01 * st.kernel + 0.005 * st.expansion + 0.002 * st.layers
                + (0.01 if st.block == "fused" else 0.0) for st in spec.stages)
    accuracy = min(0.99, 0.3 + score / (1 + len(spec.stages) * 0.1))
    step_time = 1.0 + spec.num_blocks * 0.1
    reward = accuracy * step_time ** -0.07 * (params / 5e6) ** -0.05
    return Observation.ok(reward, (accuracy, step_time, float(params)))


def run(name: str, space: SearchSpace, n: int, *, seed: int = 0, fail_every: int = 0,
        **kwargs: object) -> tuple[object, list[Proposal]]:
    strategy = make_strategy(name, space, seed=seed, num_classes=NUM_CLASSES, **kwargs)
    proposals = []
    for i in range(n):
        proposal = strategy.ask()
        failed = fail_every and i % fail_every == fail_every - 1
        strategy.tell(proposal, Observation.failed() if failed else objective(proposal.spec))
        proposals.append(proposal)
    return strategy, proposals


@pytest.mark.parametrize("name", NAMES)
def test_proposals_are_points_of_the_space(name: str, space: SearchSpace) -> None:
    _, proposals = run(name, space, 25)
    assert [p.number for p in proposals] == list(range(25))
    for p in proposals:
        check_in_space(space, p.spec)
        assert p.spec.num_classes == NUM_CLASSES
        assert dict(p.choices) == to_choices(space, p.spec)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_proposals_and_different_seed_differs(name: str,
                                                             space: SearchSpace) -> None:
    first = [encode(p.spec) for p in run(name, space, 25, seed=7)[1]]
    again = [encode(p.spec) for p in run(name, space, 25, seed=7)[1]]
    other = [encode(p.spec) for p in run(name, space, 25, seed=8)[1]]
    assert first == again
    assert first != other


@pytest.mark.parametrize("name", NAMES)
def test_failed_observations_are_tolerated(name: str, space: SearchSpace) -> None:
    _, proposals = run(name, space, 30, fail_every=3)
    assert len({encode(p.spec) for p in proposals}) == 30


@pytest.mark.parametrize("name", NAMES)
def test_all_failed_is_tolerated(name: str, space: SearchSpace) -> None:
    _, proposals = run(name, space, 25, fail_every=1)
    assert len({encode(p.spec) for p in proposals}) == 25


@pytest.mark.parametrize("name", NAMES)
def test_no_spec_is_proposed_twice(name: str, space: SearchSpace) -> None:
    _, proposals = run(name, space, 60)
    assert len({encode(p.spec) for p in proposals}) == 60


@pytest.mark.parametrize("name", NAMES)
def test_small_space_is_covered_then_exhausted(name: str) -> None:
    tiny = tiny_space()
    assert space_size(tiny) == 20
    strategy, proposals = run(name, tiny, 20)
    assert len({encode(p.spec) for p in proposals}) == 20
    with pytest.raises(SpaceExhaustedError, match="space 'tiny' exhausted: all 20"):
        strategy.ask()


@pytest.mark.parametrize("name", NAMES)
def test_allow_repeats_goes_past_the_space_size(name: str) -> None:
    _, proposals = run(name, tiny_space(), 30, allow_repeats=True)
    assert len(proposals) == 30
    assert len({encode(p.spec) for p in proposals}) <= 20


@pytest.mark.parametrize("name", NAMES)
def test_warm_start_replays_history_and_never_reproposes(name: str, space: SearchSpace) -> None:
    _, past = run(name, space, 20, seed=1, fail_every=4)
    history = [(p.spec, Observation.failed() if i % 4 == 3 else objective(p.spec))
               for i, p in enumerate(past)]
    resumed = make_strategy(name, space, seed=1, num_classes=NUM_CLASSES)
    assert replay(resumed, history) == 20
    told = {encode(s) for s, _ in history}
    fresh = []
    for _ in range(20):
        proposal = resumed.ask()
        fresh.append(proposal)
        resumed.tell(proposal, objective(proposal.spec))
    assert [p.number for p in fresh] == list(range(20, 40))
    assert not told & {encode(p.spec) for p in fresh}
    assert len({encode(p.spec) for p in fresh}) == 20


@pytest.mark.parametrize("name", NAMES)
def test_warm_start_is_deterministic(name: str, space: SearchSpace) -> None:
    _, past = run(name, space, 12, seed=2)
    history = [(p.spec, objective(p.spec)) for p in past]

    def resumed_asks() -> list[str]:
        strategy = make_strategy(name, space, seed=5, num_classes=NUM_CLASSES)
        replay(strategy, history)
        return [encode(strategy.ask().spec) for _ in range(5)]

    assert resumed_asks() == resumed_asks()


@pytest.mark.parametrize("name", NAMES)
def test_several_asks_in_flight(name: str, space: SearchSpace) -> None:
    strategy = make_strategy(name, space, seed=0, num_classes=NUM_CLASSES)
    seen: list[str] = []
    for _ in range(4):
        batch = [strategy.ask() for _ in range(6)]
        seen += [encode(p.spec) for p in batch]
        for p in reversed(batch):  # results come back out of order
            strategy.tell(p, objective(p.spec))
    assert len(set(seen)) == 24


@pytest.mark.parametrize("name", NAMES)
def test_telling_a_foreign_proposal(name: str, space: SearchSpace) -> None:
    """A spec the strategy never proposed (e.g. from another run) is learned and never proposed."""
    other = run("random", space, 3, seed=99)[1]
    strategy = make_strategy(name, space, seed=0, num_classes=NUM_CLASSES)
    for p in other:
        strategy.tell(proposal_for(space, p.spec, p.number), objective(p.spec))
    assert strategy.next_number == 3
    asked = [strategy.ask() for _ in range(10)]
    assert not {encode(p.spec) for p in other} & {encode(p.spec) for p in asked}


def test_unknown_strategy_lists_the_names(space: SearchSpace) -> None:
    with pytest.raises(StrategyError, match=r"unknown strategy 'bayes'; expected one of "
                                            r"\['random', 'rl', 'evolution', 'tpe', 'nsga2'\]"):
        make_strategy("bayes", space, seed=0)
    assert issubclass(StrategyError, NasError)


def test_unknown_option_is_named(space: SearchSpace) -> None:
    with pytest.raises(StrategyError, match="strategy 'rl' has no option 'population_size'"):
        make_strategy("rl", space, seed=0, population_size=3)
    make_strategy("evolution", space, seed=0, population_size=3, sample_size=2)


@pytest.mark.parametrize("bad", [dict(status="done"), dict(status="ok"),
                                 dict(status="ok", reward=float("nan")),
                                 dict(status="ok", reward=0.5, objectives=(1.0, 2.0))])
def test_observation_rules(bad: dict) -> None:
    with pytest.raises(StrategyError):
        Observation(**bad)


def test_nsga2_needs_objectives(space: SearchSpace) -> None:
    strategy = make_strategy("nsga2", space, seed=0, num_classes=NUM_CLASSES)
    proposal = strategy.ask()
    with pytest.raises(StrategyError, match="nsga2 needs objectives"):
        strategy.tell(proposal, Observation.ok(0.5))


def test_rl_policy_moves_towards_rewarded_choice(space: SearchSpace) -> None:
    strategy = make_strategy("rl", space, seed=0, num_classes=NUM_CLASSES, lr=0.1)
    before = strategy.probabilities()["s2.kernel"][5]
    for _ in range(30):
        p = strategy.ask()
        # Reward depends only on stage 2's kernel: 5 is good, 3 is bad.
        strategy.tell(p, Observation.ok(0.9 if p.spec.stages[1].kernel == 5 else 0.5))
    after = strategy.probabilities()["s2.kernel"][5]
    assert before == pytest.approx(0.5)
    assert after > 0.8


def test_rl_skips_failures_by_default(space: SearchSpace) -> None:
    strategy = make_strategy("rl", space, seed=0, num_classes=NUM_CLASSES)
    for _ in range(5):
        strategy.tell(strategy.ask(), Observation.failed())
    assert strategy.updates == 0
    assert strategy.probabilities()["s2.kernel"][5] == pytest.approx(0.5)


def test_evolution_population_ages(space: SearchSpace) -> None:
    strategy, proposals = run("evolution", space, 12, population_size=4, sample_size=2)
    assert len(strategy.population) == 4
    # The population is the four most recent ok results, oldest first.
    assert [spec for _, spec in strategy.population] == [p.spec for p in proposals[-4:]]
