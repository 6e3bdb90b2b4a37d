"""Long context at O(new content) per turn: 1,000-message episodes and a 1M-token prompt
against a real local server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import gymbus
import gymbus.runtime.wire_chat as wire_chat
from gymbus.adapters import HTTPClient, OpenAIChat
from gymbus.envs.builtin.records_needle import RecordsNeedleSolver
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AssistantMessage, UserMessage
from gymbus.runtime.model import EpisodeInfo, ModelRequest, SamplingParams
from gymbus.runtime.tokenizer import count_tokens
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.wire_chat import from_chat
from tests.openai_server import OpenAIServer, SeenRequest, Turn

pytestmark = pytest.mark.anyio


async def test_status_updates_episodes_exceed_a_thousand_messages() -> None:
    env = gymbus.envs.load("status-updates", difficulty="easy")
    [oracle] = await gymbus.run(env, gymbus.OracleModel(), n=1)
    [null] = await gymbus.run(env, gymbus.NullModel(), n=1)
    assert len(oracle.messages) >= 1000
    assert oracle.reward == 1.0
    assert oracle.stop_reason == "user:goal-met"
    assert null.reward == 0.0


async def test_appending_a_turn_encodes_only_the_new_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = gymbus.envs.load("status-updates", difficulty="easy")
    [rollout] = await gymbus.run(env, gymbus.OracleModel(), n=1)
    history = Transcript(rollout.messages)
    assert len(history) >= 1000
    encodings = 0
    real = wire_chat.to_chat

    def counting(message: Any, media: MediaStore, **options: Any) -> dict[str, Any]:
        nonlocal encodings
        encodings += 1
        return real(message, media, **options)

    monkeypatch.setattr(wire_chat, "to_chat", counting)
    adapter = OpenAIChat("m", base_url="http://127.0.0.1:1/v1", api_key_env=None)
    info = EpisodeInfo("e", "status-updates", "t", 0)

    def body(conversation: Transcript) -> bytes:
        return adapter.request_body(ModelRequest(conversation, (), SamplingParams(), info))

    first = body(history)
    assert encodings == len(history)  # each message encoded once …
    longer = history.append(UserMessage(content="Update 9999: shipment SHP-1 is now at Oslo."))
    second = body(longer)
    assert encodings == len(history) + 1  # … and a new turn encodes only itself
    assert longer._items is history._items  # and copies nothing
    assert second.startswith(first[: first.index(b',"messages":[') + 13])
    sent = orjson.loads(second)["messages"]
    assert len(sent) == len(history) + 1
    assert sent[-1]["content"].startswith("Update 9999")


def records_policy(request: SeenRequest) -> Turn:
    media = MediaStore()
    messages = [from_chat(m, media) for m in request.body["messages"]]
    reply = RecordsNeedleSolver().next_message(Transcript(messages))
    return Turn(text=reply.text)


async def test_a_one_million_token_episode_runs_against_a_local_server() -> None:
    env = gymbus.envs.load("records-needle", difficulty="hard", context_tokens=1_000_000)
    task = env.task(5)
    assert 1_000_000 <= task.data["prompt_tokens"] <= 1_010_000
    async with OpenAIServer(policy=records_policy) as server, HTTPClient() as client:
        model = OpenAIChat("fake", base_url=server.base_url, client=client)
        async with gymbus.Runtime(model) as rt:
            [rollout] = await rt.run(gymbus.episode_jobs(env, [5]))
        assert server.requests, (rollout.status, rollout.failure, server.count)
        body = server.requests[0].body
    assert rollout.status == "scored", rollout.failure
    assert rollout.reward == 1.0, rollout.evidence
    prompt = rollout.messages[1]
    assert isinstance(prompt, UserMessage)
    assert count_tokens(prompt.text) == task.data["prompt_tokens"]
    assert len(body) > 3_000_000  # the whole prompt went over the wire
    assert isinstance(rollout.messages[-1], AssistantMessage)
