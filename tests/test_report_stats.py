"""pass@k, pass^k, the streaming mean and percentiles against hand-computed values and
brute force."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gymbus.report_stats import RunningMean, k_values, pass_at_k, pass_hat_k, percentile


def test_pass_at_k_and_pass_hat_k_by_hand() -> None:
    # 4 samples, 2 succeed; pairs: 6, of which 1 has no success and 1 has two successes
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    assert pass_at_k(4, 2, 1) == pass_hat_k(4, 2, 1) == pytest.approx(0.5)
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_hat_k(4, 3, 4) == 0.0


@pytest.mark.parametrize(("n", "k"), [(1, 1), (4, 2), (8, 3), (16, 16)])
def test_no_success_is_zero_and_all_successes_is_one(n: int, k: int) -> None:
    assert pass_at_k(n, 0, k) == pass_hat_k(n, 0, k) == 0.0
    assert pass_at_k(n, n, k) == pass_hat_k(n, n, k) == 1.0


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 2, 5), (4, 2, 0)])
def test_impossible_counts_are_rejected(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="need"):
        pass_at_k(n, c, k)
    with pytest.raises(ValueError, match="need"):
        pass_hat_k(n, c, k)


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n),
                                                      st.integers(1, n))))  # fmt: skip
def test_estimators_match_enumerating_every_draw(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    outcomes = [True] * c + [False] * (n - c)
    draws = list(itertools.combinations(outcomes, k))
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(d) for d in draws) / len(draws))
    assert pass_hat_k(n, c, k) == pytest.approx(sum(all(d) for d in draws) / len(draws))
    assert pass_hat_k(n, c, k) <= c / n + 1e-12 <= pass_at_k(n, c, k) + 2e-12


@pytest.mark.parametrize(
    ("largest", "ks"),
    [(0, []), (1, [1]), (2, [1, 2]), (6, [1, 2, 4, 6]), (8, [1, 2, 4, 8]), (9, [1, 2, 4, 8, 9])],
)
def test_k_values_are_powers_of_two_plus_the_largest_group(largest: int, ks: list[int]) -> None:
    assert k_values(largest) == ks


def test_percentiles_interpolate_linearly() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    assert percentile([float(i) for i in range(101)], 95) == pytest.approx(95.0)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile(values, 101)


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=50))
def test_percentiles_agree_with_the_inclusive_method_of_statistics(values: list[float]) -> None:
    ordered = sorted(values)
    # statistics' "inclusive" quantiles are the same linear interpolation (type 7)
    for q, expected in zip(
        range(1, 100), statistics.quantiles(values, n=100, method="inclusive"), strict=True
    ):
        assert percentile(ordered, q) == pytest.approx(expected, abs=1e-6)


def test_running_mean_and_standard_error_by_hand() -> None:
    mean = RunningMean()
    assert (mean.n, mean.std, mean.stderr) == (0, 0.0, 0.0)
    mean.add(1.0)
    assert (mean.mean, mean.std, mean.stderr) == (1.0, 0.0, 0.0)  # one value: no spread
    for value in (2.0, 3.0, 4.0):
        mean.add(value)
    assert mean.mean == 2.5
    assert mean.std == pytest.approx(math.sqrt(5 / 3))  # sample std: n - 1
    assert mean.stderr == pytest.approx(math.sqrt(5 / 3) / 2)


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=100))
def test_running_mean_agrees_with_statistics(values: list[float]) -> None:
    mean = RunningMean()
    for value in values:
        mean.add(value)
    assert mean.mean == pytest.approx(statistics.fmean(values), abs=1e-6)
    assert mean.std == pytest.approx(statistics.stdev(values), rel=1e-6, abs=1e-6)
    assert mean.stderr == pytest.approx(statistics.stdev(values) / math.sqrt(len(values)),
                                        rel=1e-6, abs=1e-6)  # fmt: skip
