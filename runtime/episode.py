"""The episode loop: policy → tool executor → policy … with the user simulator's turn
when the policy answers, until floor control says the episode is over.

Each turn is one request over the bus to the actor whose turn it is; the reply is
appended to the transcript (O(new messages)). Infrastructure errors end the loop as a
failure of their kind; the loop never turns them into a reward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from gymbus.runtime.actors import (
    POLICY_ADDRESS,
    TOOLS_ADDRESS,
    USER_ADDRESS,
    PolicyCall,
    ToolBatch,
    ToolResults,
    UserCall,
)
from gymbus.runtime.bus import Bus
from gymbus.runtime.context import (
    ContextEvent,
    ContextExhaustedError,
    ContextView,
    ContextWindow,
)
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import FailureKind, InfraError
from gymbus.runtime.events import (
    EpisodeStarted,
    MessagePosted,
    ModelCallFinished,
    ToolCallFinished,
)
from gymbus.runtime.floor import next_turn
from gymbus.runtime.messages import AnyMessage, AssistantMessage, Usage
from gymbus.runtime.model import EpisodeInfo, ModelRequest, SamplingParams
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import EndEpisode


@dataclass(slots=True)
class EpisodeOutcome:
    """How an episode's conversation ended: normally (``stop_reason``) or with a failure."""

    transcript: Transcript
    stop_reason: str | None = None
    failure_kind: FailureKind | None = None
    failure_message: str | None = None
    usage: Usage = field(default_factory=Usage)
    user_usage: Usage = field(default_factory=Usage)
    user_cost_usd: float = 0.0
    user_s: float = 0.0
    context_events: list[ContextEvent] = field(default_factory=list)
    policy_turns: int = 0
    model_s: float = 0.0
    tool_s: float = 0.0
    wall_s: float = 0.0


