"""Exactly once across crashes: ``gymbus collect`` SIGKILLed again and again, and resumed
with ``--resume`` each time, ends with a file that parses completely and holds every
scheduled (environment, task seed, sample) exactly once.

The kill points are seeded: one line count drawn in each twentieth of the run (the last
ones past its end, so some kills land after the run finished, or while it exits). Now
and then the kill is made to look like one that hit a half-written line, by appending a
part of a line — or the whole line of a missing episode but for its newline — before
resuming.
"""

from __future__ import annotations

import random
import signal
import sys
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Literal, NamedTuple

import anyio
import pytest
from anyio.abc import Process

import gymbus
from gymbus.plan import EpisodeKey, PlannedTask, plan_jobs, plan_tasks
from gymbus.runtime.sink import read_rollouts

pytestmark = pytest.mark.anyio

GYMBUS = str(Path(sys.executable).parent / "gymbus")
WEIGHTS = {"retail-orders": 0.5, "calendar-intents": 0.5}
N, GROUP_SIZE = 600, 2
TOTAL = N * GROUP_SIZE
KILLS = 20
SEED = 20240611


def _args(out: Path) -> list[str]:
    envs = [arg for name, weight in WEIGHTS.items() for arg in ("--env", f"{name}={weight}")]
    return [
        GYMBUS, "collect", *envs, "--model", "oracle", "--n", str(N),
        "--group-size", str(GROUP_SIZE), "--out", str(out), "--quiet", "--resume",
    ]  # fmt: skip


class Kill(NamedTuple):
    lines: int
    """Kill once the file holds this many lines (or the run ended)."""
    tear: Literal["part", "whole"] | None
    """Then append part of a line, or a missing episode's line but for its newline."""
    cut: float
    """Where a part of a line ends, as a fraction of the line."""


def crash_plan(seed: int) -> list[Kill]:
    """KILLS kills, one in each of KILLS equal stretches of [0, 1.05 * TOTAL) lines; about
    half of them also tear the last line. Drawn up front: the same plan every run."""
    rng = random.Random(seed)
    span = TOTAL * 21 // 20
    return [
        Kill(
            rng.randrange(i * span // KILLS, (i + 1) * span // KILLS),
            rng.choice((None, None, "part", "whole")),
            rng.random(),
        )
        for i in range(KILLS)
    ]


class LineCounter:
    """Counts the complete lines of a file another process appends to. It reads on from
    just after the last newline it saw, so a torn tail that the writer cuts off (and
    writes again) is never counted or skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        self._offset = 0

    def update(self) -> int:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
            end = chunk.rfind(b"\n")
            if end >= 0:
                self.lines += chunk.count(b"\n", 0, end + 1)
                self._offset += end + 1
        return self.lines


async def _kill_at(process: Process, counter: LineCounter, target: int) -> bool:
    """Wait until the file holds ``target`` lines (or the run ends), then SIGKILL; True
    if the process was still running when killed."""
    with anyio.fail_after(60):  # bounded: a run of TOTAL episodes takes a few seconds
        # another process writes the file: there is no event to wait on, so poll
        while process.returncode is None and counter.update() < target:  # noqa: ASYNC110
            await anyio.sleep(0.005)
    running = process.returncode is None
    with suppress(ProcessLookupError):  # it may have exited since
        process.send_signal(signal.SIGKILL)
    await process.wait()
    return running and process.returncode == -signal.SIGKILL


def _planned() -> list[EpisodeKey]:
    tasks = plan_tasks(WEIGHTS, N, seed=0)
    return [(task.env, task.seed, sample) for task in tasks for sample in range(GROUP_SIZE)]


async def _line_of(key: EpisodeKey) -> bytes:
    """The rollout line of one planned episode, played here with the same model."""
    env, seed, sample = key
    others = {(env, seed, s) for s in range(GROUP_SIZE) if s != sample}
    envs = {env: gymbus.envs.load(env)}
    jobs = plan_jobs(envs, [PlannedTask(env, seed)], group_size=GROUP_SIZE, done=others)
    async with gymbus.Runtime(gymbus.OracleModel()) as runtime:
        [rollout] = await runtime.run(jobs)
    return rollout.to_json_line()


def _missing(out: Path) -> list[EpisodeKey]:
    done = {(r.env, r.seed, r.sample) for _, r in read_rollouts(out)} if out.exists() else set()
    return [key for key in _planned() if key not in done]


def _part_of_last_line(out: Path, cut: float) -> bytes:
    lines = out.read_bytes().splitlines() if out.exists() else []
    line = lines[-1] if lines else b'{"schema_version":1,"episode_id":"retail-orders/0#0"}'
    return line[: max(1, int(cut * len(line)))]


async def _tear(out: Path, kill: Kill) -> None:
    """Leave the file as a kill in the middle of writing a line would: part of its last
    line, or the whole line of an episode it lacks but for the newline (a reader that
    took that line as done would lose the episode when the tail is cut off)."""
    missing = _missing(out)
    if kill.tear == "whole" and missing:
        torn = (await _line_of(missing[0]))[:-1]
    else:
        torn = _part_of_last_line(out, kill.cut)
    with out.open("ab") as f:
        f.write(torn)


async def test_twenty_sigkills_and_resumes_give_every_episode_exactly_once(
    tmp_path: Path,
) -> None:
    plan = crash_plan(SEED)
    assert {kill.tear for kill in plan} == {None, "part", "whole"}
    out = tmp_path / "rollouts.jsonl"
    counter = LineCounter(out)
    mid_run = 0
    for kill in plan:
        # cwd outside the repository: its gymbus/ folder would shadow the installed package
        async with await anyio.open_process(_args(out), cwd=tmp_path) as process:
            mid_run += await _kill_at(process, counter, kill.lines)
        if kill.tear is not None:
            await _tear(out, kill)
    result = await anyio.run_process(_args(out), cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr.decode()[-2000:]

    data = out.read_bytes()
    assert data.endswith(b"\n")  # no torn tail left
    rollouts = [rollout for _, rollout in read_rollouts(out)]
    assert len(rollouts) == data.count(b"\n")  # every line is a valid rollout
    keys = Counter((r.env, r.seed, r.sample) for r in rollouts)
    assert max(keys.values()) == 1, [k for k, v in keys.items() if v > 1][:5]
    assert set(keys) == set(_planned())
    assert all(r.status == "scored" and r.reward == 1.0 for r in rollouts)
    assert mid_run >= KILLS - 5, mid_run  # the kills did land while it was writing


async def test_a_half_written_line_is_cut_off_and_its_episode_played_once(
    tmp_path: Path,
) -> None:
    out = tmp_path / "small.jsonl"
    args = [
        GYMBUS, "collect", "--env", "retail-orders", "--model", "oracle", "--n", "6",
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    result = await anyio.run_process(args, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr.decode()
    lines = out.read_bytes().splitlines(keepends=True)
    kept, lost = lines[:3], lines[3:]
    # a crash while writing the 5th line: 4th line written whole but for its newline
    out.write_bytes(b"".join(kept) + lost[0][:-1])
    assert [n for n, _ in read_rollouts(out)] == [1, 2, 3]  # the torn tail is not read
    result = await anyio.run_process([*args, "--resume"], cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr.decode()
    data = out.read_bytes()
    assert data.startswith(b"".join(kept))
    ids = [r.episode_id for _, r in read_rollouts(out)]
    assert sorted(ids) == sorted(f"retail-orders/{seed}#0" for seed in range(6))
    assert len(ids) == data.count(b"\n") == 6
