"""The remote-environment protocol (version 1): request and reply bodies shared by
``gymbus serve`` (:mod:`gymbus.server`) and :class:`~gymbus.remote.RemoteEnv`.

Every body is JSON written and read with these pydantic models, messages with the gymbus
message union, so a served episode is lossless. Two kinds of "no":

- a **protocol error** (bad token, malformed body, unknown episode, limits) is an HTTP
  4xx/5xx with ``{"error": {"code", "message", "field"?}}``;
- an **environment's own failure** (a tool rejects its input or crashes, a verifier
  raises) is an HTTP 200 with ``{"failure": {"kind", "message", "exception"}}``, so the
  client can raise exactly what the environment raised in-process.

Conversations travel as deltas (:class:`ConversationDelta`): the server keeps the last
conversation each episode sent, so a turn costs O(new messages) on the wire too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AssistantMessage, ContentPart, Frozen, Message, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import ToolSpec
from gymbus.runtime.users import UserAudit
from gymbus.runtime.verification import Score

PROTOCOL_VERSION = 1
TOKEN_ENV = "GYMBUS_SERVER_TOKEN"
"""Environment variable holding the bearer token (server and client)."""

JSONScalar = str | int | float | bool | None


class ErrorDetail(Frozen):
    code: str
    message: str
    field: str | None = None
    """The request field at fault (dotted path), when one is."""


class ErrorBody(Frozen):
    """Body of every protocol error (HTTP 4xx/5xx)."""

    error: ErrorDetail


StepFailureKind = Literal[
    "bad_task",  # the environment could not build the task
    "input_error",  # a tool raised ToolInputError
    "arguments",  # the arguments violate the tool's schema (ToolArgumentsError)
    "unknown_tool",
    "crash",  # a tool, solver or audit raised anything else
    "timeout",  # a tool outlived the episode's tool_timeout
    "user",  # the simulated user failed (message as the runtime words it)
    "verifier",  # the verifier raised or returned a non-finite reward
]


class StepFailure(Frozen):
    kind: StepFailureKind
    message: str
    """``str()`` of what was raised (what the runtime would show)."""
    exception: str = ""
    """``repr()`` of what was raised."""


class StepFailed(Frozen):
    """An environment step that failed on the server (HTTP 200)."""

    failure: StepFailure


class Health(Frozen):
    status: Literal["ok"] = "ok"
    protocol: int = PROTOCOL_VERSION


class EnvInfo(Frozen):
    name: str
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class EnvList(Frozen):
    envs: tuple[EnvInfo, ...]


class CreateEpisode(Frozen):
    """``POST /v1/episodes``: build the task of ``env`` for ``seed`` with ``options``
    (environment options such as ``difficulty``)."""

    env: str = Field(min_length=1, max_length=200)
    seed: int
    options: dict[str, JSONScalar] = Field(default_factory=dict)


class EpisodeCreated(Frozen):
    """Everything a client needs to build the episode's spec. ``params`` is the
    environment's sampling override as set fields only (unset ones stay the run's)."""

    episode_id: str
    task: Task
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    limits: Limits = Limits()
    params: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    has_user: bool = False
    user_audited: bool = False
    has_solver: bool = False


class CallTool(Frozen):
    """``POST /v1/episodes/{id}/tools/{name}``. A retried request with the same
    ``request_id`` gets the first answer instead of running the tool twice."""

    arguments: dict[str, Any]
    request_id: str | None = Field(default=None, min_length=1, max_length=128)


class ToolResult(Frozen):
    output: str | tuple[ContentPart, ...]


class ConversationDelta(Frozen):
    """A conversation: the first ``base`` messages of the one this episode's previous
    request carried (the server keeps it), then ``messages``."""

    base: int = Field(default=0, ge=0)
    messages: tuple[Message, ...] = ()


class AskUser(Frozen):
    """``POST /v1/episodes/{id}/user``: the simulated user's turn."""

    conversation: ConversationDelta


class UserReplied(Frozen):
    """The user speaks (``message``) or ends the episode (``end``: the reason)."""

    message: UserMessage | None = None
    end: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> UserReplied:
        if (self.message is None) == (self.end is None):
            raise ValueError("a user reply has exactly one of 'message' or 'end'")
        return self


class AskSolver(Frozen):
    """``POST /v1/episodes/{id}/solve``: the reference solver's next message."""

    conversation: ConversationDelta


class SolverReplied(Frozen):
    message: AssistantMessage | str


class AuditUser(Frozen):
    """``POST /v1/episodes/{id}/audit``: the simulated user's fidelity audit."""

    conversation: ConversationDelta


class UserAudited(Frozen):
    audit: UserAudit


class Verify(Frozen):
    """``POST /v1/episodes/{id}/verify``: score the finished episode."""

    transcript: ConversationDelta
    stop_reason: str
    episode_id: str | None = Field(default=None, max_length=200)
    """The client's episode id, handed to the verifier (default: the server's)."""


class Verified(Frozen):
    score: Score


class EpisodeDeleted(Frozen):
    episode_id: str
    deleted: bool = True
