"""A fake-server policy that plays retail-orders: the server decodes the request with
gymbus's own wire readers and asks the environment's reference solver for the next
turn, so episodes over HTTP are solvable exactly like with the offline oracle."""

from __future__ import annotations

import orjson

from gymbus.envs.builtin.retail_orders import RetailOrdersSolver
from gymbus.runtime.media import MediaStore
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.wire_chat import from_chat
from gymbus.runtime.wire_responses import from_responses
from tests.openai_server import SeenRequest, ToolCallSpec, Turn

_SOLVER = RetailOrdersSolver()


def retail_solver_policy(request: SeenRequest) -> Turn:
    media = MediaStore()
    if request.api == "chat":
        messages = [from_chat(m, media) for m in request.body["messages"]]
    else:
        messages = from_responses(request.body["input"], media)
    reply = _SOLVER.next_message(Transcript(messages))
    return Turn(
        text=reply.text or None,
        tool_calls=tuple(
            ToolCallSpec(call.name, orjson.loads(call.arguments)) for call in reply.tool_calls
        ),
    )
