"""Context-window policies: what the policy sees when the conversation outgrows its window.

``Runtime(context=ContextWindow(window=128_000, on_overflow=...))``:

- ``fail``: the episode stops normally with ``stop_reason="context_window"`` (and is
  verified — a policy that cannot hold the task does not solve it);
- ``truncate_oldest``: the oldest exchanges are dropped from the policy's view, whole
  (an assistant message with its tool results goes together), keeping the system
  messages and the task prompt;
- ``summarize``: the oldest part of the view is replaced by a summary written by
  ``summarizer`` (any Model).

Every trim is recorded as a :class:`ContextEvent` in the rollout (which messages the
policy stopped seeing, the summary it saw instead, token counts), so a trainer knows
exactly what the policy saw at each turn. The full transcript is always kept.

Token counts are per message (o200k, computed once per message, see
:mod:`gymbus.runtime.tokenizer`) and summed incrementally: a turn costs O(new messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gymbus.runtime.messages import Frozen, SystemMessage, ToolMessage, UserMessage
from gymbus.runtime.model import EpisodeInfo, Model, ModelRequest, SamplingParams
from gymbus.runtime.tokenizer import message_tokens
from gymbus.runtime.transcript import Transcript

Overflow = Literal["fail", "truncate_oldest", "summarize"]


class ContextEvent(Frozen):
    """One change of what the policy sees, before policy turn ``turn`` (0-based)."""

    turn: int
    policy: Overflow
    window: int
    tokens_before: int
    tokens_after: int
    dropped: tuple[int, int] = (0, 0)
    """Indices [start, end) of the messages no longer shown (before this turn)."""
    summary: str | None = None
    exhausted: bool = False
    """True when nothing could be trimmed further: the episode stopped."""


@dataclass(frozen=True, slots=True)
class ContextWindow:
    window: int
    on_overflow: Overflow = "fail"
    summarizer: Model | None = None
    reserve: int = 0
    """Tokens kept free for the completion (e.g. the sampling ``max_tokens``)."""

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("the context window must be at least one token")
        if self.on_overflow == "summarize" and self.summarizer is None:
            raise ValueError("on_overflow='summarize' needs a summarizer model")


class ContextExhaustedError(Exception):
    """The policy's view cannot fit the window; carries the recorded event."""

    def __init__(self, event: ContextEvent) -> None:
        super().__init__(f"context window of {event.window} tokens exceeded")
        self.event = event


class ContextView:
    """Per-episode state: where the visible window starts and the running token sum."""

    def __init__(self, config: ContextWindow, info: EpisodeInfo) -> None:
        self.config = config
        self._info = info
        self._pinned = -1  # messages always shown: leading system messages + the task
        self._cut = 0  # first message shown after the pinned ones (and the summary)
        self._seen = 0  # messages accounted for in _visible
        self._visible = 0  # tokens of messages [cut, seen)
        self._pinned_tokens = 0
        self._summary: UserMessage | None = None

    async def prepare(
        self, transcript: Transcript, turn: int
    ) -> tuple[Transcript, ContextEvent | None]:
        """The conversation to send for policy turn ``turn`` (and the trim, if any)."""
        if self._pinned < 0:
            self._pin(transcript)
        for i in range(self._seen, len(transcript)):
            self._visible += message_tokens(transcript[i])
        self._seen = len(transcript)
        budget = self.config.window - self.config.reserve
        before = self._total()
        if before <= budget:
            return self._view(transcript), None
        event = await self._trim(transcript, turn, before, budget)
        return self._view(transcript), event

    def _pin(self, transcript: Transcript) -> None:
        pinned = 0
        while pinned < len(transcript) and isinstance(transcript[pinned], SystemMessage):
            pinned += 1
        pinned = min(pinned + 1, len(transcript))  # the task prompt
        self._pinned = self._cut = self._seen = pinned
        self._pinned_tokens = sum(message_tokens(transcript[i]) for i in range(pinned))

    def _total(self) -> int:
        summary = message_tokens(self._summary) if self._summary is not None else 0
        return self._pinned_tokens + summary + self._visible

    def _view(self, transcript: Transcript) -> Transcript:
        if self._cut == self._pinned and self._summary is None:
            return transcript  # untouched: the transcript itself, no copy
        head = [transcript[i] for i in range(self._pinned)]
        if self._summary is not None:
            head.append(self._summary)
        return Transcript([*head, *transcript[self._cut :]])

    def _next_block(self, transcript: Transcript, start: int) -> int:
        """The index after the block starting at ``start`` (tool results follow their call)."""
        end = start + 1
        while end < len(transcript) and isinstance(transcript[end], ToolMessage):
            end += 1
        return end

    async def _trim(
        self, transcript: Transcript, turn: int, before: int, budget: int
    ) -> ContextEvent:
        config, start = self.config, self._cut
        last_block = len(transcript) - 1
        while last_block > start and isinstance(transcript[last_block], ToolMessage):
            last_block -= 1
        if config.on_overflow == "summarize":
            assert config.summarizer is not None
            half = start + max(1, (last_block - start) // 2)
            end = start
            while end < half:
                end = self._next_block(transcript, end)
            await self._summarize(transcript, start, end)
            self._drop(transcript, start, end)
        elif config.on_overflow == "truncate_oldest":
            end = start
            while self._total() > budget and end < last_block:
                nxt = self._next_block(transcript, end)
                self._drop(transcript, end, nxt)
                end = nxt
        else:
            end = start
        after = self._total()
        event = ContextEvent(
            turn=turn,
            policy=config.on_overflow,
            window=config.window,
            tokens_before=before,
            tokens_after=after,
            dropped=(start, end),
            summary=self._summary.text if self._summary is not None and end > start else None,
            exhausted=after > budget,
        )
        if event.exhausted:
            raise ContextExhaustedError(event)
        return event

    def _drop(self, transcript: Transcript, start: int, end: int) -> None:
        for i in range(start, end):
            self._visible -= message_tokens(transcript[i])
        self._cut = max(self._cut, end)

    async def _summarize(self, transcript: Transcript, start: int, end: int) -> None:
        assert self.config.summarizer is not None
        earlier = self._summary.text + "\n" if self._summary is not None else ""
        lines = "\n".join(
            f"{m.role}: {m.text}" for m in (transcript[i] for i in range(start, end)) if m.text
        )
        prompt = (
            "Summarize this part of a conversation between a user and an assistant for the "
            "assistant, keeping every fact, number and name it may need later.\n\n"
            f"{earlier}{lines}"
        )
        request = ModelRequest(
            Transcript([UserMessage(content=prompt)]),
            (),
            SamplingParams(temperature=0.0),
            self._info,
        )
        reply = await self.config.summarizer.generate(request)
        self._summary = UserMessage(
            content=f"[Summary of the earlier conversation]\n{reply.text}", author="environment"
        )
