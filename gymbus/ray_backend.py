"""``gymbus collect --backend ray``: the local backend's plan, played by Ray actors.

The driver computes the same deterministic plan as the local backend (``plan_tasks``,
episode keys ``(env, seed, sample)``, minus the ``done`` ones on ``--resume``), cuts it into
small batches and keeps a bounded number of them in flight on each worker. A worker is a
Ray actor that builds its environments, model and :class:`Runtime` from the config (in
its own event loop, on a thread) and answers a batch of keys with the JSONL lines of its
finished rollouts, having first saved their media (which only its own media store holds)
into the rollout file's media folder. The driver writes the lines to the one
:class:`RolloutSink` as each batch comes back — it never sees the media bytes, so on a
cluster of several machines the media folder must be on a filesystem they all share::

    driver ── batch of keys ──▶ CollectWorker (Runtime, envs, model), one per worker
           ◀── JSONL bytes ───

A worker that dies (process killed, node lost) fails its in-flight batches: their keys go
back to the front of the queue and the worker is replaced, so no episode is lost, and a
key is written at most once. Across a driver crash, ``--resume`` does the rest.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import ray
import structlog
from anyio.from_thread import BlockingPortal, start_blocking_portal
from ray.actor import ActorHandle
from ray.exceptions import NodeDiedError, ObjectLostError, RayActorError, WorkerCrashedError
from rich.console import Console

from gymbus.adapters import HTTPClient, RetryPolicy
from gymbus.collect_config import CollectConfig
from gymbus.envs.base import Environment
from gymbus.envs.registry import load
from gymbus.models import make_model
from gymbus.plan import EpisodeKey, PlannedTask, plan_jobs, plan_tasks
from gymbus.progress import CollectProgress
from gymbus.runtime.errors import ConfigError, GymbusError, InputError
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.media_files import MediaSaver, media_dir_for
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.sink import RolloutSink

log = structlog.get_logger("gymbus.ray")

BATCH_SIZE = 8
"""Episodes per batch: small, so rollouts stream back soon and a lost worker costs little."""

WORKER_LOST = (RayActorError, WorkerCrashedError, NodeDiedError, ObjectLostError)
"""What a batch raises when its worker (process or node) died under it."""


class WorkersLostError(GymbusError):
    """Workers kept dying: more were lost than the run may replace."""


# -- the worker ------------------------------------------------------------------------------


def jobs_for(
    envs: dict[str, Environment],
    keys: Sequence[EpisodeKey],
    *,
    group_size: int,
    limits: dict[str, Any],
) -> Iterator[EpisodeJob]:
    """The jobs of ``keys``, built by :func:`plan_jobs` exactly as the local backend builds
    them (same episode ids, groups and limit overrides)."""
    tasks = list(dict.fromkeys(PlannedTask(env, seed) for env, seed, _ in keys))
    every = {(t.env, t.seed, s) for t in tasks for s in range(group_size)}
    return plan_jobs(envs, tasks, group_size=group_size, done=every - set(keys), limits=limits)


@asynccontextmanager
async def _serving(
    client: HTTPClient, envs: Iterable[Environment], runtime: Runtime
) -> AsyncIterator[Runtime]:
    """The worker's client, environments and runtime, closed in reverse order."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(client)
        for env in envs:
            await stack.enter_async_context(env)
        yield await stack.enter_async_context(runtime)


class CollectWorker:
    """One Ray actor: a :class:`Runtime` with the run's model and environments, built
    here from the config (nothing live crosses processes), on an event loop of its own.
    It saves the media of its rollouts into ``media_dir`` (an absolute path)."""

    def __init__(self, config_json: str, media_dir: str) -> None:
        cfg = self._cfg = CollectConfig.model_validate_json(config_json)
        self._media = MediaSaver(Path(media_dir))
        self._limits = cfg.limit_overrides()
        self._envs = {
            name: load(name, difficulty=entry.difficulty, **entry.options)
            for name, entry in cfg.envs.items()
        }
        client = HTTPClient()
        policy = make_model(
            cfg.model,
            base_url=cfg.base_url,
            api=cfg.api,
            api_key_env=cfg.api_key_env,
            client=client,
            retry=RetryPolicy(max_attempts=cfg.max_attempts),
            request_timeout=cfg.request_timeout,
        )
        runtime = Runtime(
            policy,
            concurrency=cfg.concurrency,
            model_concurrency=cfg.model_concurrency,
            env_concurrency={n: e.concurrency for n, e in cfg.envs.items() if e.concurrency},
            params=cfg.sampling,
        )
        self._stack = ExitStack()
        portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
        self._portal = portal
        self._runtime = self._stack.enter_context(
            portal.wrap_async_context_manager(_serving(client, self._envs.values(), runtime))
        )

    def pid(self) -> int:
        return os.getpid()

    def play(self, keys: list[EpisodeKey]) -> bytes:
        """Play ``keys``; their rollouts as JSONL (one line each, in completion order),
        each line's media saved before it is returned."""
        return self._portal.call(self._play, keys)

    async def _play(self, keys: list[EpisodeKey]) -> bytes:
        jobs = jobs_for(self._envs, keys, group_size=self._cfg.group_size, limits=self._limits)
        lines: list[bytes] = []
        async for rollout in self._runtime.collect(jobs):
            self._media.save(rollout)
            lines.append(rollout.to_json_line())
        return b"".join(lines)

    def close(self) -> None:
        self._stack.close()


