"""Scoring a hand-written ending of an episode with the environment's own verifier, as the
runtime would hand it over (the episode's state included)."""

from __future__ import annotations

from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.messages import AnyMessage, AssistantMessage
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
