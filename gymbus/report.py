"""Rollout reports: rewards, pass@k / pass^k, failures by cause, tokens and latency, per
environment, per core capability, per rollout structure and overall.

Reports are computed while streaming rollout files — only aggregates, per-group success
counts and latency samples are kept — and returned as pydantic models that the CLI,
JSON output and any later viewer share. Definitions:

- *success*: ``status == "scored"`` and ``reward >= success_threshold``. A failed rollout
  (infrastructure, ``reward: null``) counts as *not* successful within its group, and is
  also counted in ``failed``.
- *group*: the rollouts sharing ``(env, group_id)``; a rollout without ``group_id`` is a
  group of one. pass@k and pass^k (:mod:`gymbus.report_stats`) are averaged over the
  groups with at least ``k`` rollouts, for ``k`` in the powers of two up to the largest
  group plus its size.
- *reward mean ± stderr*: over scored rollouts; stderr is the sample standard deviation
  over ``sqrt(n)``, 0 for one rollout, null for none.
- *tokens*: totals and means over all rollouts (failed ones included), policy prompt and
  completion tokens and the simulated user's tokens (prompt + completion).
- *latency*: ``timing.wall_s`` of all rollouts; percentiles by linear interpolation.
- A rollout counts under every core capability and rollout structure its metadata
  claims; one claiming no structure counts under ``single-turn``, one claiming no
  capability under no capability.
"""

from __future__ import annotations

import math
import os
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gymbus.envs.metadata import CORE_CAPABILITIES, ROLLOUT_STRUCTURES
from gymbus.report_stats import RunningMean, k_values, pass_at_k, pass_hat_k, percentile
from gymbus.runtime.messages import Frozen
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.sink import read_rollouts

SINGLE_TURN = "single-turn"
"""The rollout structure of rollouts whose metadata claims none."""

RolloutSource = Rollout | str | os.PathLike[str]


class PassK(Frozen):
    k: int
    groups: int
    """Groups with at least ``k`` rollouts: the ones averaged."""
    pass_at_k: float
    """Chance that at least one of k samples of a task succeeds."""
    pass_hat_k: float
    """Chance that all k samples of a task succeed (pass^k)."""


class TokenCount(Frozen):
    total: int
    mean: float | None
    """Per rollout; null when there are no rollouts."""


class Tokens(Frozen):
    prompt: TokenCount
    completion: TokenCount
    user: TokenCount
    """Tokens of an LLM-backed simulated user (prompt + completion)."""


class Latency(Frozen):
    """Seconds of ``timing.wall_s``; null when there are no rollouts."""

    p50: float | None
    p95: float | None
    p99: float | None


class Summary(Frozen):
    """The statistics of one slice of rollouts (overall, one environment, …)."""

    rollouts: int
    scored: int
    failed: int
    successes: int
    reward_mean: float | None
    reward_stderr: float | None
    groups: int
    pass_k: tuple[PassK, ...]
    failures: dict[str, int]
    """Failed rollouts by ``failure.kind``."""
    tokens: Tokens
    latency_s: Latency


class Report(Frozen):
    files: tuple[str, ...]
    rollouts: int
    success_threshold: float
    overall: Summary
    by_env: dict[str, Summary]
    by_capability: dict[str, Summary]
    by_structure: dict[str, Summary]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(slots=True)
