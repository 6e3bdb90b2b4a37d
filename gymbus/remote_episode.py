"""The client side of one served episode: :class:`RemoteEpisode` (requests, the
conversation the server holds, media) and the proxies an :class:`EpisodeSpec` of a remote
environment is made of — :class:`RemoteTool`, :class:`RemoteUser`, :class:`RemoteSolver`,
:class:`RemoteVerifier`.

What an environment raised on the server is raised again here with the same type and
message; when the server cannot be reached, the step fails with its own kind (see
:mod:`gymbus.remote`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import orjson
from pydantic import BaseModel, ValidationError

from gymbus.remote_protocol import (
    AskSolver,
    AskUser,
    AuditUser,
    CallTool,
    ConversationDelta,
    SolverReplied,
    StepFailed,
    StepFailure,
    ToolResult,
    UserAudited,
    UserReplied,
    Verified,
    Verify,
)
from gymbus.runtime.errors import (
    BadTaskError,
    ModelError,
    ToolArgumentsError,
    ToolError,
    ToolInputError,
    UnknownToolError,
    UserSimulatorError,
    VerifierError,
)
from gymbus.runtime.messages import AnyMessage, AssistantMessage, ContentPart
from gymbus.runtime.tools import ToolOutput, ToolSpec
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import EndEpisode, UserAudit, UserTurn
from gymbus.runtime.verification import CompletedEpisode, Score

if TYPE_CHECKING:
    from gymbus.remote import RemoteEnv

M = TypeVar("M", bound=BaseModel)


class RemoteCallError(Exception):
    """A request to the environment server failed: unreachable, refused (``status`` and
    the server's error ``code``) or answered with a body that is not the protocol's."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class ServerSideError(Exception):
    """An exception raised on the environment server. Its ``repr`` is the original's, so
    a failure message reads as it would in-process (``tool 'x' crashed: ValueError(…)``)."""

    def __init__(self, message: str, original: str = "") -> None:
        super().__init__(message)
        self.original = original

    def __repr__(self) -> str:
        return self.original or super().__repr__()


class RemoteBuildError(ServerSideError, BadTaskError):
    pass


class RemoteToolError(ServerSideError, ToolError):
    pass


class RemoteUserError(ServerSideError, UserSimulatorError):
    pass


class RemoteVerifierError(ServerSideError, VerifierError):
    pass


def parse_reply(data: bytes, model: type[M]) -> M | StepFailure:
    """A step's reply: the success ``model``, or the environment's failure."""
    try:
        value = orjson.loads(data)
        if isinstance(value, dict) and "failure" in value:
            return StepFailed.model_validate(value).failure
        return model.model_validate(value)
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise RemoteCallError(
            f"the server's reply is not a valid {model.__name__}: {exc}"
        ) from None


class RemoteEpisode:
    """The client's handle on one served episode (the ``state`` of its spec): requests to
    it, the conversation the server holds (so each request sends only new messages),
    media to copy."""

    __slots__ = ("_closed", "_lock", "_synced", "episode_id", "path", "remote")

    def __init__(self, remote: RemoteEnv, episode_id: str) -> None:
        self.remote = remote
        self.episode_id = episode_id
        """The server's id of the episode (the runtime's episode id is the client's)."""
        self.path = f"/v1/episodes/{episode_id}"
        self._synced: Sequence[AnyMessage] = ()
        self._lock = anyio.Lock()
        self._closed = False

    async def step(self, path: str, body: BaseModel) -> bytes:
        return await self.remote.send("POST", self.path + path, body)

    async def with_conversation(
        self,
        path: str,
        conversation: Transcript,
        make: Callable[[ConversationDelta], BaseModel],
    ) -> bytes:
        """POST ``make(delta)`` where the delta carries what the server lacks of
        ``conversation``; a server that lost track gets the whole conversation."""
        async with self._lock:  # one conversation-bearing request at a time
            delta = self._delta(conversation)
            self._synced = ()  # unknown until the server answers
            try:
                data = await self.step(path, make(delta))
            except RemoteCallError as exc:
                if exc.code != "conversation_out_of_sync" or delta.base == 0:
                    raise
                data = await self.step(path, make(ConversationDelta(messages=tuple(conversation))))
            self._synced = conversation
            return data

    def _delta(self, conversation: Transcript) -> ConversationDelta:
        synced = self._synced
        base = len(synced)
        if base > len(conversation) or any(
            a is not b for a, b in zip(synced, conversation, strict=False)
        ):
            base = 0
        return ConversationDelta(base=base, messages=tuple(conversation[base:]))

    async def pull_media(self, parts: Iterable[ContentPart]) -> None:
        """Copy the media ``parts`` refer to from the server, when not already here."""
        store = self.remote.media
        for part in parts:
            ref = getattr(part, "media", None)
            if ref is None or ref in store:
                continue
            raw = await self.remote.send("GET", f"/v1/media/{ref.sha256}")
            try:
                got = store.put(raw, ref.mime_type)
            except Exception as exc:
                raise RemoteCallError(f"media {ref.sha256} from the server: {exc}") from None
            if got.sha256 != ref.sha256:
                raise RemoteCallError(f"media {ref.sha256} from the server has another hash")

    async def close(self) -> None:
        """Drop the episode on the server, once (best effort: an episode left behind
        expires). The verifier closes a scored episode; the spec's cleanup any other."""
        if self._closed:
            return
        self._closed = True
        with anyio.move_on_after(5, shield=True), contextlib.suppress(RemoteCallError):
            await self.remote.send("DELETE", self.path, attempts=1)


def _tool_failure(failure: StepFailure) -> Exception:
    match failure.kind:
        case "input_error":
            return ToolInputError(failure.message)
        case "arguments":
            return ToolArgumentsError(failure.message)
        case "unknown_tool":
            return UnknownToolError(failure.message)
        case "timeout":  # the tool executor words it, as for a local tool
            return TimeoutError(failure.message)
        case _:  # a crash: the tool executor words it with the original's repr
            return ServerSideError(failure.message, failure.exception)


class RemoteTool:
    """A served episode's tool, with the server's :class:`ToolSpec`."""

    __slots__ = ("_episode", "_spec")

    def __init__(self, episode: RemoteEpisode, spec: ToolSpec) -> None:
        self._episode = episode
        self._spec = spec

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def __call__(self, arguments: dict[str, Any]) -> ToolOutput:
        name = self._spec.name
        body = CallTool(arguments=arguments, request_id=uuid.uuid4().hex)
        try:
            result = parse_reply(await self._episode.step(f"/tools/{name}", body), ToolResult)
            if isinstance(result, ToolResult) and isinstance(result.output, tuple):
                await self._episode.pull_media(result.output)
        except RemoteCallError as exc:
            raise RemoteToolError(f"remote tool {name!r}: {exc}") from None
        if isinstance(result, StepFailure):
            raise _tool_failure(result)
        return result.output


class RemoteUser:
    """A served episode's simulated user."""

    __slots__ = ("_episode",)

    def __init__(self, episode: RemoteEpisode) -> None:
        self._episode = episode

    async def reply(self, conversation: Transcript) -> UserTurn:
        try:
            data = await self._episode.with_conversation(
                "/user", conversation, lambda delta: AskUser(conversation=delta)
            )
            result = parse_reply(data, UserReplied)
            if isinstance(result, UserReplied) and result.message is not None:
                await self._episode.pull_media(result.message.content)
        except RemoteCallError as exc:
            raise UserSimulatorError(f"remote simulated user: {exc}") from None
        if isinstance(result, StepFailure):
            raise RemoteUserError(result.message, result.exception)
        if result.message is not None:
            return result.message
        return EndEpisode(result.end or "")


class RemoteAuditedUser(RemoteUser):
    """A served simulated user that audits its own conduct (see ``AuditedUser``)."""

    __slots__ = ()

    async def audit(self, conversation: Transcript) -> UserAudit:
        try:
            data = await self._episode.with_conversation(
                "/audit", conversation, lambda delta: AuditUser(conversation=delta)
            )
            result = parse_reply(data, UserAudited)
        except RemoteCallError as exc:
            raise UserSimulatorError(f"remote user audit: {exc}") from None
        if isinstance(result, StepFailure):
            raise RemoteUserError(result.message, result.exception)
        return result.audit


class RemoteSolver:
    """A served episode's reference solver. It needs I/O, so it is an ``AsyncSolver``
    (the oracle model calls :meth:`next_message_async`)."""

    __slots__ = ("_episode",)

    def __init__(self, episode: RemoteEpisode) -> None:
        self._episode = episode

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        raise ModelError(
            "the reference solver of a remote environment runs on its server: "
            "call `await next_message_async(conversation)` (the oracle model does)"
        )

    async def next_message_async(self, conversation: Transcript) -> AssistantMessage:
        try:
            data = await self._episode.with_conversation(
                "/solve", conversation, lambda delta: AskSolver(conversation=delta)
            )
            result = parse_reply(data, SolverReplied)
        except RemoteCallError as exc:
            raise ModelError(f"remote reference solver: {exc}") from None
        if isinstance(result, StepFailure):  # not infrastructure: the policy wraps it
            raise ServerSideError(result.message, result.exception)
        message = result.message
        return AssistantMessage(content=message) if isinstance(message, str) else message


class RemoteVerifier:
    """A served episode's verifier; the episode is dropped on the server once scored."""

    __slots__ = ("_episode",)

    def __init__(self, episode: RemoteEpisode) -> None:
        self._episode = episode

    async def verify(self, episode: CompletedEpisode) -> Score:
        try:
            data = await self._episode.with_conversation(
                "/verify",
                episode.transcript,
                lambda delta: Verify(
                    transcript=delta, stop_reason=episode.stop_reason, episode_id=episode.episode_id
                ),
            )
            result = parse_reply(data, Verified)
        except RemoteCallError as exc:
            raise VerifierError(f"remote verifier: {exc}") from None
        await self._episode.close()
        if isinstance(result, StepFailure):
            raise RemoteVerifierError(result.message, result.exception)
        return result.score
