"""The summary charts of rollouts as inline SVG — shared by the static report page
(``gymbus report --html``) and the viewer's plots page (``gymbus view``).

:class:`ChartData` is collected one rollout at a time in bounded memory (fixed histogram
bins; two floats per rollout for the reward-over-time chart). :func:`charts_html` renders
it: reward distributions per environment and per core capability, failures by cause, the
latency histogram, mean reward over time and per weight version. Every string that comes
from rollouts is HTML-escaped; the SVG uses presentation attributes only (no ``style``),
so it passes a strict Content-Security-Policy.
"""

from __future__ import annotations

import html
import math
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gymbus.report import metadata_labels
from gymbus.runtime.messages import AssistantMessage
from gymbus.runtime.rollout import Rollout

REWARD_EDGES: tuple[float, ...] = tuple(i / 10 for i in range(11))
"""Reward bins: tenths of [0, 1]; rewards outside go to a below / above bin."""
LATENCY_EDGES: tuple[float, ...] = tuple(10 ** (i / 4) for i in range(-12, 17))
"""Latency bins: four per decade from 1 ms to 10⁴ s."""
TIME_BINS = 24
"""Bars of the reward-over-time chart (equal spans of wall-clock start time)."""

Bar = tuple[str, str, float]
"""(tick label, tooltip, value) of one bar of a chart."""


def escape(value: object) -> str:
    """HTML-escape anything interpolated into a page (text and attribute values)."""
    return html.escape(str(value), quote=True)


@dataclass(slots=True)
class BinCounts:
    """Counts of values in fixed bins ``[edges[i], edges[i+1])`` (the last bin closed),
    plus the values below the first edge and above the last; non-finite values are
    ignored."""

    edges: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    below: int = 0
    above: int = 0

    def __post_init__(self) -> None:
        if len(self.edges) < 2 or list(self.edges) != sorted(self.edges):
            raise ValueError("need at least two edges, in increasing order")
        self.counts = [0] * (len(self.edges) - 1)

    def add(self, value: float) -> None:
        if not math.isfinite(value):
            return
        if value < self.edges[0]:
            self.below += 1
        elif value > self.edges[-1]:
            self.above += 1
        else:
            self.counts[min(bisect_right(self.edges, value) - 1, len(self.counts) - 1)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts) + self.below + self.above

    def bars(self, label: Callable[[float], str], *, trim: bool = False) -> list[Bar]:
        """The bars of a histogram: the below / above bins only when not empty; with
        ``trim``, also without the empty bins before the first and after the last value."""
        bars: list[Bar] = []
        if self.below:
            first = label(self.edges[0])
            bars.append((f"<{first}", f"below {first}: {self.below}", self.below))
        for i, count in enumerate(self.counts):
            low, high = label(self.edges[i]), label(self.edges[i + 1])
            bars.append((low, f"{low} to {high}: {count}", count))
        if self.above:
            last = label(self.edges[-1])
            bars.append((f">{last}", f"above {last}: {self.above}", self.above))
        if trim:
            counted = [i for i, bar in enumerate(bars) if bar[2]]
            bars = bars[counted[0] : counted[-1] + 1] if counted else []
        return bars


def weight_version(rollout: Rollout) -> str | None:
    """The weight version of the rollout's last policy turn, if its server reported one."""
    for message in reversed(rollout.messages):
        if isinstance(message, AssistantMessage) and message.generation is not None:
            return message.generation.weight_version
    return None