# -- the driver ------------------------------------------------------------------------------


def share(total: int | None, workers: int) -> int | None:
    """One worker's part of a budget meant for the whole run (rounded up)."""
    return None if total is None else max(1, math.ceil(total / workers))


def worker_config(cfg: CollectConfig, workers: int) -> CollectConfig:
    """The config each worker runs: the run's concurrency limits split between them."""
    envs = {
        name: entry.model_copy(update={"concurrency": share(entry.concurrency, workers)})
        for name, entry in cfg.envs.items()
    }
    return cfg.model_copy(
        update={
            "envs": envs,
            "concurrency": share(cfg.concurrency, workers),
            "model_concurrency": share(cfg.model_concurrency, workers),
        }
    )


def batches(keys: Iterable[EpisodeKey], size: int) -> Iterator[tuple[EpisodeKey, ...]]:
    """``keys`` in order, ``size`` at a time."""
    batch: list[EpisodeKey] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield tuple(batch)
            batch = []
    if batch:
        yield tuple(batch)


@dataclass(eq=False, slots=True)
class _Worker:
    actor: ActorHandle[CollectWorker]
    slot: int
    alive: bool = True
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class _Batch:
    worker: _Worker
    keys: tuple[EpisodeKey, ...]


@dataclass(slots=True)
class RayStats:
    """What the run survived: workers replaced, episodes played again."""

    workers_lost: int = 0
    rescheduled: int = 0
    duplicates_dropped: int = 0


def _plan(cfg: CollectConfig, done: set[EpisodeKey]) -> tuple[list[EpisodeKey], dict[str, int]]:
    """The keys to play in plan order (the local backend's, minus ``done``), per-env counts."""
    tasks = plan_tasks({n: e.weight for n, e in cfg.envs.items()}, cfg.n, seed=cfg.seed)
    every = ((t.env, t.seed, s) for t in tasks for s in range(cfg.group_size))
    keys = [key for key in every if key not in done]
    scheduled = dict.fromkeys(cfg.envs, 0)
    for env, _, _ in keys:
        scheduled[env] += 1
    return keys, scheduled


