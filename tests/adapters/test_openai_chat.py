"""OpenAIChat against the fake server: answers, tool calls, token data, request body."""

from __future__ import annotations

import orjson
import pytest

from gymbus.adapters import (
    HTTPClient,
    HTTPResult,
    OpenAIChat,
    OpenAIResponses,
    RetryPolicy,
    merge_params,
)
from gymbus.runtime.errors import ConfigError, ModelResponseError
from gymbus.runtime.messages import (
    AssistantMessage,
    SystemMessage,
    TokenLogprob,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.model import Model, SamplingParams
from gymbus.runtime.tools import ToolSpec
from tests.openai_server import Fault, OpenAIServer, request_for, token_id, tool_policy

pytestmark = pytest.mark.anyio

ADD = ToolSpec(
    name="add",
    description="Add two integers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)
SYSTEM = SystemMessage(content="You are terse.")


def chat(server: OpenAIServer, **kwargs: object) -> OpenAIChat:
    return OpenAIChat("fake-model", base_url=server.base_url, api_key_env=None, **kwargs)  # type: ignore[arg-type]


async def test_plain_answer(openai_server: OpenAIServer) -> None:
    async with chat(openai_server) as model:
        assert isinstance(model, Model)
        assert model.name == "fake-model"
        reply = await model.generate(request_for(SYSTEM, UserMessage(content="hi there")))
    assert reply.text == "echo: hi there"
    assert reply.tool_calls == ()
    generation = reply.generation
    assert generation is not None
    assert generation.model == "fake-model"
    assert generation.finish_reason == "stop"
    assert generation.usage.prompt_tokens == 5
    assert generation.usage.completion_tokens == 3
    assert generation.response_id == "chatcmpl-1"
    assert generation.attempts == 1
    assert generation.logprobs is None
    assert generation.token_ids is None
    sent = openai_server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert "Authorization" not in sent.headers
    assert sent.json() == {
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hi there"},
        ],
    }


async def test_tool_call_round_trip(openai_server: OpenAIServer) -> None:
    openai_server.policy = tool_policy("add", {"a": 2, "b": 3}, answer="sum")
    async with chat(openai_server) as model:
        request = request_for(UserMessage(content="2+3?"), tools=[ADD])
        first = await model.generate(request)
        assert first.tool_calls == (ToolCall(id="call_1_0", name="add", arguments='{"a":2,"b":3}'),)
        assert first.generation is not None
        assert first.generation.finish_reason == "tool_calls"
        result = ToolMessage(tool_call_id="call_1_0", content="5")
        second = await model.generate(
            request_for(*request.conversation, first, result, tools=[ADD])
        )
    assert second.text == "sum: 5"
    body = openai_server.requests[1].json()
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two integers.",
                "parameters": ADD.parameters,
            },
        }
    ]
    assert body["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"a":2,"b":3}'
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_1_0", "content": "5"}


async def test_logprobs_and_token_ids(openai_server: OpenAIServer) -> None:
    params = SamplingParams(logprobs=True, top_logprobs=2, return_token_ids=True)
    async with chat(openai_server) as model:
        reply = await model.generate(request_for(UserMessage(content="a b"), params=params))
    body = openai_server.requests[0].json()
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 2
    assert body["return_token_ids"] is True
    generation = reply.generation
    assert generation is not None
    words = ["echo:", "a", "b"]
    assert generation.token_ids == tuple(token_id(w) for w in words)
    assert generation.prompt_token_ids == (token_id("a"), token_id("b"))
    assert generation.logprobs == tuple(
        TokenLogprob(token=w, logprob=-0.5 * i) for i, w in enumerate(words)
    )


async def test_sampling_params_merge_and_body(openai_server: OpenAIServer) -> None:
    defaults = SamplingParams(temperature=0.7, max_tokens=2, extra_body={"top_k": 5, "x": 1})
    override = SamplingParams(temperature=0.0, seed=7, stop=("END",), extra_body={"x": 2})
    async with chat(openai_server, params=defaults) as model:
        reply = await model.generate(
            request_for(UserMessage(content="one two three"), params=override)
        )
        await model.generate(request_for(UserMessage(content="again")))
    body = openai_server.requests[0].json()
    del body["messages"]
    assert body == {
        "model": "fake-model",
        "temperature": 0.0,
        "max_completion_tokens": 2,
        "seed": 7,
        "stop": ["END"],
        "top_k": 5,
        "x": 2,
    }
    assert reply.text == "echo: one"  # cut at max tokens
    assert reply.generation is not None
    assert reply.generation.finish_reason == "length"
    assert openai_server.requests[1].json()["temperature"] == 0.7


def test_merge_params_rule() -> None:
    base = SamplingParams(temperature=1.0, top_p=0.9, extra_body={"a": 1})
    assert merge_params(base, SamplingParams()) is base
    merged = merge_params(base, SamplingParams(top_p=None, extra_body={"b": 2}))
    assert merged.temperature == 1.0
    assert merged.top_p is None  # explicitly set, so it wins even as None
    assert merged.extra_body == {"a": 1, "b": 2}


async def test_max_tokens_field_option(openai_server: OpenAIServer) -> None:
    params = SamplingParams(max_tokens=10)
    async with chat(openai_server, params=params, max_tokens_field="max_tokens") as model:
        await model.generate(request_for(UserMessage(content="x")))
    body = openai_server.requests[0].json()
    assert body["max_tokens"] == 10
    assert "max_completion_tokens" not in body


def test_extra_body_may_not_replace_messages() -> None:
    with pytest.raises(ConfigError, match="messages"):
        OpenAIChat(
            "m",
            base_url="http://127.0.0.1:1/v1",
            params=SamplingParams(extra_body={"messages": []}),
            api_key_env=None,
        )


async def test_missing_choices(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault.missing_choices())
    async with chat(openai_server) as model:
        with pytest.raises(ModelResponseError, match="no 'choices'"):
            await model.generate(request_for(UserMessage(content="x")))
    assert openai_server.count == 1


async def test_bad_message_shape_is_a_response_error(openai_server: OpenAIServer) -> None:
    model = chat(openai_server)
    result_data = {"choices": [{"message": {"role": "assistant", "content": 5}}]}
    with pytest.raises(ModelResponseError, match=r"choices\[0\]\.message\.content"):
        model.parse_response(HTTPResult(result_data, 1, 0.0))
    with pytest.raises(ModelResponseError, match=r"choices\[0\]\.message"):
        model.parse_response(HTTPResult({"choices": [{}]}, 1, 0.0))
    with pytest.raises(ModelResponseError, match="no 'choices'; error: prompt too long"):
        model.parse_response(HTTPResult({"error": {"message": "prompt too long"}}, 1, 0.0))
    await model.aclose()


async def test_message_bytes_are_cached(openai_server: OpenAIServer) -> None:
    user = UserMessage(content="cache me")
    async with chat(openai_server) as model:
        request = request_for(user, tools=[ADD])
        assert model.request_body(request) == model.request_body(request)
        assert model._tools_fragment(request.tools) is model._tools_fragment(request.tools)
    assert user.cached("chat", lambda: b"never") == orjson.dumps(
        {"role": "user", "content": "cache me"}
    )


async def test_one_shared_session_for_two_adapters(openai_server: OpenAIServer) -> None:
    request = request_for(UserMessage(content="hi"))
    async with HTTPClient(connector_limit=4, retry=RetryPolicy(max_attempts=1)) as client:
        first = OpenAIChat("m", base_url=openai_server.base_url, api_key_env=None, client=client)
        second = OpenAIResponses(
            "m", base_url=openai_server.base_url, api_key_env=None, client=client
        )
        session = client.session()
        for _ in range(3):
            await first.generate(request)
            await second.generate(request)
        assert first.client is second.client is client
        assert client.session() is session
        await first.aclose()  # not the owner: the shared client stays open
        await second.aclose()
        assert client.is_open
    assert session.closed
    peers = {r.peer for r in openai_server.requests}
    assert len(peers) == 1  # sequential calls from both adapters reused one connection


async def test_owned_client_is_closed_with_the_adapter(openai_server: OpenAIServer) -> None:
    async with chat(openai_server) as model:
        await model.generate(request_for(UserMessage(content="x")))
        assert model.client.is_open
    assert not model.client.is_open


async def test_assistant_message_without_content(openai_server: OpenAIServer) -> None:
    openai_server.policy = lambda request: ""
    async with chat(openai_server) as model:
        reply = await model.generate(request_for(UserMessage(content="x")))
    assert reply == AssistantMessage(generation=reply.generation)
