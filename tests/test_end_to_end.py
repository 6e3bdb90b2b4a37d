"""Episodes of a real environment against a real OpenAI-compatible server on 127.0.0.1,
through both APIs, with faults, and 1,000 at once."""

from __future__ import annotations

import asyncio

import pytest

import gymbus
from gymbus.adapters import HTTPClient, OpenAIChat, OpenAIResponses, RetryPolicy
from gymbus.runtime.messages import AssistantMessage
from tests.openai_server import Fault, OpenAIServer, token_id
from tests.solver_policy import retail_solver_policy

pytestmark = pytest.mark.anyio


def _model(api: str, server: OpenAIServer, client: HTTPClient) -> gymbus.Model:
    cls = OpenAIChat if api == "chat" else OpenAIResponses
    return cls(
        model="fake-model",
        base_url=server.base_url,
        client=client,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
    )


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_retail_episodes_are_scored_through_both_apis(api: str) -> None:
    env = gymbus.envs.load("retail-orders", difficulty="hard")
    async with (
        OpenAIServer(policy=retail_solver_policy) as server,
        HTTPClient() as client,
        gymbus.Runtime(_model(api, server, client), concurrency=8) as rt,
    ):
        rollouts = await rt.run(gymbus.episode_jobs(env, range(12)))
    assert len(rollouts) == 12
    for rollout in rollouts:
        assert rollout.status == "scored", rollout.failure
        assert rollout.reward == 1.0, rollout.evidence
        assert rollout.turns == 5  # four lookups on hard, then the answer
        last = rollout.messages[-1]
        assert isinstance(last, AssistantMessage)
        assert last.generation is not None
        assert last.generation.model == "fake-model"
        assert rollout.usage.completion_tokens > 0


async def test_the_same_episode_is_the_same_through_both_apis() -> None:
    env = gymbus.envs.load("retail-orders")
    transcripts = {}
    async with OpenAIServer(policy=retail_solver_policy) as server, HTTPClient() as client:
        for api in ("chat", "responses"):
            async with gymbus.Runtime(_model(api, server, client)) as rt:
                [rollout] = await rt.run(gymbus.episode_jobs(env, [3]))
            transcripts[api] = [
                (m.role, m.text, getattr(m, "tool_calls", ())) for m in rollout.messages
            ]
    assert transcripts["chat"] == transcripts["responses"]


async def test_transient_faults_are_retried_and_the_episode_still_scores() -> None:
    env = gymbus.envs.load("retail-orders", difficulty="easy")
    async with OpenAIServer(policy=retail_solver_policy) as server, HTTPClient() as client:
        server.fail_next(Fault.http(429, retry_after="0"), Fault.http(503), Fault.malformed_json())
        async with gymbus.Runtime(_model("chat", server, client), concurrency=1) as rt:
            rollouts = await rt.run(gymbus.episode_jobs(env, range(2)))
    statuses = sorted((r.status, r.failure.kind if r.failure else None) for r in rollouts)
    # 429 and 503 are retried; the malformed body is a model failure of its own kind
    assert statuses == [("failed", "model"), ("scored", None)]
    failed = next(r for r in rollouts if r.status == "failed")
    assert failed.reward is None
    assert failed.failure is not None
    assert "JSON" in failed.failure.message


async def test_a_thousand_concurrent_episodes_all_score_and_leak_nothing() -> None:
    env = gymbus.envs.load("retail-orders", difficulty="easy")
    before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    async with OpenAIServer(policy=retail_solver_policy) as server:
        async with HTTPClient() as client:
            model = _model("chat", server, client)
            connector = client.session().connector
            assert connector is not None
            async with gymbus.Runtime(model, concurrency=1000) as rt:
                rollouts = await rt.run(gymbus.episode_jobs(env, range(1000)))
        requests = server.count
    assert len(rollouts) == 1000
    assert {r.episode_id for r in rollouts} == {f"retail-orders/{i}#0" for i in range(1000)}
    wrong = [r.episode_id for r in rollouts if r.reward != 1.0]
    assert wrong == []
    assert requests == 4000  # three lookups and an answer each, no retries
    after = {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}
    assert after <= before
    assert not client.is_open
    assert connector.closed  # every socket released


async def test_token_ids_and_logprobs_reach_the_rollout_exactly_as_served() -> None:
    env = gymbus.envs.load("retail-orders", difficulty="easy")
    params = gymbus.SamplingParams(logprobs=True, top_logprobs=2, return_token_ids=True)
    async with OpenAIServer(policy=retail_solver_policy) as server, HTTPClient() as client:
        model = OpenAIChat("fake-model", base_url=server.base_url, client=client)
        async with gymbus.Runtime(model, params=params) as rt:
            [rollout] = await rt.run(gymbus.episode_jobs(env, [0]))
        bodies = [r.json() for r in server.requests]
    assert all(b["logprobs"] is True and b["return_token_ids"] is True for b in bodies)
    line = gymbus.Rollout.model_validate_json(rollout.to_json_line())  # through JSONL
    answer = line.messages[-1]
    assert isinstance(answer, AssistantMessage)
    generation = answer.generation
    assert generation is not None
    assert generation.token_ids == tuple(token_id(w) for w in answer.text.split())
    assert generation.logprobs is not None
    assert [lp.token for lp in generation.logprobs] == answer.text.split()
    assert generation.prompt_token_ids  # the server's prompt ids are kept too


async def test_the_weight_version_is_sent_with_every_request_and_recorded() -> None:
    env = gymbus.envs.load("retail-orders", difficulty="easy")
    async with OpenAIServer(policy=retail_solver_policy) as server, HTTPClient() as client:
        async with gymbus.Runtime(_model("chat", server, client)) as rt:
            rt.weight_version = 42
            [rollout] = await rt.run(gymbus.episode_jobs(env, [1]))
        headers = [r.headers.get("X-Weight-Version") for r in server.requests]
    assert headers == ["42"] * 4
    turns = [m for m in rollout.messages if isinstance(m, AssistantMessage)]
    assert [m.generation.weight_version for m in turns if m.generation] == ["42"] * 4
