"""The ``Model`` protocol every policy backend implements, and what a call carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import Field

from gymbus.runtime.messages import AssistantMessage, Frozen
from gymbus.runtime.tools import ToolSpec
from gymbus.runtime.transcript import Transcript


class SamplingParams(Frozen):
    """Sampling options passed to the server. ``None`` leaves the server's default.

    ``logprobs``/``top_logprobs`` ask for per-token log-probabilities; ``return_token_ids``
    asks vLLM for prompt and completion token ids (``return_token_ids``); anything else a
    server accepts goes in ``extra_body`` and is merged into the request verbatim.
    """

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    return_token_ids: bool = False
    extra_body: dict[str, Any] = Field(default_factory=dict)


class Solver(Protocol):
    """A reference solver bound to one task: decides the next assistant message from the
    conversation so far, acting only through messages and tool calls (never reading the
    verifier's answer key)."""

    def next_message(self, conversation: Transcript) -> AssistantMessage: ...


@runtime_checkable
class AsyncSolver(Protocol):
    """A reference solver that must do I/O to decide (e.g. one that lives on a remote
    environment server). Such a solver also implements :class:`Solver` (its sync method
    may raise); the oracle model prefers the async method when a solver has it."""

    async def next_message_async(self, conversation: Transcript) -> AssistantMessage: ...


@dataclass(frozen=True, slots=True)
class EpisodeInfo:
    """Identity of the episode a call belongs to (for logging, oracles, sticky routing)."""

    episode_id: str
    env: str
    task_id: str
    seed: int
    sample: int = 0
    solver: Solver | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One policy turn. ``weight_version`` is the trainer's current policy version (see
    ``Runtime.weight_version``): adapters send it with the request and it is recorded on
    the turn's ``generation``."""

    conversation: Transcript
    tools: tuple[ToolSpec, ...]
    params: SamplingParams
    episode: EpisodeInfo
    weight_version: int | None = None


@runtime_checkable
class Model(Protocol):
    """A policy backend. ``generate`` returns the next assistant message; its
    ``generation`` records model name, usage, token ids/logprobs when asked, latency and
    attempts. Infrastructure failures raise :class:`~gymbus.runtime.errors.ModelError`."""

    @property
    def name(self) -> str: ...

    async def generate(self, request: ModelRequest) -> AssistantMessage: ...