class _Slice:
    """Streaming aggregates of one slice."""

    rollouts: int = 0
    scored: int = 0
    failed: int = 0
    successes: int = 0
    reward: RunningMean = field(default_factory=RunningMean)
    groups: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """(env, group_id) → [rollouts, successes]."""
    singles: Counter[int] = field(default_factory=Counter)
    """Rollouts without a group, by success (0/1): groups of one."""
    failures: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    user_tokens: int = 0
    wall_s: array[float] = field(default_factory=lambda: array("d"))

    def add(self, rollout: Rollout, success: bool) -> None:
        self.rollouts += 1
        if rollout.status == "scored":
            self.scored += 1
            if rollout.reward is not None:
                self.reward.add(rollout.reward)
        else:
            self.failed += 1
            self.failures[rollout.failure.kind if rollout.failure else "unknown"] += 1
        self.successes += success
        if rollout.group_id is None:
            self.singles[int(success)] += 1
        else:
            tally = self.groups.setdefault((rollout.env, rollout.group_id), [0, 0])
            tally[0] += 1
            tally[1] += success
        self.prompt_tokens += rollout.usage.prompt_tokens
        self.completion_tokens += rollout.usage.completion_tokens
        self.user_tokens += rollout.user_usage.total_tokens
        self.wall_s.append(rollout.timing.wall_s)

    def summary(self) -> Summary:
        sizes: Counter[tuple[int, int]] = Counter(
            (n, c) for n, c in self.groups.values()
        )  # (rollouts, successes) → number of groups
        sizes.update({(1, c): count for c, count in self.singles.items()})
        ks = k_values(max((n for n, _ in sizes), default=0))
        pass_k = []
        for k in ks:
            eligible = [(n, c, count) for (n, c), count in sizes.items() if n >= k]
            groups = sum(count for _, _, count in eligible)
            at = sum(pass_at_k(n, c, k) * count for n, c, count in eligible)
            hat = sum(pass_hat_k(n, c, k) * count for n, c, count in eligible)
            pass_k.append(PassK(k=k, groups=groups, pass_at_k=at / groups, pass_hat_k=hat / groups))
        walls = sorted(w for w in self.wall_s if math.isfinite(w))
        n = self.rollouts
        mean = _finite(self.reward.mean) if self.reward.n else None  # null, not NaN

        def count(total: int) -> TokenCount:
            return TokenCount(total=total, mean=total / n if n else None)

        return Summary(
            rollouts=n,
            scored=self.scored,
            failed=self.failed,
            successes=self.successes,
            reward_mean=mean,
            reward_stderr=_finite(self.reward.stderr) if mean is not None else None,
            groups=sum(sizes.values()),
            pass_k=tuple(pass_k),
            failures=dict(sorted(self.failures.items())),
            tokens=Tokens(
                prompt=count(self.prompt_tokens),
                completion=count(self.completion_tokens),
                user=count(self.user_tokens),
            ),
            latency_s=Latency(
                p50=percentile(walls, 50), p95=percentile(walls, 95), p99=percentile(walls, 99)
            ),
        )


def metadata_labels(metadata: Mapping[str, Any], key: str) -> list[str]:
    """The labels a rollout's metadata claims on one dimension (a string or a list of
    them), each once, in order."""
    value = metadata.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return []
    return list(dict.fromkeys(str(v) for v in value))


def _ordered(slices: dict[str, _Slice], known: Iterable[str]) -> dict[str, Summary]:
    """Known labels in their canonical order first, then any others alphabetically."""
    order = {label: i for i, label in enumerate(known)}
    names = sorted(slices, key=lambda name: (order.get(name, len(order)), name))
    return {name: slices[name].summary() for name in names}


@dataclass(slots=True)
class ReportTally:
    """Builds a :class:`Report` one rollout at a time (``add``, ``add_file``, ``report``)."""

    success_threshold: float = 1.0
    files: list[str] = field(default_factory=list)
    overall: _Slice = field(default_factory=_Slice)
    by_env: dict[str, _Slice] = field(default_factory=dict)
    by_capability: dict[str, _Slice] = field(default_factory=dict)
    by_structure: dict[str, _Slice] = field(default_factory=dict)

    def add(self, rollout: Rollout) -> None:
        success = (
            rollout.status == "scored"
            and rollout.reward is not None
            and rollout.reward >= self.success_threshold
        )
        self.overall.add(rollout, success)
        self.by_env.setdefault(rollout.env, _Slice()).add(rollout, success)
        for capability in metadata_labels(rollout.metadata, "core_capabilities"):
            self.by_capability.setdefault(capability, _Slice()).add(rollout, success)
        for structure in metadata_labels(rollout.metadata, "rollout_structures") or [SINGLE_TURN]:
            self.by_structure.setdefault(structure, _Slice()).add(rollout, success)

    def add_file(self, path: str | os.PathLike[str]) -> None:
        """Add every rollout of a JSONL file. Raises ``RolloutFileError`` (file:line:
        field) on a bad line; a torn last line is skipped."""
        self.files.append(os.fspath(path))
        for _, rollout in read_rollouts(Path(path)):
            self.add(rollout)

    def report(self) -> Report:
        return Report(
            files=tuple(self.files),
            rollouts=self.overall.rollouts,
            success_threshold=self.success_threshold,
            overall=self.overall.summary(),
            by_env=_ordered(self.by_env, ()),
            by_capability=_ordered(self.by_capability, CORE_CAPABILITIES),
            by_structure=_ordered(self.by_structure, (*ROLLOUT_STRUCTURES, SINGLE_TURN)),
        )


def summarize(
    source: RolloutSource | Iterable[RolloutSource], *, success_threshold: float = 1.0
) -> Report:
    """The report of rollout files (paths) and/or :class:`Rollout` objects, streamed."""
    tally = ReportTally(success_threshold=success_threshold)
    items: Iterable[RolloutSource] = (
        [source] if isinstance(source, Rollout | str | os.PathLike) else source
    )
    for item in items:
        if isinstance(item, Rollout):
            tally.add(item)
        else:
            tally.add_file(item)
    return tally.report()