class _Play:
    """Mutable state of one running episode (private to :func:`play_episode`)."""

    __slots__ = ("bus", "context", "info", "outcome", "params", "spec", "version")

    def __init__(
        self,
        bus: Bus,
        spec: EpisodeSpec,
        info: EpisodeInfo,
        params: SamplingParams,
        version: Callable[[], int | None],
        context: ContextWindow | None,
    ) -> None:
        self.version = version
        self.context = ContextView(context, info) if context is not None else None
        self.bus = bus
        self.spec = spec
        self.info = info
        self.params = params
        self.outcome = EpisodeOutcome(Transcript(spec.messages))

    async def post(self, *messages: AnyMessage) -> None:
        outcome = self.outcome
        start = len(outcome.transcript)
        outcome.transcript = outcome.transcript.append(*messages)
        if self.bus.wants("message_posted"):
            for offset, message in enumerate(messages):
                await self.bus.publish(
                    MessagePosted(
                        episode_id=self.info.episode_id, index=start + offset, message=message
                    )
                )

    async def policy_turn(self) -> None:
        outcome, spec = self.outcome, self.spec
        conversation = outcome.transcript
        if self.context is not None:  # what the policy sees, when it outgrows its window
            conversation, event = await self.context.prepare(conversation, outcome.policy_turns)
            if event is not None:
                outcome.context_events.append(event)
        request = ModelRequest(
            conversation, spec.tools.specs, self.params, self.info, self.version()
        )
        started = time.perf_counter()
        message: AssistantMessage = await self.bus.ask(
            POLICY_ADDRESS, PolicyCall(request, spec.limits.call_timeout)
        )
        latency = time.perf_counter() - started
        outcome.model_s += latency
        outcome.policy_turns += 1
        generation = message.generation
        if generation is not None:
            outcome.usage = outcome.usage + generation.usage
        if self.bus.wants("model_call_finished"):
            await self.bus.publish(
                ModelCallFinished(
                    episode_id=self.info.episode_id,
                    model=generation.model if generation else "unknown",
                    latency_s=latency,
                    usage=generation.usage if generation else Usage(),
                    attempts=generation.attempts if generation else 1,
                )
            )
        await self.post(message)

    async def tools_turn(self, calls: AssistantMessage) -> None:
        spec = self.spec
        started = time.perf_counter()
        results: ToolResults = await self.bus.ask(
            TOOLS_ADDRESS,
            ToolBatch(
                spec.tools,
                calls.tool_calls,
                spec.limits.tool_timeout,
                spec.limits.max_parallel_tool_calls,
            ),
        )
        self.outcome.tool_s += time.perf_counter() - started
        if self.bus.wants("tool_call_finished"):
            for message, latency in zip(results.messages, results.latencies, strict=True):
                await self.bus.publish(
                    ToolCallFinished(
                        episode_id=self.info.episode_id,
                        call_id=message.tool_call_id,
                        name=message.name or "",
                        latency_s=latency,
                        is_error=message.is_error,
                    )
                )
        await self.post(*results.messages)

    async def user_turn(self) -> str | None:
        """Let the user speak; returns the reason if the user ended the episode."""
        spec = self.spec
        assert spec.user is not None
        started = time.perf_counter()
        turn = await self.bus.ask(
            USER_ADDRESS,
            UserCall(spec.user, self.outcome.transcript, spec.limits.call_timeout),
        )
        outcome = self.outcome
        outcome.user_s += time.perf_counter() - started
        if isinstance(turn, EndEpisode):
            return turn.reason
        generation = turn.generation
        if generation is not None:  # an LLM-backed user: its tokens are not the policy's
            outcome.user_usage = outcome.user_usage + generation.usage
            outcome.user_cost_usd += generation.cost_usd or 0.0
        await self.post(turn)
        return None

    async def loop(self) -> None:
        outcome, spec = self.outcome, self.spec
        has_user = spec.user is not None
        if self.bus.wants("message_posted"):
            for index, message in enumerate(spec.messages):
                await self.bus.publish(
                    MessagePosted(episode_id=self.info.episode_id, index=index, message=message)
                )
        while True:
            turn = next_turn(
                outcome.transcript,
                has_user=has_user,
                policy_turns=outcome.policy_turns,
                completion_tokens=outcome.usage.completion_tokens,
                limits=spec.limits,
            )
            if turn.speaker == "policy":
                try:
                    await self.policy_turn()
                except ContextExhaustedError as exhausted:
                    outcome.context_events.append(exhausted.event)
                    outcome.stop_reason = "context_window"
                    return
            elif turn.speaker == "tools":
                last = outcome.transcript.last
                assert isinstance(last, AssistantMessage)
                await self.tools_turn(last)
            elif turn.speaker == "user":
                reason = await self.user_turn()
                if reason is not None:
                    outcome.stop_reason = f"user:{reason}"
                    return
            else:
                outcome.stop_reason = turn.reason
                return


def _no_version() -> int | None:
    return None


async def play_episode(
    bus: Bus,
    spec: EpisodeSpec,
    info: EpisodeInfo,
    params: SamplingParams,
    version: Callable[[], int | None] = _no_version,
    context: ContextWindow | None = None,
) -> EpisodeOutcome:
    """Play one episode to its end. Never raises for infrastructure failures: they are
    returned in the outcome (kind and message). Outside cancellation propagates.
    ``version()`` is read at each policy turn (the trainer may bump it meanwhile)."""
    play = _Play(bus, spec, info, params, version, context)
    started = time.perf_counter()
    if bus.wants("episode_started"):
        await bus.publish(
            EpisodeStarted(
                episode_id=info.episode_id,
                env=info.env,
                task_id=info.task_id,
                seed=info.seed,
                sample=info.sample,
            )
        )
    outcome = play.outcome
    try:
        with anyio.fail_after(spec.limits.episode_timeout):
            await play.loop()
    except TimeoutError:
        outcome.failure_kind = "timeout"
        outcome.failure_message = f"episode exceeded its deadline of {spec.limits.episode_timeout}s"
    except InfraError as exc:
        outcome.failure_kind = exc.kind
        outcome.failure_message = str(exc)
    finally:
        outcome.wall_s = time.perf_counter() - started
    return outcome
