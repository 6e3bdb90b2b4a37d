"""`gymbus view`'s server: the index, filters, sorting, pages, episodes with long strings
cut, groups with advantages, plots, media and frames — over real HTTP on 127.0.0.1 with
files written by `gymbus run` and hand-made rollouts (bad lines included)."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from aiohttp.test_utils import TestServer

from gymbus.cli.paths import rollout_files
from gymbus.runtime.messages import AssistantMessage, Generation, ToolCall, UserMessage
from gymbus.runtime.rollout import Failure, Rollout, Timing
from gymbus.viewer import make_app
from gymbus.viewer_index import RolloutIndex

GYMBUS = str(Path(sys.executable).parent / "gymbus")
EVIL = "<script>alert(1)</script>"


def _rollout(
    env: str,
    sample: int,
    reward: float | None,
    *,
    group: str | None = None,
    kind: str = "tool",
    text: str = "hello",
    capabilities: Sequence[str] = (),
    started_at: float = 1_700_000_000.0,
    version: str | None = None,
) -> Rollout:
    return Rollout(
        episode_id=f"{env}#{sample}",
        env=env,
        task_id=f"{env}/t{sample}",
        seed=sample,
        sample=sample,
        group_id=group,
        status="failed" if reward is None else "scored",
        reward=reward,
        failure=Failure(kind=kind, message=f"{kind} broke") if reward is None else None,
        messages=(
            UserMessage(content=text),
            AssistantMessage(
                tool_calls=(ToolCall(id="c1", name="lookup", arguments='{"q": 1}'),),
                generation=Generation(
                    model="m", weight_version=version, token_ids=tuple(range(50))
                ),
            ),
        ),
        metadata={"core_capabilities": list(capabilities)},
        timing=Timing(started_at=started_at, wall_s=0.5 + sample),
    )


def _write(path: Path, rollouts: Sequence[Rollout], extra: bytes = b"") -> Path:
    path.write_bytes(b"".join(r.to_json_line() for r in rollouts) + extra)
    return path


class Viewer:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def get(self, route: str, expect: int = 200, /, **params: Any) -> Any:
        async with self.session.get(self.base + route, params=params) as response:
            body = await response.read()
            assert response.status == expect, body[:500]
            return orjson.loads(body) if response.content_type == "application/json" else body

    async def rows(self, **params: Any) -> list[dict[str, Any]]:
        page = await self.get("/api/episodes", **params)
        rows: list[dict[str, Any]] = page["rows"]
        return rows


async def _viewer(paths: Sequence[Path], *, scan: bool = True) -> AsyncIterator[Viewer]:
    index = RolloutIndex(tuple(paths))
    if scan:
        index.scan()
    async with (
        TestServer(make_app(index), host="127.0.0.1") as server,
        aiohttp.ClientSession() as session,
    ):
        yield Viewer(session, str(server.make_url("")).rstrip("/"))


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    rollouts = [
        _rollout("alpha", 0, 1.0, group="g1", capabilities=["schema-adherence"], version="v1"),
        _rollout("alpha", 1, 0.0, group="g1", capabilities=["schema-adherence"], version="v2"),
        _rollout("alpha", 2, None, group="g1", kind="model"),
        _rollout("alpha", 3, 0.5, group="g1", version="v2"),
        _rollout("beta", 0, 0.25, text="x" * 10_000, started_at=1_700_000_100.0),
        _rollout(EVIL, 0, None, kind="tool", text=EVIL),
    ]
    return _write(tmp_path / "mixed.jsonl", rollouts)


@pytest.mark.anyio
async def test_status_facets_and_bad_lines(tmp_path: Path, mixed: Path) -> None:
    good = _rollout("gamma", 0, 1.0).to_json_line()
    bad = _write(
        tmp_path / "bad.jsonl",
        [],
        good + b"{not json\n" + b'{"env": "x"}\n' + b"\n" + good + b'{"torn": ',
    )
    async for viewer in _viewer([mixed, bad]):
        status = await viewer.get("/api/status")
        assert status["done"] is True
        assert status["indexed"] == 8
        assert [f["lines"] for f in status["files"]] == [6, 6]
        assert status["problem_count"] == 3
        problems = [(p["file"], p["line"]) for p in status["problems"]]
        assert problems == [(str(bad), 2), (str(bad), 3), (str(bad), 6)]
        assert "not JSON" in status["problems"][0]["message"]
        assert "field status" in status["problems"][1]["message"]
        assert "torn last line" in status["problems"][2]["message"]
        facets = await viewer.get("/api/facets")
        assert facets["env"] == {"alpha": 4, "gamma": 2, "beta": 1, EVIL: 1}
        assert facets["status"] == {"scored": 6, "failed": 2}
        assert facets["failure_kind"] == {"model": 1, "tool": 1}
        assert facets["capability"] == {"schema-adherence": 2}
        assert facets["weight_version"] == {"v2": 2, "v1": 1}
        assert facets["groups"] == 1
        rows = await viewer.rows(env="gamma")
        assert [(r["file"], r["line"]) for r in rows] == [(str(bad), 1), (str(bad), 5)]


@pytest.mark.anyio
async def test_filters_sorting_and_pages(mixed: Path) -> None:
    async for viewer in _viewer([mixed]):
        assert len(await viewer.rows()) == 6
        assert [r["env"] for r in await viewer.rows(env=["beta", EVIL])] == ["beta", EVIL]
        assert [r["sample"] for r in await viewer.rows(capability="schema-adherence")] == [0, 1]
        assert [r["failure_kind"] for r in await viewer.rows(status="failed")] == ["model", "tool"]
        assert [r["sample"] for r in await viewer.rows(failure_kind="model")] == [2]
        assert [r["reward"] for r in await viewer.rows(reward_min="0.25", reward_max="0.5")] == [
            0.5,
            0.25,
        ]
        assert len(await viewer.rows(group="g1")) == 4
        assert [r["env"] for r in await viewer.rows(q="SCRIPT")] == [EVIL]
        assert [r["sample"] for r in await viewer.rows(weight_version="v2")] == [1, 3]
        by_reward = await viewer.rows(sort="reward", order="desc")
        assert [r["reward"] for r in by_reward] == [1.0, 0.5, 0.25, 0.0, None, None]
        by_wall = await viewer.rows(sort="wall_s", order="asc", offset="2", limit="2")
        assert [r["wall_s"] for r in by_wall] == [0.5, 1.5]  # 0.5 three times
        page = await viewer.get("/api/episodes", offset="4", limit="50")
        assert (page["total"], len(page["rows"])) == (6, 2)
        for params, message in [
            ({"reward_min": "abc"}, "reward_min: not a number"),
            ({"sort": "nope"}, "sort: unknown field 'nope'"),
            ({"order": "up"}, "order: expected"),
            ({"limit": "0"}, "limit: must be between"),
            ({"offset": "-1"}, "offset: expected a whole number"),
        ]:
            error = await viewer.get("/api/episodes", 400, **params)
            assert message in error["error"]


@pytest.mark.anyio
async def test_episode_long_strings_token_arrays_and_text_slices(mixed: Path) -> None:
    async for viewer in _viewer([mixed]):
        beta = (await viewer.rows(env="beta"))[0]
        episode = await viewer.get(f"/api/episodes/{beta['id']}")
        assert episode["schema_problem"] is None
        assert episode["row"]["episode_id"] == "beta#0"
        cut = episode["rollout"]["messages"][0]["content"][0]["text"]
        assert cut == {
            "$truncated": True,
            "head": "x" * 2_000,
            "length": 10_000,
            "path": "messages/0/content/0/text",
        }
        generation = episode["rollout"]["messages"][1]["generation"]
        assert generation["token_ids"] == {"$omitted": True, "length": 50}
        assert episode["rollout"]["messages"][1]["tool_calls"][0]["name"] == "lookup"
        parts = []
        offset = 0
        while offset < cut["length"]:
            piece = await viewer.get(
                f"/api/episodes/{beta['id']}/text", path=cut["path"], offset=offset, length=3_000
            )
            parts.append(piece["text"])
            offset += 3_000
        assert "".join(parts) == "x" * 10_000
        missing = await viewer.get(f"/api/episodes/{beta['id']}/text", 404, path="messages/9")
        assert "no item '9'" in missing["error"]
        await viewer.get("/api/episodes/99", 404)
        await viewer.get("/api/episodes/x", 404)


@pytest.mark.anyio
async def test_a_line_that_is_not_a_valid_rollout_still_opens(tmp_path: Path) -> None:
    data = orjson.loads(_rollout("alpha", 0, 1.0).to_json_line())
    data["evidence"] = {"a/b~c": "y" * 5_000}
    data["timing"] = {"wall_s": "slow"}
    path = tmp_path / "odd.jsonl"
    path.write_bytes(orjson.dumps(data) + b"\n")
    async for viewer in _viewer([path]):
        episode = await viewer.get("/api/episodes/0")
        assert episode["schema_problem"].startswith("field timing.started_at")
        cut = episode["rollout"]["evidence"]["a/b~c"]
        assert cut["path"] == "evidence/a~1b~0c"
        text = await viewer.get("/api/episodes/0/text", path=cut["path"])
        assert text["text"] == "y" * 5_000


@pytest.mark.anyio
async def test_group_advantages(mixed: Path) -> None:
    async for viewer in _viewer([mixed]):
        group = await viewer.get("/api/groups/g1")
        assert group["mean"] == pytest.approx(0.5)
        std = (((0.5**2) * 2) / 3) ** 0.5
        assert group["std"] == pytest.approx(std)
        advantages = [(r["sample"], r["advantage"]) for r in group["rows"]]
        assert advantages == [(0, 0.5), (1, -0.5), (2, None), (3, 0.0)]
        normalized = group["rows"][0]["advantage_normalized"]
        assert normalized == pytest.approx(0.5 / (std + 1e-6))
        await viewer.get("/api/groups/nope", 404)


@pytest.mark.anyio
async def test_plots_are_escaped_and_follow_the_filters(mixed: Path) -> None:
    async for viewer in _viewer([mixed]):
        page = (await viewer.get("/api/plots"))["html"]
        assert EVIL not in page
        assert "rewards of &lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "rewards of schema-adherence" in page
        assert "reward by weight version" in page
        only_beta = (await viewer.get("/api/plots", env="beta"))["html"]
        assert "rewards of beta" in only_beta
        assert "rewards of alpha" not in only_beta
        assert "reward by weight version" not in only_beta
        await viewer.get("/api/plots", 400, reward_max="x")


@pytest.mark.anyio
async def test_security_headers_and_foreign_hosts(mixed: Path) -> None:
    async for viewer in _viewer([mixed]):
        async with viewer.session.get(viewer.base + "/") as response:
            assert response.status == 200
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with viewer.session.get(viewer.base + "/static/viewer.js") as response:
            assert response.status == 200
            assert response.content_type == "text/javascript"
        await viewer.get("/static/..%2Fviewer.py", 404)
        headers = {"Host": "attacker.example:80"}
        async with viewer.session.get(viewer.base + "/api/status", headers=headers) as response:
            assert response.status == 403


def _run(tmp_path: Path, env: str, n: int) -> Path:
    out = tmp_path / f"{env}.jsonl"
    ran = subprocess.run(
        [GYMBUS, "run", env, "--model", "oracle", "--n", str(n), "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr.decode()
    return out


@pytest.mark.anyio
async def test_media_and_video_frames_from_gymbus_run(tmp_path: Path) -> None:
    chart, video = _run(tmp_path, "chart-reading", 2), _run(tmp_path, "motion-video", 1)
    async for viewer in _viewer([chart, video]):
        status = await viewer.get("/api/status")
        assert [f["media_dir"] for f in status["files"]] == [
            str(tmp_path / "chart-reading.media"),
            str(tmp_path / "motion-video.media"),
        ]
        shown = 0
        for row in await viewer.rows():
            assert row["has_media"]
            episode = await viewer.get(f"/api/episodes/{row['id']}")
            for message in episode["rollout"]["messages"]:
                for part in message["content"]:
                    if part["type"] == "text":
                        continue
                    ref = part["media"]
                    async with viewer.session.get(f"{viewer.base}/media/{ref['sha256']}") as r:
                        body = await r.read()
                        assert r.status == 200
                        assert r.content_type == ref["mime_type"]
                        assert "sandbox" in r.headers["Content-Security-Policy"]
                    assert hashlib.sha256(body).hexdigest() == ref["sha256"]
                    shown += 1
                    if row["env"] == "motion-video":
                        frames = await viewer.get(f"/api/media/{ref['sha256']}/frames", max=4)
                        assert 2 <= len(frames["frames"]) <= 4
                        frame = frames["frames"][0]
                        png = await viewer.get(f"/media/{frame['sha256']}")
                        assert png.startswith(b"\x89PNG")
        assert shown == 3
        await viewer.get("/media/" + "0" * 64, 404)
        await viewer.get("/media/not-a-sha", 404)
        await viewer.get("/api/media/" + "0" * 64 + "/frames", 404)


@pytest.mark.anyio
async def test_100k_lines_are_indexed_while_the_server_answers(tmp_path: Path) -> None:
    template = orjson.loads(_rollout("alpha", 0, 1.0).to_json_line())
    path = tmp_path / "big.jsonl"
    with path.open("wb") as f:
        for i in range(100_000):
            template["episode_id"], template["env"] = f"e{i}", f"env{i % 7}"
            template["reward"] = (i % 11) / 10
            f.write(orjson.dumps(template) + b"\n")
    index = RolloutIndex((path,))
    async with (
        TestServer(make_app(index), host="127.0.0.1") as server,
        aiohttp.ClientSession() as session,
    ):
        viewer = Viewer(session, str(server.make_url("")).rstrip("/"))
        before = await viewer.get("/api/status")
        assert (before["done"], before["indexed"]) == (False, 0)
        scanner = threading.Thread(target=index.scan)
        scanner.start()
        await viewer.get("/api/episodes", limit=10)  # answers while the thread indexes
        await anyio.to_thread.run_sync(scanner.join)
        status = await viewer.get("/api/status")
        assert (status["done"], status["indexed"], status["problem_count"]) == (True, 100_000, 0)
        page = await viewer.get(
            "/api/episodes", env="env3", sort="reward", order="desc", offset=100, limit=500
        )
        assert page["total"] == len([i for i in range(100_000) if i % 7 == 3])
        assert len(page["rows"]) == 500
        rewards = [r["reward"] for r in page["rows"]]
        assert rewards == sorted(rewards, reverse=True)
        last = await viewer.get("/api/episodes/99999")
        assert last["rollout"]["episode_id"] == "e99999"


def test_following_a_file_that_is_still_being_written(tmp_path: Path) -> None:
    lines = [_rollout("alpha", i, 1.0).to_json_line() for i in range(6)]
    path = tmp_path / "live.jsonl"
    path.write_bytes(b"".join(lines[:3]))
    index = RolloutIndex((path,), follow=True, follow_interval=0.01)
    scanner = threading.Thread(target=index.scan)
    scanner.start()
    try:
        assert index.wait_passes(1, timeout=20)
        assert (index.status()["done"], index.status()["following"]) == (True, True)
        assert len(index.snapshot()) == 3
        with path.open("ab") as f:  # two whole lines and one still being written
            f.write(lines[3] + lines[4] + lines[5][:40])
        assert index.wait_passes(2, timeout=20)
        assert [r.sample for r in index.snapshot()] == [0, 1, 2, 3, 4]
        assert index.status()["problem_count"] == 0  # a line in progress is not torn
        with path.open("ab") as f:
            f.write(lines[5][40:])
        assert index.wait_passes(2, timeout=20)
        rows = index.snapshot()
        assert [(r.sample, r.line) for r in rows][-1] == (5, 6)
        assert index.read_line(rows[-1]) == lines[5]
        path.write_bytes(lines[0])  # rewritten from scratch: not followed any more
        assert index.wait_passes(2, timeout=20)
        status = index.status()
        assert "the file shrank" in status["problems"][0]["message"]
        assert status["indexed"] == 6
    finally:
        index.stop.set()
        scanner.join(timeout=20)
    assert not scanner.is_alive()
    assert index.status()["following"] is False


def test_the_cli_serves_until_terminated(tmp_path: Path, mixed: Path) -> None:
    with subprocess.Popen(
        [GYMBUS, "view", str(mixed), "--port", "0", "--follow"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().decode()
            assert line.startswith("gymbus view: http://127.0.0.1:"), line
            url = line.split()[2]
            status = orjson.loads(_fetch(url + "api/status"))
            assert status["files"][0]["path"] == str(mixed)
            assert status["following"] is True
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            process.kill()
    missing = subprocess.run(
        [GYMBUS, "view", str(tmp_path / "nope.jsonl")], capture_output=True, check=False
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr.decode()
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = subprocess.run([GYMBUS, "view", str(empty)], capture_output=True, check=False)
    assert nothing.returncode == 2
    assert f"no *.jsonl file in the folder {empty}" in nothing.stderr.decode()


def test_folders_stand_for_the_rollout_files_below_them(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "b").mkdir(parents=True)
    (runs / "a.media").mkdir()  # media folders hold no rollout files
    first = _write(runs / "b" / "two.jsonl", [_rollout("beta", 0, 1.0)])
    second = _write(runs / "one.jsonl", [_rollout("alpha", 0, 1.0)])
    (runs / "notes.txt").write_text("not a rollout file")
    assert rollout_files([runs, second]) == [first, second]


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=20) as response:
        body: bytes = response.read()
    return body
