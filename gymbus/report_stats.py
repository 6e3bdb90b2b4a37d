"""The statistics of a rollout report, as pure functions: pass@k and pass^k from group
success counts, a streaming mean with its standard error, and percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one group of ``n`` samples with ``c`` successes: the chance that
    at least one of ``k`` samples drawn without replacement succeeds,
    ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021, "Evaluating Large Language Models
    Trained on Code")."""
    _check(n, c, k)
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k of one group: the chance that all of ``k`` samples drawn without replacement
    succeed, ``C(c, k) / C(n, k)`` (Yao et al. 2024, τ-bench)."""
    _check(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check(n: int, c: int, k: int) -> None:
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")


def k_values(max_group_size: int) -> list[int]:
    """The k to report: the powers of two up to the largest group, plus its size
    (``6 → [1, 2, 4, 6]``); none for no groups."""
    ks: list[int] = []
    k = 1
    while k <= max_group_size:
        ks.append(k)
        k *= 2
    if max_group_size >= 1 and ks[-1] != max_group_size:
        ks.append(max_group_size)
    return ks


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0 to 100) of already sorted values by linear interpolation
    between the closest ranks (numpy's default, Hyndman & Fan type 7); None when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


@dataclass(slots=True)
class RunningMean:
    """Mean and sample variance in one pass (Welford's algorithm): numerically stable and
    O(1) memory, so a rollout file of any length can be summarized while streaming."""

    n: int = 0
    mean: float = 0.0
    _m2: float = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self._m2 += delta * (value - self.mean)

    @property
    def std(self) -> float:
        """Sample standard deviation (n - 1 in the denominator); 0 when n < 2."""
        return math.sqrt(self._m2 / (self.n - 1)) if self.n >= 2 else 0.0

    @property
    def stderr(self) -> float:
        """Standard error of the mean, ``std / sqrt(n)``; 0 when n < 2."""
        return self.std / math.sqrt(self.n) if self.n >= 2 else 0.0
