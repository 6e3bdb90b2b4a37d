"""Scoring a hand-written ending of an episode with the environment's own verifier, as the
runtime would hand it over (the episode's state included), and playing an episode with a
solver through the runtime's own tool executor, without the rest of the runtime."""

from __future__ import annotations

from gymbus.runtime.actors import ToolBatch, ToolExecutor
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.messages import AnyMessage, AssistantMessage
from gymbus.runtime.model import Solver
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Score


async def verify_ending(spec: EpisodeSpec, *messages: AnyMessage) -> Score:
    """The verifier's score of the episode's opening messages followed by ``messages``."""
    done = CompletedEpisode(
        episode_id="test",
        task=spec.task,
        transcript=Transcript([*spec.messages, *messages]),
        stop_reason="final_answer",
        state=spec.state,
    )
    return await spec.verifier.verify(done)


async def score_reply(spec: EpisodeSpec, reply: str) -> Score:
    """The verifier's score of the episode answered with one text reply."""
    return await verify_ending(spec, AssistantMessage(content=reply))


async def play(spec: EpisodeSpec, policy: Solver | None = None) -> CompletedEpisode:
    """A minimal episode loop: ask ``policy`` (default: the reference solver), run its tool
    calls with the runtime's :class:`ToolExecutor` (the model's mistakes become error tool
    messages), repeat until it answers or ``max_turns``."""
    policy = policy or spec.solver
    assert policy is not None
    transcript = Transcript(spec.messages)
    stop = "max_turns"
    limits = spec.limits
    for _ in range(limits.max_turns or 1):
        message = policy.next_message(transcript)
        transcript = transcript.append(message)
        if not message.tool_calls:
            stop = "final_answer"
            break
        batch = ToolBatch(
            spec.tools, message.tool_calls, limits.tool_timeout, limits.max_parallel_tool_calls
        )
        transcript = transcript.append(*(await ToolExecutor().handle(batch)).messages)
    return CompletedEpisode(
        episode_id="test", task=spec.task, transcript=transcript, stop_reason=stop, state=spec.state
    )
