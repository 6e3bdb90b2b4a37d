"""OpenAIResponses against the fake server, and equivalence with OpenAIChat."""

from __future__ import annotations

import pytest

from gymbus.adapters import HTTPResult, OpenAIChat, OpenAIResponses
from gymbus.runtime.errors import ConfigError, ModelResponseError
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    SystemMessage,
    TokenLogprob,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.model import SamplingParams
from gymbus.runtime.tools import ToolSpec
from tests.openai_server import (
    Fault,
    OpenAIServer,
    SeenRequest,
    ToolCallSpec,
    Turn,
    request_for,
    tool_policy,
)

pytestmark = pytest.mark.anyio

LOOKUP = ToolSpec(name="lookup", parameters={"type": "object", "properties": {}})


def responses(server: OpenAIServer, **kwargs: object) -> OpenAIResponses:
    return OpenAIResponses("fake-model", base_url=server.base_url, api_key_env=None, **kwargs)  # type: ignore[arg-type]


async def test_plain_answer(openai_server: OpenAIServer) -> None:
    async with responses(openai_server) as model:
        reply = await model.generate(
            request_for(SystemMessage(content="be brief"), UserMessage(content="hi"))
        )
    assert reply.text == "echo: hi"
    generation = reply.generation
    assert generation is not None
    assert generation.finish_reason == "stop"
    assert generation.usage.prompt_tokens == 3
    assert generation.usage.completion_tokens == 2
    assert generation.response_id == "resp_1"
    body = openai_server.requests[0].json()
    assert openai_server.requests[0].path == "/v1/responses"
    assert body == {
        "model": "fake-model",
        "input": [
            {
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "be brief"}],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        ],
        "store": False,
    }


async def test_tool_calls_and_results(openai_server: OpenAIServer) -> None:
    openai_server.policy = tool_policy("lookup", {"q": "x"})
    async with responses(openai_server) as model:
        request = request_for(UserMessage(content="find x"), tools=[LOOKUP])
        first = await model.generate(request)
        assert first.tool_calls == (ToolCall(id="call_1_0", name="lookup", arguments='{"q":"x"}'),)
        assert first.generation is not None
        assert first.generation.finish_reason == "tool_calls"
        result = ToolMessage(tool_call_id="call_1_0", content="found")
        second = await model.generate(request_for(*request.conversation, first, result))
    assert second.text == "done: found"
    first_body = openai_server.requests[0].json()
    assert first_body["tools"] == [
        {
            "type": "function",
            "name": "lookup",
            "description": "",
            "parameters": LOOKUP.parameters,
            "strict": False,
        }
    ]
    items = openai_server.requests[1].json()["input"]
    assert items[1] == {
        "type": "function_call",
        "call_id": "call_1_0",
        "name": "lookup",
        "arguments": '{"q":"x"}',
    }
    assert items[2] == {"type": "function_call_output", "call_id": "call_1_0", "output": "found"}


async def test_logprobs_and_limits(openai_server: OpenAIServer) -> None:
    params = SamplingParams(logprobs=True, top_logprobs=3, max_tokens=2, temperature=0.5)
    async with responses(openai_server, params=params) as model:
        reply = await model.generate(request_for(UserMessage(content="a b c")))
    body = openai_server.requests[0].json()
    assert body["include"] == ["message.output_text.logprobs"]
    assert body["top_logprobs"] == 3
    assert body["max_output_tokens"] == 2
    assert body["temperature"] == 0.5
    assert reply.text == "echo: a"
    generation = reply.generation
    assert generation is not None
    assert generation.finish_reason == "length"
    assert generation.logprobs == (
        TokenLogprob(token="echo:", logprob=0.0),
        TokenLogprob(token="a", logprob=-0.5),
    )


async def test_return_token_ids_is_chat_only(openai_server: OpenAIServer) -> None:
    async with responses(openai_server) as model:
        with pytest.raises(ConfigError, match="OpenAIChat"):
            await model.generate(
                request_for(UserMessage(content="x"), params=SamplingParams(return_token_ids=True))
            )
    assert openai_server.count == 0


async def test_missing_output(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault.missing_choices())
    async with responses(openai_server) as model:
        with pytest.raises(ModelResponseError, match="no 'output'"):
            await model.generate(request_for(UserMessage(content="x")))


def test_bad_outputs() -> None:
    model = OpenAIResponses("m", base_url="http://127.0.0.1:1/v1", api_key_env=None)
    failed = {"status": "failed", "error": {"message": "server exploded"}, "output": []}
    with pytest.raises(ModelResponseError, match="server exploded"):
        model.parse_response(HTTPResult(failed, 1, 0.0))
    user_item = {"output": [{"type": "message", "role": "user", "content": "x"}]}
    with pytest.raises(ModelResponseError, match="one assistant turn"):
        model.parse_response(HTTPResult(user_item, 1, 0.0))
    unknown = {"output": [{"type": "web_search_call"}]}
    with pytest.raises(ModelResponseError, match=r"output\[0\]"):
        model.parse_response(HTTPResult(unknown, 1, 0.0))
    empty = model.parse_response(HTTPResult({"output": [], "status": "completed"}, 1, 0.0))
    assert empty.content == ()
    assert empty.tool_calls == ()


def _rich_policy(request: SeenRequest) -> Turn:
    if request.last.role == "tool":
        return Turn(text=f"the answer is {request.last.text}", reasoning="tool said so")
    return Turn(
        text="let me check",
        reasoning="need two lookups",
        tool_calls=(ToolCallSpec("lookup", {"q": "a"}), ToolCallSpec("lookup", {"q": "b"})),
    )


def _without_generation(message: AssistantMessage) -> AssistantMessage:
    return message.model_copy(update={"generation": None})


async def test_both_apis_give_equivalent_messages(openai_server: OpenAIServer) -> None:
    openai_server.policy = _rich_policy
    url = openai_server.base_url
    async with (
        OpenAIChat("fake-model", base_url=url, api_key_env=None) as chat_model,
        OpenAIResponses("fake-model", base_url=url, api_key_env=None) as responses_model,
    ):
        conversation: list[AnyMessage] = [
            SystemMessage(content="sys"),
            UserMessage(content="what are a and b?"),
        ]
        for _turn in range(2):
            request = request_for(*conversation, tools=[LOOKUP])
            via_chat = await chat_model.generate(request)
            via_responses = await responses_model.generate(request)
            assert _without_generation(via_chat) == _without_generation(via_responses)
            assert via_chat.generation is not None
            assert via_responses.generation is not None
            assert via_chat.generation.finish_reason == via_responses.generation.finish_reason
            assert via_chat.generation.usage == via_responses.generation.usage
            conversation.append(via_chat)
            conversation += [
                ToolMessage(tool_call_id=call.id, content=f"value of {call.id}")
                for call in via_chat.tool_calls
            ]
    final = conversation[-1]
    assert isinstance(final, AssistantMessage)
    assert final.reasoning == "tool said so"
