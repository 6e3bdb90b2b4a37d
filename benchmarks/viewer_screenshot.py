"""The screenshots of docs/viewer.md: `gymbus view` in headless Chromium, 1280 pixels wide.

python benchmarks/viewer_screenshot.py                 # writes docs/images/viewer-*.png
python benchmarks/viewer_screenshot.py --out /tmp/shots --chromium /usr/bin/chromium

Sample data is made offline in a temporary folder with the `gymbus` next to this Python
(oracle and null models, GRPO groups of 4, a few episodes failed against a model server
that is down), then `gymbus view --port 0` serves it. Needs the `playwright` package (the
dev extra) and a system Chromium; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import queue
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
GYMBUS = str(Path(sys.executable).parent / "gymbus")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ENVS = ["travel-clarify", "retail-orders", "chart-reading", "ledger-signs"]


def gymbus(cwd: Path, *args: str, ok: bool = True) -> None:
    ran = subprocess.run([GYMBUS, *args], cwd=cwd, capture_output=True, check=False)
    if ok and ran.returncode != 0:
        raise SystemExit(f"gymbus {' '.join(args)} failed:\n{ran.stderr.decode()}")


def make_data(folder: Path) -> list[Path]:
    envs = [arg for env in ENVS for arg in ("--env", env)]
    common = ["--group-size", "4", "--quiet"]
    gymbus(folder, "collect", *envs, "--model", "oracle", "--n", "96", *common,
           "--out", "oracle.jsonl")  # fmt: skip
    gymbus(folder, "collect", *envs, "--model", "null", "--n", "8", "--seed", "1000",
           *common, "--out", "null.jsonl")  # fmt: skip
    # a model server that is down: the episodes are recorded as failed (kind `model`)
    gymbus(folder, "run", "travel-clarify", "--model", "openai:down", "--base-url",
           "http://127.0.0.1:9/v1", "--max-attempts", "1", "--n", "3", "--seed", "2000",
           "--quiet", "--out", "down.jsonl", ok=False)  # fmt: skip
    # in this order, the first page of the table mixes failed, 0 and 1
    return [folder / name for name in ("down.jsonl", "null.jsonl", "oracle.jsonl")]


class Viewer:
    """`gymbus view FILES --port 0` in a subprocess, in the files' folder."""

    def __init__(self, files: list[Path]) -> None:
        self.proc = subprocess.Popen(
            [GYMBUS, "view", *(f.name for f in files), "--port", "0"],
            cwd=files[0].parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(lines,), daemon=True)
        self.reader.start()
        while True:
            line = lines.get(timeout=30)
            if line is None:
                raise SystemExit(f"gymbus view exited with {self.proc.wait()}")
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if found:
                self.url = found.group(0)
                return

    def _read(self, lines: queue.Queue[str | None]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            lines.put(line)
        lines.put(None)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def shoot_list(page: Page, url: str, out: Path) -> None:
    page.goto(f"{url}#/?env=travel-clarify&env=retail-orders")
    expect(page.get_by_test_id("progress")).to_contain_text("indexed")
    expect(page.get_by_test_id("row-count")).to_contain_text("rows 1–50 of")
    page.mouse.move(0, 0)
    page.screenshot(path=str(out))


def shoot_episode(page: Page, url: str, out: Path) -> None:
    page.goto(f"{url}#/?env=travel-clarify&status=scored&sort=reward&order=desc")
    expect(page.get_by_test_id("row-count")).to_contain_text("rows 1–")
    page.get_by_test_id("episode-row").first.click()
    expect(page.get_by_test_id("episode-header")).to_be_visible()
    for testid in ("tool-call", "tool-result"):
        page.get_by_test_id(testid).first.locator("summary").click()
    page.mouse.move(0, 0)
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": min(max(int(height), 800), 1500)})
    page.screenshot(path=str(out))


def shoot_image(page: Page, url: str, out: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{url}#/?env=chart-reading")
    expect(page.get_by_test_id("row-count")).to_contain_text("rows 1–")
    page.get_by_test_id("episode-row").first.click()
    image = page.get_by_test_id("media-image").first
    expect(image).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    page.mouse.move(0, 0)
    page.screenshot(path=str(out), full_page=True)


def shoot_plots(page: Page, url: str, out: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{url}#/plots")
    expect(page.locator("svg").first).to_be_visible()
    page.mouse.move(0, 0)
    page.screenshot(path=str(out), full_page=True)


SHOTS = {
    "viewer-list.png": shoot_list,
    "viewer-episode.png": shoot_episode,
    "viewer-image.png": shoot_image,
    "viewer-plots.png": shoot_plots,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gymbus-view-shots-") as tmp:
        viewer = Viewer(make_data(Path(tmp)))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 800})
                    for name, shoot in SHOTS.items():
                        shoot(page, viewer.url, args.out / name)
                finally:
                    browser.close()
        finally:
            viewer.close()
    for name in SHOTS:
        print(args.out / name)


if __name__ == "__main__":
    main()