@dataclass(slots=True)
class ChartData:
    """What the charts need, collected while streaming rollouts."""

    rollouts: int = 0
    rewards: dict[str, BinCounts] = field(default_factory=dict)
    """Rewards of scored rollouts, per environment."""
    env_failed: Counter[str] = field(default_factory=Counter)
    capability_rewards: dict[str, BinCounts] = field(default_factory=dict)
    """Rewards of scored rollouts, per core capability they claim."""
    failures: Counter[str] = field(default_factory=Counter)
    """Failed rollouts by failure kind."""
    latency: BinCounts = field(default_factory=lambda: BinCounts(LATENCY_EDGES))
    """``timing.wall_s`` of all rollouts."""
    started: array[float] = field(default_factory=lambda: array("d"))
    started_rewards: array[float] = field(default_factory=lambda: array("d"))
    """Start time and reward of each scored rollout (the reward-over-time chart)."""
    by_weight_version: dict[str, list[float]] = field(default_factory=dict)
    """Weight version → [scored rollouts, sum of rewards], in order of first appearance."""

    def add(self, rollout: Rollout) -> None:
        self.add_values(
            env=rollout.env,
            capabilities=metadata_labels(rollout.metadata, "core_capabilities"),
            reward=rollout.reward if rollout.status == "scored" else None,
            failure_kind=(
                (rollout.failure.kind if rollout.failure else "unknown")
                if rollout.status == "failed"
                else None
            ),
            wall_s=rollout.timing.wall_s,
            started_at=rollout.timing.started_at,
            weight_version=weight_version(rollout),
        )

    def add_values(
        self,
        *,
        env: str,
        capabilities: Iterable[object],
        reward: float | None,
        failure_kind: str | None,
        wall_s: float | None,
        started_at: float | None,
        weight_version: str | None,
    ) -> None:
        """Add one rollout given by its values (the viewer keeps rows, not rollouts)."""
        self.rollouts += 1
        rewards = self.rewards.setdefault(env, BinCounts(REWARD_EDGES))
        if failure_kind is not None:
            self.failures[failure_kind] += 1
            self.env_failed[env] += 1
        elif reward is not None:
            rewards.add(reward)
            for capability in dict.fromkeys(str(c) for c in capabilities):
                self.capability_rewards.setdefault(capability, BinCounts(REWARD_EDGES)).add(reward)
            if started_at is not None and math.isfinite(started_at) and math.isfinite(reward):
                self.started.append(started_at)
                self.started_rewards.append(reward)
            if weight_version is not None and math.isfinite(reward):
                tally = self.by_weight_version.setdefault(weight_version, [0.0, 0.0])
                tally[0] += 1
                tally[1] += reward
        if wall_s is not None:
            self.latency.add(wall_s)


