"""`gymbus collect --backend ray`: the same rollouts as the local backend, and every
planned episode exactly once in the file when a worker dies mid-run."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import ray
from structlog.testing import capture_logs

from gymbus.collect_config import CollectConfig, EnvEntry
from gymbus.envs.registry import load
from gymbus.plan import EpisodeKey, plan_jobs, plan_tasks
from gymbus.ray_backend import (
    RayCollector,
    WorkersLostError,
    batches,
    jobs_for,
    share,
    worker_config,
)
from gymbus.runtime.sink import read_rollouts

GYMBUS = str(Path(sys.executable).parent / "gymbus")
WEIGHTS = {"retail-orders": 0.6, "ledger-signs": 0.4}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray instance with two CPUs (two workers), shut down after the module."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _gymbus(*args: str, cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [GYMBUS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    return result.returncode, result.stdout + result.stderr


def _rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _outcomes(path: Path) -> Counter[bytes]:
    """The file's rollouts without timing, in a form that ignores their order."""
    fields = ("env", "seed", "sample", "episode_id", "group_id", "status", "reward", "messages")
    return Counter(orjson.dumps({f: row[f] for f in fields}) for row in _rows(path))


def _planned(n: int, group_size: int) -> set[EpisodeKey]:
    return {(t.env, t.seed, s) for t in plan_tasks(WEIGHTS, n, seed=0) for s in range(group_size)}


# -- pure parts ------------------------------------------------------------------------------


def test_a_batch_builds_the_same_jobs_as_the_local_plan() -> None:
    envs = {name: load(name) for name in WEIGHTS}
    tasks = plan_tasks(WEIGHTS, 6, seed=0)
    local = {(j.env, j.seed, j.sample): j for j in plan_jobs(envs, tasks, group_size=3)}
    keys = sorted(local)[1:5]
    jobs = list(jobs_for(envs, keys, group_size=3, limits={}))
    assert [(j.env, j.seed, j.sample) for j in jobs] == keys
    for job in jobs:
        twin = local[(job.env, job.seed, job.sample)]
        assert (job.episode_id, job.group_id, job.group_size) == (
            twin.episode_id,
            twin.group_id,
            twin.group_size,
        )


def test_batches_and_budget_shares() -> None:
    keys = [("a", seed, 0) for seed in range(5)]
    assert [len(b) for b in batches(keys, 2)] == [2, 2, 1]
    assert [k for b in batches(keys, 2) for k in b] == keys
    assert (share(64, 2), share(5, 2), share(1, 3), share(None, 2)) == (32, 3, 1, None)
    cfg = CollectConfig(envs={"a": EnvEntry(concurrency=3), "b": EnvEntry()}, concurrency=10)
    split = worker_config(cfg, 2)
    assert (split.concurrency, split.envs["a"].concurrency, split.envs["b"].concurrency) == (
        5,
        2,
        None,
    )


def test_the_cli_refuses_ray_options_without_the_ray_backend(tmp_path: Path) -> None:
    out = str(tmp_path / "x.jsonl")
    code, text = _gymbus("collect", "--env", "retail-orders", "--out", out, "--backend", "spark",
                         cwd=tmp_path)  # fmt: skip
    assert code == 2
    assert "--backend" in text
    code, text = _gymbus("collect", "--env", "retail-orders", "--out", out, "--address", "auto",
                         cwd=tmp_path)  # fmt: skip
    assert code == 2
    assert "--backend ray" in text
    code, text = _gymbus("collect", "--env", "retail-orders", "--out", out, "--backend", "ray",
                         "--address", "127.0.0.1:1", cwd=tmp_path)  # fmt: skip
    assert code == 2  # at once, not after Ray's minutes of retries
    assert "no Ray cluster answers" in text


# -- on Ray ----------------------------------------------------------------------------------


