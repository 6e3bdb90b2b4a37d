"""Live progress of a collection (rich): per environment done, failed, in flight, mean
reward; overall rollouts/s and tokens/s. Drawn on stderr only when it is a terminal and
``--quiet`` is not given; the same counters print as a summary table at the end."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.live import Live
from rich.table import Table

from gymbus.runtime.rollout import Rollout


@dataclass(slots=True)
class EnvCounters:
    scheduled: int = 0
    started: int = 0
    done: int = 0
    failed: int = 0
    reward_sum: float = 0.0
    scored: int = 0
    tokens: int = 0
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def in_flight(self) -> int:
        return self.started - self.done

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.scored if self.scored else None


class CollectProgress:
    """Counts rollouts as they arrive; ``started(env)`` is called when an episode begins."""

    def __init__(self, scheduled: dict[str, int], console: Console | None) -> None:
        self.envs = {name: EnvCounters(scheduled=count) for name, count in scheduled.items()}
        self._console = console
        self._live: Live | None = None
        self._t0 = time.perf_counter()

    def started(self, env: str) -> None:
        self.envs[env].started += 1

    def add(self, rollout: Rollout) -> None:
        c = self.envs[rollout.env]
        c.done += 1
        c.tokens += rollout.usage.total_tokens + rollout.user_usage.total_tokens
        if rollout.status == "scored" and rollout.reward is not None:
            c.scored += 1
            c.reward_sum += rollout.reward
        elif rollout.failure is not None:
            c.failed += 1
            c.failures[rollout.failure.kind] += 1

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.envs.values())

    @property
    def done(self) -> int:
        return sum(c.done for c in self.envs.values())

    def table(self, title: str = "gymbus collect") -> Table:
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        done = self.done
        tokens = sum(c.tokens for c in self.envs.values())
        table = Table(
            title=f"{title} · {done / elapsed:.1f} rollouts/s · {tokens / elapsed:,.0f} tokens/s "
            f"· {elapsed:.1f} s"
        )
        for column in ("environment", "done", "scheduled", "in flight", "failed", "mean reward"):
            table.add_column(column, justify="left" if column == "environment" else "right")
        table.add_column("failures by cause")
        for name, c in sorted(self.envs.items()):
            mean = c.mean_reward
            table.add_row(
                name,
                str(c.done),
                str(c.scheduled),
                str(c.in_flight),
                str(c.failed),
                "n/a" if mean is None else f"{mean:.3f}",
                ", ".join(f"{k} {v}" for k, v in sorted(c.failures.items())),
            )
        return table

    def __enter__(self) -> Self:
        if self._console is not None:
            # rich redraws 4 times a second from the counters; adding a rollout is O(1)
            self._live = Live(
                get_renderable=self.table,
                console=self._console,
                refresh_per_second=4,
                transient=True,
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.__exit__(exc_type, exc, tb)
