"""The tool calls a conversation has made and their results, for reference solvers that
are pure functions of the conversation: ask for the results you need; the ones not made
yet come back as the next assistant message's tool calls."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import orjson

from gymbus.runtime.errors import ToolArgumentsError
from gymbus.runtime.messages import AssistantMessage, ToolCall, ToolMessage
from gymbus.runtime.transcript import Transcript

__all__ = ["CallFailedError", "CallsPendingError", "RecordedCalls", "Request"]

Request = tuple[str, dict[str, Any]]
"""A tool name and its arguments."""


class CallsPendingError(Exception):
    """Control flow: ``requests`` must be made (and answered) before the solver can go on."""

    def __init__(self, requests: list[Request]) -> None:
        super().__init__(requests)
        self.requests = requests


class CallFailedError(Exception):
    """A tool answered with an error, or a result lacks what the solver looked for."""


def _key(name: str, arguments: dict[str, Any]) -> bytes:
    return orjson.dumps([name, arguments], option=orjson.OPT_SORT_KEYS)


class RecordedCalls:
    """The calls in ``conversation`` (by name and parsed arguments) and their results."""

    def __init__(self, conversation: Transcript) -> None:
        self._ids: dict[bytes, str] = {}
        self._results: dict[str, ToolMessage] = {}
        self.count = 0
        for message in conversation:
            if isinstance(message, AssistantMessage):
                for call in message.tool_calls:
                    self.count += 1
                    with suppress(ToolArgumentsError):  # not a call a solver made
                        self._ids[_key(call.name, call.parsed_arguments())] = call.id
            elif isinstance(message, ToolMessage):
                self._results[message.tool_call_id] = message

    def need(self, *requests: Request) -> list[Any]:
        """The JSON-decoded results of ``requests``, in order. Raises
        :class:`CallsPendingError` naming every request not answered yet, and
        :class:`CallFailedError` when one was answered with an error."""
        missing = [r for r in requests if self._result(r) is None]
        if missing:
            raise CallsPendingError(missing)
        values = []
        for name, arguments in requests:
            result = self._result((name, arguments))
            assert result is not None
            if result.is_error:
                raise CallFailedError(f"{name} failed: {result.text}")
            try:
                values.append(orjson.loads(result.text))
            except orjson.JSONDecodeError:
                raise CallFailedError(f"{name} returned {result.text!r}, not JSON") from None
        return values

    def message(self, requests: list[Request]) -> AssistantMessage:
        """An assistant message making ``requests`` (ids continue ``call_1``, ``call_2`` …)."""
        calls = tuple(
            ToolCall(id=f"call_{self.count + i}", name=name, arguments=orjson.dumps(args).decode())
            for i, (name, args) in enumerate(requests, start=1)
        )
        return AssistantMessage(tool_calls=calls)

    def _result(self, request: Request) -> ToolMessage | None:
        call_id = self._ids.get(_key(*request))
        return self._results.get(call_id) if call_id is not None else None
