"""Hypothesis strategies for gymbus messages, shared by test modules.

Media parts are put into the :class:`MediaStore` passed in (use one store per test
module: hypothesis does not mix with function-scoped fixtures). ``kinds`` limits the
content part types, so a test can generate only what a wire format can express.
``runtime_fields=True`` also fills the fields no wire format carries (``generation``,
``is_error``, ``author``).
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence

from hypothesis import strategies as st

from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    AudioPart,
    ContentPart,
    Generation,
    ImagePart,
    MediaRef,
    SystemMessage,
    TextPart,
    TokenLogprob,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
    VideoPart,
)

ALL_KINDS: tuple[str, ...] = ("text", "image", "audio", "video")
IMAGE_MIMES = ("image/png", "image/jpeg", "image/webp", "image/gif")
# audio/wav and audio/mpeg go as Chat `input_audio`; the others as a vLLM `audio_url`.
AUDIO_MIMES = ("audio/wav", "audio/mpeg", "audio/ogg", "audio/flac")
VIDEO_MIMES = ("video/mp4", "video/webm")

texts = st.text(max_size=30)
#: Remote URLs only: a ``data:`` URL reads back as stored media, not as a URL part.
urls = st.text(alphabet=string.ascii_letters + string.digits + "-_./?=&%", max_size=24).map(
    lambda path: "https://example.com/" + path
)
#: Arbitrary argument text (models write malformed JSON too) and real JSON objects.
arguments = st.one_of(
    st.text(max_size=40),
    st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=3).map(
        json.dumps
    ),
)
details = st.sampled_from([None, "auto", "low", "high"])


def media_refs(store: MediaStore, mimes: Sequence[str]) -> st.SearchStrategy[MediaRef]:
    return st.builds(store.put, st.binary(max_size=48), st.sampled_from(mimes))


def text_parts() -> st.SearchStrategy[TextPart]:
    return st.builds(TextPart, text=texts)


def image_parts(store: MediaStore) -> st.SearchStrategy[ImagePart]:
    return st.one_of(
        st.builds(ImagePart, media=media_refs(store, IMAGE_MIMES), detail=details),
        st.builds(ImagePart, url=urls, detail=details),
    )


def audio_parts(store: MediaStore) -> st.SearchStrategy[AudioPart]:
    return st.one_of(
        st.builds(AudioPart, media=media_refs(store, AUDIO_MIMES)), st.builds(AudioPart, url=urls)
    )


def video_parts(store: MediaStore) -> st.SearchStrategy[VideoPart]:
    return st.one_of(
        st.builds(VideoPart, media=media_refs(store, VIDEO_MIMES)), st.builds(VideoPart, url=urls)
    )


def content_parts(
    store: MediaStore, kinds: Sequence[str] = ALL_KINDS
) -> st.SearchStrategy[ContentPart]:
    options: list[st.SearchStrategy[ContentPart]] = []
    for kind in kinds:
        if kind == "text":
            options.append(text_parts())
        elif kind == "image":
            options.append(image_parts(store))
        elif kind == "audio":
            options.append(audio_parts(store))
        elif kind == "video":
            options.append(video_parts(store))
        else:
            raise ValueError(f"unknown content kind {kind!r}")
    return st.one_of(*options)


def contents(
    store: MediaStore, kinds: Sequence[str] = ALL_KINDS, max_size: int = 4
) -> st.SearchStrategy[tuple[ContentPart, ...]]:
    if not kinds:
        return st.just(())
    return st.lists(content_parts(store, kinds), max_size=max_size).map(tuple)


def tool_calls() -> st.SearchStrategy[ToolCall]:
    return st.builds(
        ToolCall, id=st.text(max_size=12), name=st.text(max_size=12), arguments=arguments
    )


def generations() -> st.SearchStrategy[Generation]:
    token_ids = st.lists(st.integers(0, 200_000), max_size=6).map(tuple)
    logprobs = st.lists(
        st.builds(
            TokenLogprob,
            token=texts,
            logprob=st.floats(max_value=0, allow_nan=False),
            token_id=st.none() | st.integers(0, 200_000),
        ),
        max_size=4,
    ).map(tuple)
    return st.builds(
        Generation,
        model=st.text(min_size=1, max_size=12),
        finish_reason=st.none() | st.sampled_from(["stop", "length", "tool_calls"]),
        usage=st.builds(
            Usage, prompt_tokens=st.integers(0, 10**6), completion_tokens=st.integers(0, 10**6)
        ),
        prompt_token_ids=st.none() | token_ids,
        token_ids=st.none() | token_ids,
        logprobs=st.none() | logprobs,
        weight_version=st.none() | st.text(max_size=8),
    )


def system_messages(
    store: MediaStore, kinds: Sequence[str] = ALL_KINDS
) -> st.SearchStrategy[SystemMessage]:
    return st.builds(SystemMessage, content=contents(store, kinds))


def user_messages(
    store: MediaStore, kinds: Sequence[str] = ALL_KINDS, *, runtime_fields: bool = False
) -> st.SearchStrategy[UserMessage]:
    authors = st.sampled_from(["user", "environment"]) if runtime_fields else st.just("user")
    return st.builds(UserMessage, content=contents(store, kinds), author=authors)


def assistant_messages(
    store: MediaStore, kinds: Sequence[str] = ALL_KINDS, *, runtime_fields: bool = False
) -> st.SearchStrategy[AssistantMessage]:
    return st.builds(
        AssistantMessage,
        content=contents(store, kinds),
        tool_calls=st.lists(tool_calls(), max_size=3).map(tuple),
        refusal=st.none() | texts,
        reasoning=st.none() | texts,
        generation=(st.none() | generations()) if runtime_fields else st.none(),
    )


def tool_messages(
    store: MediaStore, kinds: Sequence[str] = ALL_KINDS, *, runtime_fields: bool = False
) -> st.SearchStrategy[ToolMessage]:
    return st.builds(
        ToolMessage,
        tool_call_id=st.text(max_size=12),
        content=contents(store, kinds),
        name=st.none() | st.text(max_size=12),
        is_error=st.booleans() if runtime_fields else st.just(False),
    )


def messages(
    store: MediaStore,
    kinds: Sequence[str] = ALL_KINDS,
    *,
    assistant_kinds: Sequence[str] | None = None,
    runtime_fields: bool = False,
) -> st.SearchStrategy[AnyMessage]:
    """Any of the four roles; ``assistant_kinds`` defaults to ``kinds``."""
    a_kinds = kinds if assistant_kinds is None else assistant_kinds
    return st.one_of(
        system_messages(store, kinds),
        user_messages(store, kinds, runtime_fields=runtime_fields),
        assistant_messages(store, a_kinds, runtime_fields=runtime_fields),
        tool_messages(store, kinds, runtime_fields=runtime_fields),
    )


def _no_adjacent_assistants(items: list[AnyMessage]) -> list[AnyMessage]:
    return [
        m
        for i, m in enumerate(items)
        if not (
            isinstance(m, AssistantMessage) and i and isinstance(items[i - 1], AssistantMessage)
        )
    ]


def conversations(
    store: MediaStore,
    kinds: Sequence[str] = ALL_KINDS,
    *,
    assistant_kinds: Sequence[str] | None = None,
    max_size: int = 8,
) -> st.SearchStrategy[list[AnyMessage]]:
    """Message lists where no two assistant messages are adjacent (wire formats that
    split a message into items, like Responses, merge adjacent assistant turns)."""
    return st.lists(messages(store, kinds, assistant_kinds=assistant_kinds), max_size=max_size).map(
        _no_adjacent_assistants
    )