def test_ray_backend_writes_the_same_rollouts_as_the_local_backend(
    ray_address: str, tmp_path: Path
) -> None:
    common = ["collect", "--env", "retail-orders=0.6", "--env", "ledger-signs=0.4", "--model",
              "oracle", "--n", "150", "--group-size", "2", "--quiet"]  # fmt: skip
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    code, text = _gymbus(*common, "--out", str(local), cwd=tmp_path)
    assert code == 0, text
    code, text = _gymbus(*common, "--out", str(on_ray), "--backend", "ray", "--address",
                         ray_address, "--workers", "2", cwd=tmp_path)  # fmt: skip
    assert code == 0, text
    assert "gymbus collect: done" in text
    assert _outcomes(on_ray) == _outcomes(local)
    assert {(r["env"], r["seed"], r["sample"]) for r in _rows(on_ray)} == _planned(150, 2)


def test_ray_backend_starts_and_stops_its_own_ray_and_resumes(tmp_path: Path) -> None:
    """Without --address a local Ray instance is started and shut down; --resume adds
    exactly the missing episodes."""
    out = tmp_path / "own.jsonl"
    args = ["collect", "--env", "retail-orders=0.6", "--env", "ledger-signs=0.4", "--n", "40",
            "--out", str(out), "--quiet", "--backend", "ray", "--workers", "2"]  # fmt: skip
    code, text = _gymbus(*args, cwd=tmp_path)
    assert code == 0, text
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:25]))  # as if the driver had died after 25 rollouts
    code, text = _gymbus(*args, "--resume", cwd=tmp_path)
    assert code == 0, text
    keys = Counter((r["env"], r["seed"], r["sample"]) for r in _rows(out))
    assert max(keys.values()) == 1
    assert set(keys) == _planned(40, 1)


def _kill_with_ray(actor: Any) -> None:
    ray.kill(actor)


def _kill_with_sigkill(actor: Any) -> None:
    os.kill(ray.get(actor.pid.remote()), signal.SIGKILL)


@pytest.mark.parametrize("kill", [_kill_with_ray, _kill_with_sigkill], ids=["ray.kill", "SIGKILL"])
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    ray_address: str, tmp_path: Path, kill: Callable[[Any], None]
) -> None:
    out = tmp_path / "killed.jsonl"
    cfg = CollectConfig(
        envs={name: EnvEntry(weight=w) for name, w in WEIGHTS.items()},
        n=400,
        group_size=2,
        out=out,
    )
    killed: list[Any] = []

    def kill_first_worker(collector: RayCollector) -> None:
        if not killed:  # the first batch is back: the workers hold several more each
            killed.append(collector.actors[0])
            kill(killed[0])

    collector = RayCollector(cfg, set(), workers=2, on_batch=kill_first_worker)
    with capture_logs() as logs:
        progress = collector.run()
    assert collector.stats.workers_lost == 1
    assert collector.stats.rescheduled > 0  # the killed worker's batches were played again
    assert collector.stats.duplicates_dropped == 0
    assert killed[0] not in collector.actors  # replaced
    assert [e["slot"] for e in logs if e["event"] == "ray.worker_lost"] == [0]
    rows = _rows(out)
    keys = Counter((r["env"], r["seed"], r["sample"]) for r in rows)
    assert max(keys.values()) == 1
    assert set(keys) == _planned(400, 2)
    assert all(r["status"] == "scored" and r["reward"] == 1.0 for r in rows)
    assert progress.done == 800
    assert all(c.in_flight == 0 for c in progress.envs.values())


def test_a_run_that_loses_too_many_workers_stops_and_resume_finishes_it(
    ray_address: str, tmp_path: Path
) -> None:
    out = tmp_path / "stopped.jsonl"
    cfg = CollectConfig(
        envs={name: EnvEntry(weight=w) for name, w in WEIGHTS.items()}, n=200, out=out
    )

    def kill_every_worker(collector: RayCollector) -> None:
        for actor in collector.actors:
            ray.kill(actor)

    stopped = RayCollector(cfg, set(), workers=2, max_worker_losses=1, on_batch=kill_every_worker)
    with pytest.raises(WorkersLostError, match="--resume"):
        stopped.run()
    done = {(r.env, r.seed, r.sample) for _, r in read_rollouts(out)}
    assert 0 < len(done) < 200
    RayCollector(cfg, done, workers=2).run()
    keys = Counter((r["env"], r["seed"], r["sample"]) for r in _rows(out))
    assert max(keys.values()) == 1
    assert set(keys) == _planned(200, 1)
