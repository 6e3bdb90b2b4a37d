"""gymbus messages as NeMo Gym writes them: the request body it keeps and the response it
verifies.

NeMo Gym's resources servers validate both with pydantic (``nemo_gym/openai_utils.py``):
``NeMoGymResponseCreateParamsNonStreaming`` (extra fields forbidden; ``model_dump`` writes
every field) and ``NeMoGymResponse`` (an OpenAI Responses API ``Response`` whose ``output``
items are stricter than the request shapes :mod:`gymbus.runtime.wire_responses` writes):

- an assistant ``message`` has an ``id``, a ``status`` and a list of ``output_text`` parts
  (with ``annotations`` and ``logprobs``), never a plain string;
- a ``function_call_output`` has a string ``output`` (no ``name``), ``id`` and ``status``;
- a ``reasoning`` item is a ``summary`` of ``summary_text`` parts;
- the last item of a policy turn may carry the turn's ``prompt_token_ids``,
  ``generation_token_ids`` and ``generation_log_probs`` (NeMo Gym's training fields).

Items are first written with :func:`~gymbus.runtime.wire_responses.to_responses`, then
reshaped. Item ids are derived from a seed (the episode id), so writing is deterministic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from gymbus.runtime.errors import WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AnyMessage, AssistantMessage, Generation, Usage
from gymbus.runtime.wire_responses import to_responses

__all__ = [
    "CREATE_PARAMS_DEFAULTS",
    "TRAINING_FIELDS",
    "create_params",
    "output_items",
    "response_object",
    "training_generation",
]

CREATE_PARAMS_DEFAULTS: dict[str, Any] = {
    "background": None,
    "include": None,
    "input": None,
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "metadata": None,
    "model": None,
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "prompt": None,
    "reasoning": None,
    "service_tier": None,
    "store": None,
    "temperature": None,
    "text": None,
    "tool_choice": "auto",
    "tools": [],
    "top_logprobs": None,
    "top_p": None,
    "truncation": None,
    "user": None,
    "stream": None,
}
"""NeMo Gym's request fields in its order, with its defaults (any other key is an error)."""

TRAINING_FIELDS = ("prompt_token_ids", "generation_token_ids", "generation_log_probs")


def _input_item(item: Any) -> Any:
    """A request input item as NeMo Gym dumps it: a message is ``content``, ``role``,
    (``status``,) ``type``."""
    if (
        not isinstance(item, Mapping)
        or "role" not in item
        or item.get("type", "message") != "message"
    ):
        return item
    rest = {k: v for k, v in item.items() if k not in ("content", "role", "type")}
    return {"content": item.get("content"), "role": item["role"], **rest, "type": "message"}


def create_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``responses_create_params`` with every field, in NeMo Gym's order (its
    ``model_dump``): a string ``input`` becomes one user message."""
    out = dict(CREATE_PARAMS_DEFAULTS)
    out["tools"] = []
    out.update(params)
    raw = out["input"]
    if isinstance(raw, str):
        out["input"] = [{"content": raw, "role": "user", "type": "message"}]
    elif isinstance(raw, list):
        out["input"] = [_input_item(item) for item in raw]
    return out


def _item_id(prefix: str, seed: str) -> str:
    return prefix + hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:48]


def _output_text(text: str) -> dict[str, Any]:
    return {"annotations": [], "text": text, "type": "output_text", "logprobs": []}


def _assistant_message(item: Mapping[str, Any], item_id: str) -> dict[str, Any]:
    content = item["content"]
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        parts.append(_output_text(content))
    else:
        for part in content:
            if part["type"] == "output_text":
                parts.append(_output_text(part["text"]))
            else:  # refusal
                parts.append({"refusal": part["refusal"], "type": "refusal"})
    return {
        "id": item_id,
        "content": parts,
        "role": "assistant",
        "status": "completed",
        "type": "message",
    }


def _reshape(item: dict[str, Any], item_id: str, where: str) -> dict[str, Any]:
    """One item from :func:`to_responses` in the shape NeMo Gym validates."""
    kind = item["type"]
    if kind == "message" and item["role"] == "assistant":
        return _assistant_message(item, "msg_" + item_id)
    if kind == "message":
        content = item["content"]
        if len(content) == 1 and content[0]["type"] == "input_text":
            content = content[0]["text"]
        return {"content": content, "role": item["role"], "type": "message"}
    if kind == "function_call":
        return {
            "arguments": item["arguments"],
            "call_id": item["call_id"],
            "name": item["name"],
            "type": "function_call",
            "id": "fc_" + item_id,
            "status": "completed",
        }
    if kind == "function_call_output":
        output = item["output"]
        if not isinstance(output, str):
            kinds = ", ".join(sorted({part["type"] for part in output}))
            raise WireFormatError(
                f"{where}: NeMo Gym tool outputs are strings; this one has {kinds} parts"
            )
        return {
            "call_id": item["call_id"],
            "output": output,
            "type": "function_call_output",
            "id": None,
            "status": None,
        }
    if kind == "reasoning":
        text = "".join(part["text"] for part in item["content"])
        return {
            "id": "rs_" + item_id,
            "summary": [{"text": text, "type": "summary_text"}],
            "type": "reasoning",
            "encrypted_content": None,
        }
    raise WireFormatError(f"{where}: no NeMo Gym output item for {kind!r}")  # pragma: no cover


def _training_fields(generation: Generation | None) -> dict[str, Any]:
    """The turn's token ids and logprobs, when the server returned all three."""
    if generation is None:
        return {}
    prompt, tokens, logprobs = (
        generation.prompt_token_ids,
        generation.token_ids,
        generation.logprobs,
    )
    if prompt is None or tokens is None or logprobs is None:
        return {}
    return {
        "prompt_token_ids": list(prompt),
        "generation_token_ids": list(tokens),
        "generation_log_probs": [lp.logprob for lp in logprobs],
    }


