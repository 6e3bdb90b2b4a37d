"""The shipped fault-injecting server: each fault kind, alone and every time, ends an
episode the way docs/reliability.md says, through both APIs."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import anyio
import pytest

import gymbus
from gymbus.adapters import (
    FAULT_KINDS,
    FaultKind,
    FaultPlan,
    FaultyModelServer,
    HTTPClient,
    OpenAIChat,
    OpenAIResponses,
    RetryPolicy,
    solver_policy,
)
from gymbus.envs.builtin.retail_orders import RetailOrdersSolver
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.messages import AssistantMessage, ToolCall, ToolMessage
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.transcript import Transcript

pytestmark = pytest.mark.anyio

RETRY = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)
APIS = ("chat", "responses")

# what each kind, on every request, does to a retail-orders episode: the failure's cause
# (the end of its message), or None when the episode is scored
CAUSES: dict[FaultKind, str | None] = {
    "status_429": "failed after 3 attempt(s); last: HTTP 429",
    "status_500": "failed after 3 attempt(s); last: HTTP 500",
    "status_502": "failed after 3 attempt(s); last: HTTP 502",
    "status_503": "failed after 3 attempt(s); last: HTTP 503",
    "reset": "failed after 3 attempt(s); last: ServerDisconnectedError",
    "hang": "failed after 3 attempt(s); last: timed out after 0.2s",
    "truncated": "failed after 3 attempt(s); last: ClientPayloadError",
    "invalid_json": "returned a body that is not JSON",
    "missing_choices": "has no 'choices'",
    "no_message": "has no 'choices[0].message'",
    "bad_tool_args": None,
    "oversize": None,
}
RESPONSES_CAUSES: dict[FaultKind, str] = {
    "missing_choices": "has no 'output' list",
    "no_message": "output[0].role: unknown role None",
}


async def _play(server: FaultyModelServer, api: str, n: int = 2) -> list[Rollout]:
    env = gymbus.envs.load("retail-orders", difficulty="easy")
    cls = OpenAIChat if api == "chat" else OpenAIResponses
    async with HTTPClient(retry=RETRY, timeout=0.2) as client:
        model = cls("faulty-model", base_url=server.base_url, client=client, api_key_env=None)
        async with gymbus.Runtime(model, concurrency=n) as rt:
            return await rt.run(gymbus.episode_jobs(env, range(n)))


@pytest.mark.parametrize("api", APIS)
async def test_without_faults_the_solver_scores_through_the_server(api: str) -> None:
    async with FaultyModelServer(policy=solver_policy(RetailOrdersSolver)) as server:
        rollouts = await _play(server, api, 4)
    assert [r.reward for r in rollouts] == [1.0] * 4
    assert server.counts.requests == 16  # three lookups and an answer each
    assert server.counts.outcomes == {"tool_calls": 12, "text": 4}
    assert not server.counts.faults


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("kind", FAULT_KINDS)
async def test_each_fault_kind_on_every_request(kind: FaultKind, api: str) -> None:
    plan = FaultPlan(**{kind: 1.0}, oversize_chars=5000)
    async with FaultyModelServer(policy=solver_policy(RetailOrdersSolver), faults=plan) as server:
        rollouts = await _play(server, api)
    counts = server.counts
    assert counts.outcomes == {"fault": counts.requests}
    assert counts.faults == {kind: counts.requests}
    cause = RESPONSES_CAUSES.get(kind, CAUSES[kind]) if api == "responses" else CAUSES[kind]
    for rollout in rollouts:
        if cause is None:  # the model's answers are bad, but they are answers: scored
            assert rollout.status == "scored", rollout.failure
            assert rollout.reward == 0.0
            continue
        assert rollout.status == "failed"
        assert rollout.reward is None
        assert rollout.failure is not None
        assert rollout.failure.kind == "model"
        assert cause in rollout.failure.message
    if kind == "bad_tool_args":  # every call malformed: error tool messages until max_turns
        for rollout in rollouts:
            errors = [m for m in rollout.messages if isinstance(m, ToolMessage) and m.is_error]
            assert rollout.stop_reason == "max_turns"
            assert len(errors) == rollout.turns == 12
            assert all("not valid JSON" in m.text for m in errors)
    if kind == "oversize":
        for rollout in rollouts:
            assert len(rollout.messages[-1].text) == 5000


async def test_a_hang_is_released_with_a_503_when_the_server_closes() -> None:
    """Without a client timeout, a hanging request ends when the server does."""
    arrived = anyio.Event()

    def policy(conversation: Transcript) -> str:
        arrived.set()
        return "never sent"

    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        server = FaultyModelServer(policy, faults=FaultPlan(hang=1.0))
        async with server:

            async def post() -> None:
                async with session.post(f"{server.base_url}/chat/completions", json=_BODY) as r:
                    statuses.append(r.status)

            async with anyio.create_task_group() as tg:
                tg.start_soon(post)
                await arrived.wait()
                await server.aclose()
    assert statuses == [503]
    assert server.counts.faults == {"hang": 1}


_BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def test_echo_models_bad_requests_and_policy_errors_over_plain_http() -> None:
    def broken(conversation: Transcript) -> str:
        raise ValueError("bug in the policy")

    async with (
        FaultyModelServer() as echo,
        FaultyModelServer(broken) as failing,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{echo.base_url}/chat/completions", json=_BODY) as r:
            reply = await r.json()
        async with session.get(f"{echo.base_url}/models") as r:
            models = await r.json()
        async with session.post(f"{echo.base_url}/responses", json={"input": 3}) as r:
            bad = r.status, await r.json()
        async with session.post(f"{failing.base_url}/responses", json={"input": "hi"}) as r:
            error = r.status, await r.json()
        assert repr(echo) == f"FaultyModelServer({echo.base_url}, fault rate 0.000)"
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "echo: hi"}
    assert reply["model"] == "faulty-model"
    assert [m["id"] for m in models["data"]] == ["faulty-model"]
    assert bad[0] == 400
    assert "not a responses request" in bad[1]["error"]["message"]
    assert error[0] == 500
    assert "bug in the policy" in error[1]["error"]["message"]
    assert echo.counts.outcomes == {"text": 1, "bad_request": 1}
    assert failing.counts.outcomes == {"policy_error": 1}


async def test_a_429_says_when_to_retry_and_a_truncated_body_is_short() -> None:
    plans = (FaultPlan(status_429=1.0, retry_after=1.5), FaultPlan(truncated=1.0))
    async with (
        FaultyModelServer(faults=plans[0]) as limited,
        FaultyModelServer(faults=plans[1]) as truncated,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{limited.base_url}/chat/completions", json=_BODY) as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == "2"
            assert r.headers["retry-after-ms"] == "1500"
        async with session.post(f"{truncated.base_url}/chat/completions", json=_BODY) as r:
            assert r.status == 200
            assert r.content_length is not None
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()


def test_a_fault_plan_is_checked_spread_and_drawn_reproducibly() -> None:
    with pytest.raises(ConfigError, match="add up to"):
        FaultPlan(hang=0.6, reset=0.6)
    with pytest.raises(ConfigError, match="must be in"):
        FaultPlan(hang=-0.1)
    plan = FaultPlan.uniform(0.24, ("hang", "reset", "oversize"))
    assert (plan.hang, plan.reset, plan.oversize, plan.status_429) == (0.08, 0.08, 0.08, 0.0)
    assert plan.rate == pytest.approx(0.24)
    assert FaultPlan.uniform(0.12).rate == pytest.approx(0.12)
    first = [plan.draw(random.Random(7)) for _ in range(3)]
    draws = [plan.draw(rng) for rng in [random.Random(7)] for _ in range(1000)]
    assert first == [draws[0]] * 3  # one draw per request, from the seeded generator
    assert {d for d in draws if d is not None} == {"hang", "reset", "oversize"}
    assert 0.18 < sum(d is not None for d in draws) / 1000 < 0.30


def test_solver_policy_plays_a_fresh_solver_per_request() -> None:
    made: list[RetailOrdersSolver] = []

    def factory() -> RetailOrdersSolver:
        made.append(RetailOrdersSolver())
        return made[-1]

    policy = solver_policy(factory)
    question = gymbus.UserMessage(content="How many units for order ORD-123456?")
    for _ in range(2):
        reply = policy(Transcript([question]))
        assert isinstance(reply, AssistantMessage)
        assert reply.tool_calls == (
            ToolCall(id="call_1", name="get_order", arguments='{"order_id":"ORD-123456"}'),
        )
    assert len(made) == 2


def test_the_example_in_docs_reliability_runs(tmp_path: Path) -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
    [example] = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    # outside the checkout, so the source folder gymbus/ cannot shadow the installed package
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "'model':" in result.stdout  # failures by cause
    assert "('hang'," in result.stdout
