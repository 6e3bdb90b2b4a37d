"""Per-episode limits: turns, tokens and deadlines."""

from __future__ import annotations

from pydantic import Field

from gymbus.runtime.messages import Frozen


class Limits(Frozen):
    """Bounds on one episode. ``None`` switches a bound off.

    ``max_turns`` counts policy (model) calls; ``max_tokens`` counts completion tokens over
    the whole episode. Reaching either ends the episode normally (it is still verified),
    with ``stop_reason`` saying which. Deadlines are failures: a model call that outlives
    ``call_timeout`` is retried by the adapter and finally fails with kind ``model``; a tool
    call that outlives ``tool_timeout`` fails the episode with kind ``tool``; an episode
    that outlives ``episode_timeout`` fails with kind ``timeout``.
    """

    max_turns: int | None = Field(default=32, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    call_timeout: float | None = Field(default=120.0, gt=0)
    tool_timeout: float | None = Field(default=30.0, gt=0)
    episode_timeout: float | None = Field(default=900.0, gt=0)
    max_parallel_tool_calls: int = Field(default=16, ge=1)
