"""`gymbus view` in a real browser (Chromium driven by Playwright): files written by
`gymbus run` plus hand-made lines (a hostile one, a long one, a GRPO pair, a bad line);
the table, a filter, episodes with an image and tool calls, "show more", the group view,
the plots — and that markup in a rollout stays text and never runs.

Uses the system Chromium (/usr/bin/chromium; nothing is downloaded). Without it, or
without the `playwright` package, the test is skipped — except in CI (`$CI` or
`$GYMBUS_REQUIRE_BROWSER` set, as `.ci/run` does), where it fails: CI installs both.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from gymbus.runtime.rollout import Rollout

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, Page

GYMBUS = str(Path(sys.executable).parent / "gymbus")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
EVIL = f"{SCRIPT} {IMG}"
LONG_TAIL = "0123456789" * 1_000  # 10,000 characters: cut by the server after 2,000


def _require_browser() -> None:
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package")
    if not CHROMIUM.exists():
        missing.append(str(CHROMIUM))
    if missing:
        reason = f"browser test needs {' and '.join(missing)}"
        if os.environ.get("CI") or os.environ.get("GYMBUS_REQUIRE_BROWSER"):
            pytest.fail(f"{reason} (CI installs them)")
        pytest.skip(reason)


def _run(cwd: Path, *args: str) -> None:
    ran = subprocess.run(
        [GYMBUS, *args], cwd=cwd, capture_output=True, check=False, env=os.environ.copy()
    )
    assert ran.returncode == 0, ran.stderr.decode()


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _append(path: Path, *rows: dict[str, Any]) -> None:
    with path.open("ab") as f:
        for row in rows:
            f.write(Rollout.model_validate(row).to_json_line())  # each one a valid rollout


def _make_rollouts(tmp: Path) -> tuple[Path, Path]:
    """charts.jsonl: 3 chart-reading episodes (images, in charts.media/), a copy with a
    long answer, a bad line. retail.jsonl: 5 retail-orders episodes (tool calls), a
    second sample of task 0 scoring 0 (a group of two), and a hostile failed episode."""
    _run(tmp, "run", "chart-reading", "--model", "oracle", "--n", "3", "--out", "charts.jsonl")
    _run(tmp, "run", "retail-orders", "--model", "oracle", "--n", "5", "--out", "retail.jsonl")
    charts, retail = tmp / "charts.jsonl", tmp / "retail.jsonl"
    media = sorted(p.name for p in (tmp / "charts.media").iterdir())
    assert len(media) == 3, media  # `gymbus run` keeps the images beside the file

    long = _lines(charts)[0]
    long["episode_id"] = "chart-reading/long#0"
    long["messages"][-1]["content"][0]["text"] += LONG_TAIL
    long["messages"][-1]["generation"]["usage"]["completion_tokens"] = 2_500
    long["usage"]["completion_tokens"] = 2_500

    rows = _lines(retail)
    pair = orjson.loads(orjson.dumps(rows[0]))
    assert pair["group_id"] == "retail-orders/0"
    pair.update(episode_id="retail-orders/0#1", sample=1, group_size=2, reward=0.0)
    pair["scores"] = dict.fromkeys(pair["scores"], 0.0)

    evil = orjson.loads(orjson.dumps(rows[1]))
    evil.update(
        episode_id="xss#0", env=f"xss-env {EVIL}", task_id="xss/0", group_id="xss",
        status="failed", reward=None, scores={}, stop_reason=None,
        failure={"kind": "tool", "message": f"tool crashed: {EVIL}"},
    )  # fmt: skip
    user = next(m for m in evil["messages"] if m["role"] == "user")
    user["content"][0]["text"] = f"Please answer. {EVIL}"
    call = next(m for m in evil["messages"] if m["role"] == "assistant")["tool_calls"][0]
    call["arguments"] = orjson.dumps({"order_id": EVIL}).decode()

    _append(charts, long)
    with charts.open("ab") as f:
        f.write(b'{"not a rollout": \n')
    _append(retail, pair, evil)
    return charts, retail


@contextmanager
def _viewer(*files: Path) -> Iterator[str]:
    """`gymbus view FILES --port 0 --follow` in a subprocess; yields its URL."""
    proc = subprocess.Popen(
        [GYMBUS, "view", *map(str, files), "--port", "0", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=files[0].parent,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                pytest.fail(f"gymbus view printed no URL in 30 s: {seen}")
            if line is None:
                pytest.fail(f"gymbus view exited ({proc.wait()}): {seen}")
            seen.append(line)
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if found:
                break
        yield found.group(0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def _image_loaded(page: Page, testid: str = "media-image") -> int:
    image = page.get_by_test_id(testid).first
    image.scroll_into_view_if_needed()
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=image.element_handle())
    width = image.evaluate("i => i.naturalWidth")
    assert isinstance(width, int)
    return width


def test_the_viewer_in_a_browser(tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    charts, retail = _make_rollouts(tmp_path)
    with _viewer(charts, retail) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            dialogs: list[str] = []

            def on_dialog(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            rows, count = page.get_by_test_id("episode-row"), page.get_by_test_id("row-count")

            # the table: 4 + 7 episodes, the bad line reported, not fatal
            page.goto(url)
            expect(count).to_have_text("rows 1–11 of 11")
            expect(rows).to_have_count(11)
            expect(page.get_by_test_id("problems")).to_contain_text("1 unreadable line")
            expect(page.get_by_test_id("progress")).to_contain_text("indexed")

            # filter by environment: only chart-reading rows, the filter in the URL
            page.get_by_test_id("filter-env").locator('input[value="chart-reading"]').check()
            expect(count).to_have_text("rows 1–4 of 4")
            expect(page).to_have_url(re.compile(r"#/\?env=chart-reading$"))
            assert set(rows.locator("td.env .env-name").all_inner_texts()) == {"chart-reading"}

            # sort by completion tokens, descending: the long answer comes first
            page.get_by_test_id("sort-completion_tokens").click()
            expect(page).to_have_url(re.compile(r"sort=completion_tokens&order=asc"))
            page.get_by_test_id("sort-completion_tokens").click()
            expect(page).to_have_url(re.compile(r"sort=completion_tokens&order=desc"))
            expect(rows.first.locator("td.task")).to_have_attribute("title", "chart-reading/long#0")

            # the long answer: its head, then "show more" fetches the rest
            rows.first.click()
            expect(page.get_by_test_id("episode-header")).to_contain_text("chart-reading/long#0")
            answer = page.get_by_test_id("message").last
            more = answer.get_by_test_id("show-more")
            expect(more).to_have_text(re.compile(r"more characters — show more"))
            more.click()
            expect(more).to_have_count(0)
            assert answer.get_by_test_id("truncated").inner_text().endswith(LONG_TAIL)

            # the next episode in the filtered, sorted table: an image, loaded from the
            # media folder
            page.get_by_test_id("episode-next").click()
            expect(page.get_by_test_id("episode-header")).to_contain_text("chart-reading/")
            expect(page.get_by_test_id("episode-header")).not_to_contain_text("long")
            assert _image_loaded(page) > 100
            shot = tmp_path / "episode.png"
            page.screenshot(path=str(shot), full_page=True)
            data = shot.read_bytes()
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
            assert len(data) > 10_000

            # back to the table (filters kept), then a retail episode with tool calls
            page.get_by_test_id("back-to-list").click()
            expect(count).to_have_text("rows 1–4 of 4")
            page.get_by_test_id("filter-clear").click()
            page.get_by_test_id("filter-q").fill("retail-orders/0#")
            expect(count).to_have_text("rows 1–2 of 2")
            rows.first.click()
            expect(page.get_by_test_id("episode-header")).to_contain_text("retail-orders/0#0")
            call = page.get_by_test_id("tool-call").first
            expect(call).to_contain_text("get_order(")
            expect(call.get_by_test_id("tool-arguments")).not_to_be_visible()
            call.locator("summary").click()
            expect(call.get_by_test_id("tool-arguments")).to_be_visible()
            expect(call.get_by_test_id("tool-arguments")).to_contain_text('"order_id"')
            result = page.get_by_test_id("tool-result").first
            result.locator("summary").click()
            expect(result).to_contain_text('"customer"')
            expect(page.get_by_test_id("generation").first).to_contain_text("finish tool_calls")

            # the group: two samples side by side, advantages +0.5 and -0.5
            page.get_by_test_id("group-link").click()
            columns = page.get_by_test_id("group-column")
            expect(columns).to_have_count(2)
            expect(columns.first.get_by_test_id("advantage")).to_have_text("0.5")
            expect(columns.first.get_by_test_id("advantage")).to_have_class(re.compile("pos"))
            expect(columns.last.get_by_test_id("advantage")).to_have_text("-0.5")
            expect(columns.last.get_by_test_id("advantage")).to_have_class(re.compile("neg"))
            expect(columns.first.get_by_test_id("final-answer")).not_to_contain_text("Loading")

            # the hostile episode: its markup is text, nothing runs, no <img src=x>
            page.goto(f"{url}#/?q=xss")
            expect(count).to_have_text("rows 1–1 of 1")
            expect(rows.first).to_contain_text(SCRIPT)
            expect(page.get_by_test_id("filter-env")).to_contain_text(IMG)
            rows.first.click()
            header = page.get_by_test_id("episode-header")
            expect(header).to_contain_text(f"xss-env {EVIL}")
            expect(page.get_by_test_id("failure")).to_contain_text(f"tool crashed: {EVIL}")
            user = page.locator('[data-testid="message"][data-role="user"]')
            expect(user).to_contain_text(f"Please answer. {EVIL}")
            expect(page.get_by_text(SCRIPT).first).to_be_visible()
            page.get_by_test_id("tool-call").first.locator("summary").click()
            expect(page.get_by_test_id("tool-arguments").first).to_contain_text("onerror=alert")
            assert page.locator('img[src="x"]').count() == 0
            assert page.locator("body script").count() == 0
            assert page.evaluate("document.querySelectorAll('script').length") == 1  # ours

            # the plots of the filtered rows: server-made SVG
            page.goto(f"{url}#/plots?env=retail-orders")
            plots = page.get_by_test_id("plots")
            expect(plots.locator("svg").first).to_be_visible()
            expect(plots).to_contain_text("retail-orders")

            # an unknown episode: a visible error, not a blank page
            page.goto(f"{url}#/episode/9999")
            expect(page.get_by_test_id("error")).to_contain_text("no episode")

            # --follow: a line appended while the page is open shows up without a reload
            page.goto(f"{url}#/")
            expect(count).to_have_text("rows 1–11 of 11")
            expect(page.get_by_test_id("progress")).to_contain_text("following")
            first = _lines(retail)[0]
            first["episode_id"] = "retail-orders/appended#0"
            _append(retail, first)
            expect(count).to_have_text("rows 1–12 of 12", timeout=20_000)

            assert dialogs == []
            assert errors == []
            csp = [m for m in console if "Content Security Policy" in m]
            assert csp == []
        finally:
            browser.close()
