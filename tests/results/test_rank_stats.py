"""Kendall's tau-b, Spearman's rho and their bootstrap, against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from results.rank_stats import agreement, average_ranks, bootstrap, kendall_tau, spearman_rho


def test_two_swapped_neighbours() -> None:
    # 10 pairs, the two swaps are discordant: (8 - 2) / 10. Rank differences 1,1,1,1,0:
    # rho = 1 - 6 * 4 / (5 * 24).
    x, y = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    assert float(kendall_tau(x, y)) == pytest.approx(0.6)
    assert float(spearman_rho(x, y)) == pytest.approx(0.8)


def test_ties_in_both_scorings() -> None:
    # Pairs: 3 concordant, 1 discordant, 1 tied in x only, 1 tied in y only:
    # tau-b = (3 - 1) / sqrt((6 - 1) * (6 - 1)) = 0.4.
    # Average ranks x: 1, 2.5, 2.5, 4 and y: 1, 4, 2.5, 2.5; Pearson of those = 2.25 / 4.5.
    x, y = [1, 2, 2, 3], [1, 3, 2, 2]
    assert float(kendall_tau(x, y)) == pytest.approx(0.4)
    assert average_ranks(x).tolist() == [1, 2.5, 2.5, 4]
    assert float(spearman_rho(x, y)) == pytest.approx(0.5)


def test_a_tie_spanning_three_values() -> None:
    # x ties the pairs of the first three; y has no tie. Of the 7 other pairs, the 4 that
    # involve 0.9 (candidate 4) are concordant and the 3 of 0.5 against 0.1 discordant:
    # tau-b = (4 - 3) / sqrt((10 - 3) * 10).
    x, y = [0.5, 0.5, 0.5, 0.9, 0.1], [3, 1, 2, 5, 4]
    assert float(kendall_tau(x, y)) == pytest.approx(1 / math.sqrt(70))


def test_reversed_and_constant_scorings() -> None:
    assert float(kendall_tau([1, 2, 3], [3, 2, 1])) == pytest.approx(-1.0)
    assert float(spearman_rho([1, 2, 3], [30, 20, 10])) == pytest.approx(-1.0)
    assert math.isnan(float(kendall_tau([1, 2, 3], [7, 7, 7])))
    assert math.isnan(float(spearman_rho([4, 4, 4], [1, 2, 3])))


def test_the_last_axis_is_the_candidates() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 4, (5, 8)), rng.integers(0, 4, (5, 8))
    rows = [float(kendall_tau(a, b)) for a, b in zip(x, y)]
    np.testing.assert_allclose(kendall_tau(x, y), rows)
    np.testing.assert_allclose(spearman_rho(x, y), [float(spearman_rho(a, b))
                                                    for a, b in zip(x, y)])


def test_bootstrap_is_deterministic_for_a_seed_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(0)
    truth = np.arange(12.0)
    noisy = truth + rng.normal(0, 3, 12)

    def tau(draws: np.ndarray) -> np.ndarray:
        return kendall_tau(truth[draws], noisy[draws])

    first, again = bootstrap(tau, 12, seed=7), bootstrap(tau, 12, seed=7)
    other = bootstrap(tau, 12, seed=8)
    assert first == again
    assert first[1:] != other[1:]
    assert first[0] == pytest.approx(float(kendall_tau(truth, noisy)))
    assert -1 <= first[1] < first[0] < first[2] <= 1


def test_agreement_averages_the_pairs_under_one_resample() -> None:
    a, b, c = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5], [1, 3, 2, 5, 4]
    both = agreement([(np.array(a), np.array(b)), (np.array(a), np.array(c))], seed=1)
    assert both.n == 5
    assert both.tau == pytest.approx((0.6 + float(kendall_tau(a, c))) / 2)
    assert both.rho == pytest.approx((0.8 + float(spearman_rho(a, c))) / 2)
    assert both.to_dict() == agreement([(np.array(a), np.array(b)),
                                        (np.array(a), np.array(c))], seed=1).to_dict()
