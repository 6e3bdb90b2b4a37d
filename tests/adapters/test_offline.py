"""Offline models: oracle, null, function and scripted."""

from __future__ import annotations

import pytest

import gymbus.adapters
from gymbus.adapters import FunctionModel, NullModel, OracleModel, ScriptedModel
from gymbus.runtime.errors import ModelError
from gymbus.runtime.messages import AssistantMessage, Generation, ToolCall, Usage, UserMessage
from gymbus.runtime.model import Model, ModelRequest
from gymbus.runtime.transcript import Transcript
from tests.openai_server import request_for

pytestmark = pytest.mark.anyio

QUESTION = UserMessage(content="what is two plus two")


class CountingSolver:
    """Calls ``add`` first, then answers with the tool result."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        if isinstance(conversation.last, UserMessage):
            return AssistantMessage(tool_calls=(ToolCall(id="c1", name="add", arguments="{}"),))
        return AssistantMessage(content="four")


def test_public_names() -> None:
    assert sorted(gymbus.adapters.__all__) == [
        "FAULT_KINDS",
        "FaultCounts",
        "FaultKind",
        "FaultPlan",
        "FaultyModelServer",
        "FunctionModel",
        "HTTPClient",
        "HTTPResult",
        "ModelEndpoint",
        "NullModel",
        "OpenAIChat",
        "OpenAIResponses",
        "OracleModel",
        "RetryPolicy",
        "ScriptedModel",
        "ServerPolicy",
        "echo_policy",
        "merge_params",
        "solver_policy",
    ]


@pytest.mark.parametrize(
    "model",
    [OracleModel(), NullModel(), FunctionModel(lambda r: "x"), ScriptedModel(["x"])],
)
def test_offline_models_are_models(model: Model) -> None:
    assert isinstance(model, Model)


async def test_oracle_plays_the_solver() -> None:
    model = OracleModel()
    assert model.name == "oracle"
    first = await model.generate(request_for(QUESTION, solver=CountingSolver()))
    assert first.tool_calls[0].name == "add"
    assert first.generation == Generation(
        model="oracle",
        finish_reason="tool_calls",
        usage=Usage(prompt_tokens=5, completion_tokens=2),  # words; a tool call = name + args
        latency_s=0.0,
    )
    again = await model.generate(request_for(QUESTION, solver=CountingSolver()))
    assert again == first  # deterministic


async def test_oracle_without_solver_fails_clearly() -> None:
    with pytest.raises(ModelError, match="reference solver"):
        await OracleModel().generate(request_for(QUESTION))


async def test_null_model_declines() -> None:
    reply = await NullModel().generate(request_for(QUESTION))
    assert reply.text == "I can't help with that."
    assert reply.tool_calls == ()
    assert reply.generation is not None
    assert reply.generation.model == "null"
    assert reply.generation.usage.completion_tokens == 5


async def test_function_model_sync_and_async() -> None:
    def sync(request: ModelRequest) -> str:
        return f"{len(request.conversation)} messages"

    async def async_fn(request: ModelRequest) -> AssistantMessage:
        return AssistantMessage(content="async")

    sync_reply = await FunctionModel(sync).generate(request_for(QUESTION))
    assert sync_reply.text == "1 messages"
    assert sync_reply.generation is not None
    assert sync_reply.generation.model == "function"
    model = FunctionModel(async_fn, name="proto")
    assert model.name == "proto"
    reply = await model.generate(request_for(QUESTION))
    assert reply.text == "async"
    assert reply.generation is not None
    assert reply.generation.model == "proto"


async def test_function_model_rejects_other_results() -> None:
    model = FunctionModel(lambda request: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(ModelError, match="int"):
        await model.generate(request_for(QUESTION))


async def test_scripted_model_replays_per_episode() -> None:
    preset = AssistantMessage(content="b", generation=Generation(model="preset"))
    model = ScriptedModel(["a", preset])
    a1 = await model.generate(request_for(QUESTION, episode_id="e1"))
    a2 = await model.generate(request_for(QUESTION, episode_id="e2"))
    b1 = await model.generate(request_for(QUESTION, episode_id="e1"))
    assert (a1.text, a2.text, b1.text) == ("a", "a", "b")
    assert b1 is preset  # a reply with its own generation is kept as is
    with pytest.raises(ModelError, match="only 2 replies"):
        await model.generate(request_for(QUESTION, episode_id="e1"))
