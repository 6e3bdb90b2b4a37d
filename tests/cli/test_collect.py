"""`gymbus collect` as users run it: weights, groups, the JSONL sink, resume after
SIGKILL, configs, pandas."""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import orjson
import pandas as pd
import pytest

from gymbus.plan import allocate, plan_tasks

GYMBUS = str(Path(sys.executable).parent / "gymbus")
pytestmark = pytest.mark.anyio


async def _gymbus(*args: str, cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "200"}  # rich wraps messages at the terminal width
    result = await anyio.run_process([GYMBUS, *args], check=False, cwd=cwd, env=env)
    return result.returncode, (result.stdout + result.stderr).decode()


def _rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_weights_groups_and_one_line_per_rollout(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    code, text = await _gymbus(
        "collect", "--env", "retail-orders=0.7", "--env", "ledger-signs=0.3", "--model",
        "oracle", "--n", "200", "--group-size", "4", "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, text
    rows = _rows(out)
    assert len(rows) == 800
    assert Counter(r["env"] for r in rows) == {"retail-orders": 560, "ledger-signs": 240}
    assert len({r["episode_id"] for r in rows}) == 800
    groups = Counter(r["group_id"] for r in rows)
    assert len(groups) == 200
    assert set(groups.values()) == {4}
    assert all(r["group_size"] == 4 for r in rows)
    assert all(r["reward"] == 1.0 for r in rows)
    frame = pd.read_json(out, lines=True)  # readable as users read it
    assert len(frame) == 800
    assert {"env", "reward", "group_id", "messages", "status"} <= set(frame.columns)
    assert frame.groupby("env").size().to_dict() == {"ledger-signs": 240, "retail-orders": 560}


def test_allocation_is_within_one_task_of_the_weights() -> None:
    assert allocate({"a": 0.7, "b": 0.3}, 2000) == {"a": 1400, "b": 600}
    counts = allocate({"a": 1, "b": 1, "c": 1}, 10)
    assert sum(counts.values()) == 10
    assert max(counts.values()) - min(counts.values()) == 1
    tasks = plan_tasks({"a": 0.5, "b": 0.5}, 100, seed=3)
    assert tasks == plan_tasks({"a": 0.5, "b": 0.5}, 100, seed=3)  # resumable: same plan
    first_half = Counter(t.env for t in tasks[:50])
    assert 15 <= first_half["a"] <= 35  # interleaved, not one env after the other


async def test_sigkill_mid_run_then_resume_gives_every_episode_exactly_once(
    tmp_path: Path,
) -> None:
    out = tmp_path / "killed.jsonl"
    args = [
        "collect", "--env", "retail-orders=0.5", "--env", "calendar-intents=0.5", "--model",
        "oracle", "--n", "1500", "--group-size", "2", "--out", str(out), "--quiet",
    ]  # fmt: skip
    process = await anyio.open_process([GYMBUS, *args], cwd=tmp_path)
    try:
        with anyio.fail_after(60):  # bounded wait for the run to be well under way
            # another process writes the file: there is no event to wait on, so poll
            while not out.exists() or out.read_bytes().count(b"\n") < 600:  # noqa: ASYNC110
                await anyio.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
        await process.aclose()
    written = out.read_bytes().count(b"\n")
    assert 600 <= written < 3000  # killed mid-run
    with out.open("ab") as f:  # a torn last line, as a crash mid-write leaves
        f.write(b'{"schema_version":1,"episode_id":"retail-ord')
    code, text = await _gymbus(*args, "--resume", cwd=tmp_path)
    assert code == 0, text
    rows = _rows(out)  # every line parses
    assert len(rows) == 3000
    keys = Counter((r["env"], r["seed"], r["sample"]) for r in rows)
    assert max(keys.values()) == 1
    weights = {"retail-orders": 0.5, "calendar-intents": 0.5}
    planned = {(t.env, t.seed, s) for t in plan_tasks(weights, 1500, seed=0) for s in range(2)}
    assert set(keys) == planned


async def test_resume_without_a_file_starts_one_and_an_existing_file_needs_resume(
    tmp_path: Path,
) -> None:
    out = tmp_path / "fresh.jsonl"
    base = ["collect", "--env", "retail-orders", "--n", "5", "--out", str(out), "--quiet"]
    code, text = await _gymbus(*base, "--resume", cwd=tmp_path)
    assert code == 0, text
    assert len(_rows(out)) == 5
    code, text = await _gymbus(*base, cwd=tmp_path)
    assert code == 2
    assert "--resume" in text
    code, text = await _gymbus(*base, "--resume", cwd=tmp_path)  # nothing left to do
    assert code == 0, text
    assert len(_rows(out)) == 5


async def test_a_config_file_drives_the_run_and_bad_ones_name_the_field(tmp_path: Path) -> None:
    config = tmp_path / "mix.toml"
    config.write_text(
        'model = "oracle"\nn = 12\ngroup_size = 2\nout = "mix.jsonl"\n'
        "[limits]\nmax_turns = 10\n"
        '[envs.retail-orders]\nweight = 2\ndifficulty = "hard"\nconcurrency = 3\n'
        "[envs.records-needle]\nweight = 1\ncontext_tokens = 3000\n"
    )
    code, text = await _gymbus("collect", "--config", str(config), "--quiet", cwd=tmp_path)
    assert code == 0, text
    rows = _rows(tmp_path / "mix.jsonl")
    assert Counter(r["env"] for r in rows) == {"retail-orders": 16, "records-needle": 8}
    assert all(
        r["task_id"].startswith("retail-orders/hard/") for r in rows if r["env"] == "retail-orders"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('n = 5\nout = "x.jsonl"\n[envs.retail-orders]\nweight = -1\n')
    code, text = await _gymbus("collect", "--config", str(bad), cwd=tmp_path)
    assert code == 2
    assert "bad.toml" in text
    assert "envs.retail-orders.weight" in text
    broken = tmp_path / "broken.toml"
    broken.write_text("n = \n")
    code, text = await _gymbus("collect", "--config", str(broken), cwd=tmp_path)
    assert code == 2
    assert "not valid TOML" in text
    assert "line 1" in text


async def test_unknown_fields_and_environments_are_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text('n = 5\nout = "x.jsonl"\ngroup_sise = 4\n[envs.retail-orders]\n')
    code, text = await _gymbus("collect", "--config", str(config), cwd=tmp_path)
    assert code == 2
    assert "group_sise" in text
    code, text = await _gymbus(
        "collect", "--env", "nope=1", "--out", str(tmp_path / "o.jsonl"), cwd=tmp_path
    )
    assert code == 2
    assert "unknown environment 'nope'" in text
    assert not (tmp_path / "o.jsonl").exists()