def bar_chart(
    title: str,
    bars: Sequence[Bar],
    *,
    color: str,
    slot: int = 44,
    value_label: Callable[[float], str] = lambda v: f"{v:g}",
    floor: float = 0.0,
    max_ticks: int = 16,
) -> str:
    """An inline SVG bar chart: one bar per ``(tick, tooltip, value)``, its value above;
    the tallest bar is ``max(values, floor)`` high ("no data" when that is not positive).
    With more than ``max_ticks`` bars, only every n-th tick label is written (the tooltip
    of each bar still names it)."""
    height, top, bottom, left = 170, 16, 30, 8
    plot_h = height - top - bottom
    width = left * 2 + slot * max(len(bars), 3)
    peak = max((value for _, _, value in bars), default=0.0)
    peak = max(peak, floor) if bars else 0.0
    base = top + plot_h
    every = -(-len(bars) // max_ticks) if bars else 1
    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<line x1="{left}" y1="{base}" x2="{width - left}" y2="{base}" stroke="#999"/>',
    ]
    if not peak > 0:
        out.append(
            f'<text class="muted" x="{width / 2:g}" y="{base / 2:g}" '
            'text-anchor="middle">no data</text>'
        )
    for i, (tick, tip, value) in enumerate(bars if peak > 0 else ()):
        x = left + i * slot
        middle = x + slot / 2
        h = plot_h * max(value, 0) / peak
        out.append(
            f"<g><title>{escape(tip)}</title>"
            f'<rect x="{x + 3}" y="{base - h:.1f}" width="{slot - 6}" height="{h:.1f}" '
            f'fill="{escape(color)}"/>'
            f'<text x="{middle:g}" y="{base - h - 3:.1f}" text-anchor="middle">'
            f"{escape(value_label(value)) if value else ''}</text>"
            f'<text x="{middle:g}" y="{base + 13}" text-anchor="middle">'
            f"{escape(tick) if i % every == 0 else ''}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def _seconds(value: float) -> str:
    return f"{value * 1000:.2g}ms" if value < 1 else f"{value:.2g}s"


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>"


def _reward_bars(rewards: BinCounts) -> list[Bar]:
    """Reward bins labelled by their lower edge; the last, closed bin as ``0.9-1``."""
    bars = rewards.bars(lambda edge: f"{edge:g}")
    top = f"{rewards.edges[-2]:g}"
    return [
        (f"{tick}–{rewards.edges[-1]:g}" if tick == top else tick, tip, value)
        for tick, tip, value in bars
    ]


def _over_time(charts: ChartData) -> list[Bar]:
    """Mean reward of the scored rollouts started in each of ``TIME_BINS`` equal spans."""
    if not charts.started:
        return []
    first, last = min(charts.started), max(charts.started)
    span = (last - first) / TIME_BINS or 1.0
    sums = [0.0] * TIME_BINS
    counts = [0] * TIME_BINS
    for start, reward in zip(charts.started, charts.started_rewards, strict=True):
        i = min(int((start - first) / span), TIME_BINS - 1)
        sums[i] += reward
        counts[i] += 1
    bars: list[Bar] = []
    for i, (total, n) in enumerate(zip(sums, counts, strict=True)):
        if n:
            offset = i * span
            tick = f"+{offset:.0f}s" if span >= 1 else f"+{offset:.2f}s"
            bars.append((tick, f"{tick}: mean reward {total / n:.3f} over {n}", total / n))
    return bars


def _mean(value: float) -> str:
    return f"{value:.2f}"


def charts_html(charts: ChartData) -> str:
    """The chart sections (headings and figures) of :class:`ChartData`."""
    out = ['<h2>reward distribution per environment</h2><div class="charts">']
    for env, rewards in sorted(charts.rewards.items()):
        caption = (
            f"{env}: rewards of {rewards.total} scored rollouts in bins of 0.1 (lower edge "
            f"shown; the last bin, 0.9–1, includes 1); {charts.env_failed[env]} failed (no reward)"
        )
        out.append(
            _figure(caption, bar_chart(f"rewards of {env}", _reward_bars(rewards), color="#3b7dd8"))
        )
    if charts.capability_rewards:
        out.append('</div><h2>reward distribution per core capability</h2><div class="charts">')
        for capability, rewards in sorted(charts.capability_rewards.items()):
            caption = f"{capability}: rewards of {rewards.total} scored rollouts claiming it"
            svg = bar_chart(f"rewards of {capability}", _reward_bars(rewards), color="#7a5bd8")
            out.append(_figure(caption, svg))
    out.append('</div><h2>failures and latency</h2><div class="charts">')
    failures: list[Bar] = [(kind, f"{kind}: {n}", n) for kind, n in sorted(charts.failures.items())]
    failed = sum(charts.failures.values())
    out.append(
        _figure(
            f"failed rollouts by cause ({failed} of {charts.rollouts})",
            bar_chart("failures by cause", failures, color="#d8563b", slot=72),
        )
    )
    out.append(
        _figure(
            "latency: rollouts by wall time (bins of a quarter decade, lower edge shown)",
            bar_chart(
                "latency histogram", charts.latency.bars(_seconds, trim=True), color="#4a9a5c"
            ),
        )
    )
    out.append('</div><h2>reward over time</h2><div class="charts">')
    out.append(
        _figure(
            f"mean reward of scored rollouts by start time ({TIME_BINS} equal spans from the "
            "first start; empty spans omitted)",
            bar_chart(
                "reward over time",
                _over_time(charts),
                color="#3b7dd8",
                value_label=_mean,
                floor=1.0,
                max_ticks=8,
            ),
        )
    )
    if charts.by_weight_version:
        versions: list[Bar] = [
            (version, f"{version}: mean reward {s / n:.3f} over {n:.0f}", s / n)
            for version, (n, s) in charts.by_weight_version.items()
        ]
        out.append(
            _figure(
                "mean reward of scored rollouts per policy weight version (of the last turn)",
                bar_chart(
                    "reward by weight version",
                    versions,
                    color="#d89a3b",
                    value_label=_mean,
                    floor=1.0,
                ),
            )
        )
    out.append("</div>")
    return "".join(out)
