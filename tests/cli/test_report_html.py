"""`gymbus report --html` and :mod:`gymbus.report_html`: a page from files written by
`gymbus run`, escaping of hostile names, the histogram bins, and write errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from gymbus.charts import LATENCY_EDGES, REWARD_EDGES, BinCounts, ChartData, charts_html
from gymbus.cli import app
from gymbus.report_html import collect, render_html
from gymbus.runtime.rollout import Failure, Rollout, Timing

GYMBUS = str(Path(sys.executable).parent / "gymbus")
runner = CliRunner()
VOID = {"meta", "line", "rect", "br", "hr", "img", "input", "link"}


class _Page(HTMLParser):
    """Checks that tags nest and close, and keeps the text and tags seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1:] == [tag], (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack and self.stack[-1] in ("td", "th") and self.rows:
            self.rows[-1].append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    return parser


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"https?:", page)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()


def _charts(page: str) -> list[str]:
    """The titles of the page's SVG charts, in order (as written, escaped)."""
    return re.findall(r'<svg [^>]*aria-label="([^"]*)"', page)


def _run(tmp_path: Path, model: str, n: int, out: str) -> None:
    ran = subprocess.run(
        [GYMBUS, "run", "retail-orders", "--model", model, "--n", str(n), "--out", out],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert ran.returncode == 0, ran.stderr.decode()


def test_a_page_from_files_written_by_gymbus_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(tmp_path, "oracle", 30, "oracle.jsonl")
    _run(tmp_path, "null", 30, "null.jsonl")
    out = tmp_path / "report.html"
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", "oracle.jsonl", "null.jsonl", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert "retail-orders" in result.output  # the terminal tables are still printed
    page = out.read_text(encoding="utf-8")
    _assert_self_contained(page)
    parsed = _parse(page)
    assert parsed.tags.count("table") == 4  # overall, env, capability, structure
    # one env's and one capability's rewards, failures, latency, reward over time
    assert _charts(page) == [
        "rewards of retail-orders",
        "rewards of information-dependency",
        "failures by cause",
        "latency histogram",
        "reward over time",
    ]
    first_cells = [row[0] for row in parsed.rows if row]
    assert "all" in first_cells
    assert "retail-orders" in first_cells
    assert "information-dependency" in first_cells
    text = "".join(parsed.text)
    assert "oracle.jsonl" in text
    assert "null.jsonl" in text
    assert "60 rollouts" in text


def test_json_output_stays_one_object_with_html(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(_rollout("alpha", i, 1.0).to_json_line() for i in range(3)))
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(path), "--json", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["rollouts"] == 3
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def _rollout(
    env: str,
    sample: int,
    reward: float | None,
    *,
    wall_s: float = 1.0,
    labels: list[str] | None = None,
    failure: str = "",
) -> Rollout:
    return Rollout(
        episode_id=f"{env}#{sample}",
        env=env,
        task_id="t",
        seed=0,
        sample=sample,
        status="failed" if reward is None else "scored",
        reward=reward,
        failure=Failure(kind="tool", message=failure) if reward is None else None,
        metadata={"core_capabilities": labels or [], "rollout_structures": labels or []},
        timing=Timing(started_at=0, wall_s=wall_s),
    )


def test_names_from_rollouts_and_files_are_escaped(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    path = tmp_path / "a<script>b.jsonl"
    rollouts = [
        _rollout(evil, 0, 1.0, labels=[evil, '"><img src=x onerror=alert(1)>']),
        _rollout(evil, 1, None, labels=[evil], failure=evil),
        _rollout("plain & simple", 0, 0.5),
    ]
    path.write_bytes(b"".join(r.to_json_line() for r in rollouts))
    out = tmp_path / "evil.html"
    result = runner.invoke(app, ["report", str(path), "--html", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&lt;script&gt;b.jsonl" in page
    assert "plain &amp; simple" in page
    parsed = _parse(page)
    assert evil in [row[0] for row in parsed.rows if row]
    assert _charts(page) == [
        "rewards of &lt;script&gt;alert(1)&lt;/script&gt;",
        "rewards of plain &amp; simple",
        "rewards of &quot;&gt;&lt;img src=x onerror=alert(1)&gt;",
        "rewards of &lt;script&gt;alert(1)&lt;/script&gt;",
        "failures by cause",
        "latency histogram",
        "reward over time",
    ]


def test_histogram_bins_are_bounded_and_edges_inclusive() -> None:
    bins = BinCounts(REWARD_EDGES)
    for value in (0.0, 0.05, 0.1, 0.95, 1.0, -0.5, 2.0, float("nan")):
        bins.add(value)
    assert bins.counts == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert (bins.below, bins.above, bins.total) == (1, 1, 7)
    bars = bins.bars(lambda edge: f"{edge:g}")
    assert [bars[0][0], bars[-1][0], len(bars)] == ["<0", ">1", 12]
    latency = BinCounts(LATENCY_EDGES)
    for _ in range(10_000):
        latency.add(0.5)
    assert len(latency.counts) == len(LATENCY_EDGES) - 1
    assert [count for _, _, count in latency.bars(str, trim=True)] == [10_000]
    assert BinCounts(REWARD_EDGES).bars(str, trim=True) == []
    with pytest.raises(ValueError, match="increasing"):
        BinCounts((1.0, 0.0))


def test_an_empty_file_renders_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    page = render_html(*collect([path]))
    _assert_self_contained(page)
    parsed = _parse(page)
    assert _charts(page) == ["failures by cause", "latency histogram", "reward over time"]
    assert "".join(parsed.text).count("no data") == 3


def test_an_unwritable_page_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(_rollout("alpha", 0, 1.0).to_json_line())
    result = runner.invoke(app, ["report", str(path), "--html", str(tmp_path / "no" / "x.html")])
    assert result.exit_code == 2
    assert "cannot write" in result.output


def test_reward_over_time_and_per_weight_version() -> None:
    charts = ChartData()
    for i in range(48):  # two spans per bar; the first half rewarded 0, the second 1
        charts.add_values(
            env="alpha",
            capabilities=["schema-adherence"],
            reward=float(i >= 24),
            failure_kind=None,
            wall_s=1.0,
            started_at=1000.0 + i,
            weight_version=f"v{i // 24}",
        )
    charts.add_values(
        env="alpha",
        capabilities=[],
        reward=None,
        failure_kind="model",
        wall_s=None,
        started_at=None,
        weight_version="v9",
    )
    page = charts_html(charts)
    titles = _charts(page)
    assert titles[-2:] == ["reward over time", "reward by weight version"]
    over_time = page[page.index('aria-label="reward over time"') :]
    tips = re.findall(r"<title>([^<]*)</title>", over_time.split("</svg>")[0])
    assert tips[0] == "+0s: mean reward 0.000 over 2"
    assert tips[-1] == "+45s: mean reward 1.000 over 2"
    assert sum(int(tip.rsplit(" ", 1)[1]) for tip in tips) == 48
    by_version = page[page.index('aria-label="reward by weight version"') :]
    assert re.findall(r"<title>([^<]*)</title>", by_version) == [
        "v0: mean reward 0.000 over 24",
        "v1: mean reward 1.000 over 24",
    ]
    assert charts.failures == {"model": 1}
    assert "failed rollouts by cause (1 of 49)" in page


def test_a_folder_stands_for_the_rollout_files_below_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "later").mkdir(parents=True)
    (runs / "a.jsonl").write_bytes(_rollout("alpha", 0, 1.0).to_json_line())
    (runs / "later" / "b.jsonl").write_bytes(_rollout("beta", 0, 0.0).to_json_line())
    result = runner.invoke(app, ["report", str(runs), "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["files"] == [str(runs / "a.jsonl"), str(runs / "later" / "b.jsonl")]
    assert sorted(report["by_env"]) == ["alpha", "beta"]
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "no *.jsonl file in the folder" in result.output