def training_generation(item: Mapping[str, Any], model: str) -> Generation | None:
    """The :class:`Generation` recorded by an output item's training fields, if any."""
    if not all(isinstance(item.get(key), list) for key in TRAINING_FIELDS):
        return None
    tokens = [int(t) for t in item["generation_token_ids"]]  # vLLM's strings are ints too
    logprobs = item["generation_log_probs"]
    return Generation.model_validate(
        {
            "model": model,
            "prompt_token_ids": [int(t) for t in item["prompt_token_ids"]],
            "token_ids": tokens,
            "logprobs": [
                {"token": f"token_id:{t}", "logprob": lp, "token_id": t}
                for t, lp in zip(tokens, logprobs, strict=False)
            ],
        }
    )


def output_items(
    messages: Sequence[AnyMessage], *, id_seed: str, media: MediaStore | None = None
) -> list[dict[str, Any]]:
    """The messages an episode added after its prompt, as NeMo Gym response ``output``
    items (policy turns carry their training fields on their last item)."""
    store = media or MediaStore.shared()
    items: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        written = [
            _reshape(item, f"{id_seed}:{index}:{k}", where)
            for k, item in enumerate(to_responses(message, store, where))
        ]
        if isinstance(message, AssistantMessage):
            written[-1].update(_training_fields(message.generation))
        items.extend(written)
    return items


def _usage(messages: Sequence[AnyMessage]) -> dict[str, Any]:
    total = Usage()
    for message in messages:
        if isinstance(message, AssistantMessage) and message.generation is not None:
            total = total + message.generation.usage
    return {
        "input_tokens": total.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": total.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": total.total_tokens,
    }


def _model_name(messages: Sequence[AnyMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, AssistantMessage) and message.generation is not None:
            return message.generation.model
    return "gymbus"


def response_object(
    output: Sequence[AnyMessage],
    params: Mapping[str, Any],
    *,
    response_id: str,
    created_at: float,
    stop_reason: str | None = None,
    media: MediaStore | None = None,
) -> dict[str, Any]:
    """The Responses API ``response`` NeMo Gym's agents hand to ``/verify``: the messages
    after the prompt as ``output``, the request's settings, the policy's summed usage.
    An episode stopped by the token limit is ``incomplete`` (``max_output_tokens``)."""
    request = create_params(params)
    incomplete = stop_reason == "max_tokens"
    return {
        "id": _item_id("resp_", response_id),
        "created_at": created_at,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": request["instructions"],
        "metadata": request["metadata"] or {},
        "model": _model_name(output),
        "object": "response",
        "output": output_items(output, id_seed=response_id, media=media),
        "parallel_tool_calls": request["parallel_tool_calls"],
        "temperature": request["temperature"],
        "tool_choice": request["tool_choice"],
        "tools": request["tools"],
        "top_p": request["top_p"],
        "background": request["background"],
        "max_output_tokens": request["max_output_tokens"],
        "max_tool_calls": request["max_tool_calls"],
        "previous_response_id": None,
        "prompt": request["prompt"],
        "reasoning": request["reasoning"],
        "service_tier": request["service_tier"],
        "status": "incomplete" if incomplete else "completed",
        "text": request["text"],
        "top_logprobs": request["top_logprobs"],
        "truncation": request["truncation"],
        "usage": _usage(output),
        "user": request["user"],
        "prompt_cache_key": None,
        "safety_identifier": None,
        "store": request["store"],
    }
