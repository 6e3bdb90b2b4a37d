"""A rollout report as one static, self-contained HTML page (``gymbus report --html``):
the summary tables plus inline SVG charts — reward distribution per environment, failures
by cause, latency — with inline CSS and no scripts or external resources.

The chart data is collected in the same streaming pass as the :class:`Report`, as fixed
histogram bins (bounded memory). Every string that comes from rollouts or file names is
HTML-escaped.
"""

from __future__ import annotations

import html
import math
import os
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gymbus.report import Report, ReportTally, Summary
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.sink import read_rollouts

REWARD_EDGES: tuple[float, ...] = tuple(i / 10 for i in range(11))
"""Reward bins: tenths of [0, 1]; rewards outside go to a below / above bin."""
LATENCY_EDGES: tuple[float, ...] = tuple(10 ** (i / 4) for i in range(-12, 17))
"""Latency bins: four per decade from 1 ms to 10⁴ s."""

Bar = tuple[str, str, int]
"""(tick label, tooltip, count) of one bar of a chart."""


def _e(value: object) -> str:
    """HTML-escape anything interpolated into the page (text and attribute values)."""
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


@dataclass(slots=True)
class ChartData:
    """What the charts need beyond the :class:`Report`, collected while streaming."""

    rewards: dict[str, BinCounts] = field(default_factory=dict)
    """Rewards of scored rollouts, per environment."""
    latency: BinCounts = field(default_factory=lambda: BinCounts(LATENCY_EDGES))
    """``timing.wall_s`` of all rollouts."""

    def add(self, rollout: Rollout) -> None:
        rewards = self.rewards.setdefault(rollout.env, BinCounts(REWARD_EDGES))
        if rollout.status == "scored" and rollout.reward is not None:
            rewards.add(rollout.reward)
        self.latency.add(rollout.timing.wall_s)