class RayCollector:
    """Drives one collection over ``workers`` Ray actors (Ray must be initialized).

    ``on_batch(collector)`` is called after each batch is written — a hook for tests
    (e.g. to kill a worker mid-run).
    """

    def __init__(
        self,
        cfg: CollectConfig,
        done: set[EpisodeKey],
        *,
        workers: int,
        console: Console | None = None,
        batch_size: int = BATCH_SIZE,
        max_worker_losses: int | None = None,
        on_batch: Callable[[RayCollector], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.cfg = cfg
        self.workers = workers
        self.stats = RayStats()
        self._keys, scheduled = _plan(cfg, done)
        self.progress = CollectProgress(scheduled, console)
        per_worker = share(cfg.concurrency, workers) or 1
        self.batch_size = min(batch_size, per_worker)
        # enough batches to keep the worker's Runtime full, plus one on its way
        self.depth = math.ceil(per_worker / self.batch_size) + 1
        self.max_worker_losses = 3 * workers if max_worker_losses is None else max_worker_losses
        self._on_batch = on_batch
        self._config_json = worker_config(cfg, workers).model_dump_json()
        assert cfg.out is not None
        # absolute: a worker's working directory is not the driver's
        self._media_dir = str(media_dir_for(cfg.out).absolute())
        self._remote = ray.remote(CollectWorker).options(num_cpus=1, max_concurrency=self.depth + 1)
        self._workers: list[_Worker] = []
        self._pending: dict[ray.ObjectRef[bytes], _Batch] = {}
        self._written: set[EpisodeKey] = set()

    @property
    def actors(self) -> list[ActorHandle[CollectWorker]]:
        """The live workers' actor handles."""
        return [w.actor for w in self._workers if w.alive]

    def run(self) -> CollectProgress:
        assert self.cfg.out is not None
        queue = deque(batches(self._keys, self.batch_size))
        log.info(
            "ray.collect.started",
            workers=self.workers,
            episodes=len(self._keys),
            batch_size=self.batch_size,
            out=str(self.cfg.out),
        )
        self._workers = [self._spawn(slot) for slot in range(self.workers)]
        try:
            # the workers save the media: only their stores hold the bytes
            with RolloutSink(self.cfg.out, save_media=False) as sink, self.progress:
                while queue or self._pending:
                    self._submit(queue)
                    ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=1.0)
                    for ref in ready:
                        self._settle(ref, queue, sink)
        finally:
            self._stop()
        log.info("ray.collect.finished", written=len(self._written), **asdict(self.stats))
        return self.progress

    def _spawn(self, slot: int) -> _Worker:
        # Ray types .remote() as ActorHandle | type (so that method calls type-check)
        actor = cast(
            "ActorHandle[CollectWorker]", self._remote.remote(self._config_json, self._media_dir)
        )
        return _Worker(actor, slot)

    def _submit(self, queue: deque[tuple[EpisodeKey, ...]]) -> None:
        live = [w for w in self._workers if w.alive]
        if queue and not live:
            raise WorkersLostError("every Ray worker was lost; continue with --resume")
        while queue:
            worker = min(live, key=lambda w: w.in_flight)
            if worker.in_flight >= self.depth:
                return
            keys = queue.popleft()
            ref: ray.ObjectRef[bytes] = worker.actor.play.remote(list(keys))
            self._pending[ref] = _Batch(worker, keys)
            worker.in_flight += 1
            for env, _, _ in keys:
                self.progress.started(env)

    def _settle(
        self, ref: ray.ObjectRef[bytes], queue: deque[tuple[EpisodeKey, ...]], sink: RolloutSink
    ) -> None:
        batch = self._pending.pop(ref)
        batch.worker.in_flight -= 1
        try:
            data = ray.get(ref)
        except WORKER_LOST as exc:
            self._lost(batch, exc, queue)
            return
        except ray.exceptions.RayTaskError as exc:  # e.g. the media folder cannot be written
            if isinstance(exc.cause, InputError):
                raise exc.cause from None
            raise
        expected = set(batch.keys)
        for line in data.splitlines():
            rollout = Rollout.model_validate_json(line)
            key = (rollout.env, rollout.seed, rollout.sample)
            if key not in expected or key in self._written:
                self.stats.duplicates_dropped += 1
                log.warning("ray.duplicate_dropped", episode_id=rollout.episode_id)
                continue
            expected.discard(key)
            sink.write(rollout)
            self.progress.add(rollout)
            self._written.add(key)
        if expected:  # Runtime.collect yields every job (nothing is dropped as stale here)
            raise RuntimeError(f"a worker returned no rollout for {sorted(expected)}")
        if self._on_batch is not None:
            self._on_batch(self)

    def _lost(self, batch: _Batch, exc: Exception, queue: deque[tuple[EpisodeKey, ...]]) -> None:
        """Put the batch's keys back at the front of the queue; replace its worker (once)."""
        queue.appendleft(batch.keys)
        self.stats.rescheduled += len(batch.keys)
        for env, _, _ in batch.keys:
            self.progress.envs[env].started -= 1
        worker = batch.worker
        if not worker.alive:
            return
        worker.alive = False
        self.stats.workers_lost += 1
        ray.kill(worker.actor)  # a worker that is only unreachable must not play on
        replace = self.stats.workers_lost <= self.max_worker_losses
        log.warning(
            "ray.worker_lost",
            slot=worker.slot,
            error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            rescheduled=len(batch.keys),
            replaced=replace,
        )
        if replace:
            self._workers[worker.slot] = self._spawn(worker.slot)
        elif not any(w.alive for w in self._workers):
            raise WorkersLostError(
                f"lost {self.stats.workers_lost} Ray workers (last: {type(exc).__name__}: "
                f"{exc}); continue with --resume"
            )

    def _stop(self) -> None:
        live = self.actors
        try:
            ray.get([actor.close.remote() for actor in live], timeout=10)
        except Exception as exc:  # the run is over either way; the actors are killed next
            log.warning("ray.close_failed", error=repr(exc))
        for actor in live:
            ray.kill(actor)


@contextmanager
def ray_session(address: str | None, workers: int | None) -> Iterator[int]:
    """Connect to the Ray cluster at ``address`` (or start a local one with ``workers``
    CPUs, default all); yields how many workers to run; shuts Ray down at the end."""
    quiet: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    try:
        if address is None:
            count = workers or os.cpu_count() or 1
            ray.init(address="local", num_cpus=count, **quiet)  # never join another cluster
        else:
            _probe(address)
            ray.init(address=address, **quiet)
            cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]  # untyped in Ray
            count = workers or max(1, int(cpus))
    except ConnectionError as exc:  # "auto" with no cluster running
        raise ConfigError(f"--address {address}: {exc}") from None
    try:
        yield count
    finally:
        ray.shutdown()


def _probe(address: str) -> None:
    """Fail fast on a HOST:PORT nobody listens on (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray cluster answers there ({exc})") from None


def collect_with_ray(
    cfg: CollectConfig,
    done: set[EpisodeKey],
    *,
    address: str | None = None,
    workers: int | None = None,
    console: Console | None = None,
) -> CollectProgress:
    """Run the collection on Ray: a local instance, or the cluster at ``address``."""
    with ray_session(address, workers) as count:
        return RayCollector(cfg, done, workers=count, console=console).run()
