"""A rollout report as one static, self-contained HTML page (``gymbus report --html``):
the summary tables plus the inline SVG charts of :mod:`gymbus.charts` — reward
distribution per environment and per capability, failures by cause, latency, reward over
time and per weight version — with inline CSS and no scripts or external resources.

The chart data is collected in the same streaming pass as the :class:`Report` (bounded
memory). Every string that comes from rollouts or file names is HTML-escaped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from gymbus.charts import ChartData, charts_html
from gymbus.charts import escape as _e
from gymbus.report import Report, ReportTally, Summary
from gymbus.runtime.sink import read_rollouts


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
        f"{tables}<section>{charts_html(charts)}</section></main></body></html>\n"
    )


def write_html(report: Report, charts: ChartData, path: str | os.PathLike[str]) -> None:
    """Write the page (UTF-8)."""
    Path(path).write_text(render_html(report, charts), encoding="utf-8")
