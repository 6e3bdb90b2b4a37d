"""Run summaries: counted as rollouts arrive, printed as a rich table at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from gymbus.runtime.rollout import Rollout


@dataclass(slots=True)
class RunSummary:
    episodes: int = 0
    scored: int = 0
    reward_sum: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)
    completion_tokens: int = 0
    first_failure: dict[str, str] = field(default_factory=dict)

    def add(self, rollout: Rollout) -> None:
        self.episodes += 1
        self.completion_tokens += rollout.usage.completion_tokens
        if rollout.status == "scored" and rollout.reward is not None:
            self.scored += 1
            self.reward_sum += rollout.reward
        elif rollout.failure is not None:
            self.failures[rollout.failure.kind] += 1
            self.first_failure.setdefault(rollout.failure.kind, rollout.failure.message)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.scored if self.scored else None

    def print(self, console: Console, *, env: str, model: str, wall_s: float) -> None:
        table = Table(title=f"gymbus run · {env} · {model}", show_header=False, min_width=48)
        table.add_column("what")
        table.add_column("value", justify="right")
        mean = self.mean_reward
        table.add_row("episodes", str(self.episodes))
        table.add_row("scored", str(self.scored))
        table.add_row("mean reward", "n/a" if mean is None else f"{mean:.4f}")
        table.add_row("failed", str(self.failed))
        for kind, count in sorted(self.failures.items()):
            table.add_row(f"  failed: {kind}", str(count))
        table.add_row("completion tokens", str(self.completion_tokens))
        table.add_row("wall time", f"{wall_s:.2f} s")
        table.add_row("episodes/s", f"{self.episodes / wall_s:.1f}" if wall_s > 0 else "n/a")
        console.print(table)
        for kind, message in sorted(self.first_failure.items()):
            console.print(f"[red]{kind}[/red] failure, first cause: {message}")