def collect(
    files: Iterable[str | os.PathLike[str]], *, success_threshold: float = 1.0
) -> tuple[Report, ChartData]:
    """The report and the chart data of rollout files, in one streaming pass. Raises
    ``RolloutFileError`` on a bad line, like :func:`gymbus.report.summarize`."""
    tally = ReportTally(success_threshold=success_threshold)
    charts = ChartData()
    for path in files:
        tally.files.append(os.fspath(path))
        for _, rollout in read_rollouts(Path(path)):
            tally.add(rollout)
            charts.add(rollout)
    return tally.report(), charts


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1d232a;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .4em}
.meta{color:#555;max-width:70em}code{font-size:.95em}
table{border-collapse:collapse;margin:.3em 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #dde2e7;padding:.25em .6em;vertical-align:top}
th{background:#f3f5f7;text-align:left;white-space:nowrap}td.n,th.n{text-align:right}
td.name{font-weight:600}.scroll{overflow-x:auto}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}figure{margin:0}
figcaption{font-size:.9em;color:#444;margin-bottom:.3em;max-width:36em}
svg text{font:10px system-ui,sans-serif;fill:#333}svg .muted{fill:#888}
"""


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(label: str, rows: dict[str, Summary]) -> str:
    """One summary table, with the columns of the terminal report."""
    if not rows:
        return '<p class="meta">none</p>'
    ks = sorted({p.k for s in rows.values() for p in s.pass_k})
    head = [label or "slice", "rollouts", "scored", "failed", "reward"]
    for k in ks:
        head.append(f"pass@{k}")
        if k > 1:  # pass^1 is pass@1
            head.append(f"pass^{k}")
    head += ["failures", "prompt tok", "compl. tok", "user tok", "p50 s", "p95 s", "p99 s"]
    text_columns = {0, len(head) - 7}
    out = ['<div class="scroll"><table><thead><tr>']
    for i, name in enumerate(head):
        out.append(f'<th scope="col"{"" if i in text_columns else " class=n"}>{_e(name)}</th>')
    out.append("</tr></thead><tbody>")
    for name, s in rows.items():
        by_k = {p.k: p for p in s.pass_k}
        passes: list[str] = []
        for k in ks:
            p = by_k.get(k)
            passes.append("—" if p is None else f"{p.pass_at_k:.3f}")
            if k > 1:
                passes.append("—" if p is None else f"{p.pass_hat_k:.3f}")
        reward = (
            "—" if s.reward_mean is None else f"{s.reward_mean:.3f} ± {_number(s.reward_stderr)}"
        )
        failures = ", ".join(f"{kind} {count}" for kind, count in s.failures.items()) or "—"
        cells = [
            *(str(n) for n in (s.rollouts, s.scored, s.failed)),
            reward,
            *passes,
            failures,
            *(_number(t.mean, 1) for t in (s.tokens.prompt, s.tokens.completion, s.tokens.user)),
            *(_number(v) for v in (s.latency_s.p50, s.latency_s.p95, s.latency_s.p99)),
        ]
        out.append(f'<tr><td class="name">{_e(name)}</td>')
        for i, cell in enumerate(cells, start=1):
            out.append(f"<td{'' if i in text_columns else ' class=n'}>{_e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def bar_chart(title: str, bars: Sequence[Bar], *, color: str, slot: int = 44) -> str:
    """An inline SVG bar chart: one bar per ``(tick, tooltip, count)``, its count above."""
    height, top, bottom, left = 170, 16, 30, 8
    plot_h = height - top - bottom
    width = left * 2 + slot * max(len(bars), 3)
    peak = max((count for _, _, count in bars), default=0)
    base = top + plot_h
    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(title)}">',
        f'<line x1="{left}" y1="{base}" x2="{width - left}" y2="{base}" stroke="#999"/>',
    ]
    if not peak:
        out.append(
            f'<text class="muted" x="{width / 2:g}" y="{base / 2:g}" '
            'text-anchor="middle">no data</text>'
        )
    for i, (tick, tip, count) in enumerate(bars if peak else ()):
        x = left + i * slot
        middle = x + slot / 2
        h = plot_h * count / peak
        out.append(
            f"<g><title>{_e(tip)}</title>"
            f'<rect x="{x + 3}" y="{base - h:.1f}" width="{slot - 6}" height="{h:.1f}" '
            f'fill="{_e(color)}"/>'
            f'<text x="{middle:g}" y="{base - h - 3:.1f}" text-anchor="middle">'
            f"{_e(count) if count else ''}</text>"
            f'<text x="{middle:g}" y="{base + 13}" text-anchor="middle">{_e(tick)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _seconds(value: float) -> str:
    return f"{value * 1000:.2g}ms" if value < 1 else f"{value:.2g}s"


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{_e(caption)}</figcaption>{svg}</figure>"


def _charts(report: Report, charts: ChartData) -> str:
    out = ['<h2>reward distribution per environment</h2><div class="charts">']
    for env, rewards in sorted(charts.rewards.items()):
        failed = report.by_env[env].failed if env in report.by_env else 0
        caption = (
            f"{env}: rewards of {rewards.total} scored rollouts in bins of 0.1 (lower edge "
            f"shown, the last includes 1); {failed} failed (no reward)"
        )
        bars = rewards.bars(lambda edge: f"{edge:g}")
        out.append(_figure(caption, bar_chart(f"rewards of {env}", bars, color="#3b7dd8")))
    out.append('</div><h2>failures and latency</h2><div class="charts">')
    failures = [(kind, f"{kind}: {n}", n) for kind, n in report.overall.failures.items()]
    out.append(
        _figure(
            f"failed rollouts by cause ({report.overall.failed} of {report.rollouts})",
            bar_chart("failures by cause", failures, color="#d8563b", slot=72),
        )
    )
    latency = charts.latency.bars(_seconds, trim=True)
    out.append(
        _figure(
            "latency: rollouts by wall time (bins of a quarter decade, lower edge shown)",
            bar_chart("latency histogram", latency, color="#4a9a5c"),
        )
    )
    out.append("</div>")
    return "".join(out)


def render_html(report: Report, charts: ChartData) -> str:
    """The whole page: a header, the summary tables and the charts."""
    files = ", ".join(f"<code>{_e(name)}</code>" for name in report.files) or "none"
    sections = [
        ("overall", "", {"all": report.overall}),
        ("by environment", "environment", report.by_env),
        (
            "by core capability (a rollout counts under each it claims)",
            "capability",
            report.by_capability,
        ),
        ("by rollout structure", "structure", report.by_structure),
    ]
    tables = "".join(
        f"<section><h2>{_e(title)}</h2>{_table(label, rows)}</section>"
        for title, label, rows in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>gymbus report</title><style>{_CSS}</style></head><body><main>"
        "<h1>gymbus report</h1>"
        f'<p class="meta">{report.rollouts} rollouts from {files}. Success = scored and '
        f"reward ≥ {_e(f'{report.success_threshold:g}')}; a failed rollout counts as "
        "unsuccessful in its group. pass@k/pass^k average the groups (same group_id; none = "
        "a group of one) with ≥ k rollouts. Reward: mean ± standard error over scored "
        "rollouts. Tokens: mean per rollout. Latency: wall seconds, linear interpolation.</p>"
        f"{tables}<section>{_charts(report, charts)}</section></main></body></html>\n"
    )


def write_html(report: Report, charts: ChartData, path: str | os.PathLike[str]) -> None:
    """Write the page (UTF-8)."""
    Path(path).write_text(render_html(report, charts), encoding="utf-8")
