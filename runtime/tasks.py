"""Tasks: what an environment's seeded generator produces."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gymbus.runtime.messages import Frozen


class Task(Frozen):
    """One task of one environment. ``data`` holds everything the environment needs to
    build the episode and verify it (including any answer key; the policy only ever sees
    the messages built from it). Same ``(env, seed, options)`` → byte-identical task."""

    env: str
    task_id: str
    seed: int
    data: dict[str, Any] = Field(default_factory=dict)
