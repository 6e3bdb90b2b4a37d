"""Hypothesis strategies for gymbus messages, shared by test modules, and tiny media
samples of each format the media store recognises.

Media parts are put into the :class:`MediaStore` passed in (use one store per test
module: hypothesis does not mix with function-scoped fixtures); their bytes are real
samples of their media type (the store checks them). ``kinds`` limits the content part
types, so a test can generate only what a wire format can express.
``runtime_fields=True`` also fills the fields no wire format carries (``generation``,
``is_error``, ``author``).
"""

from __future__ import annotations

import io
import json
import string
import wave
from collections.abc import Sequence

from hypothesis import strategies as st
from PIL import Image

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
#: Not in ALL_KINDS: a video part holding an animated GIF, which frames mode can decode.
ANIMATION = "animation"
IMAGE_MIMES = ("image/png", "image/jpeg", "image/webp", "image/gif")
# audio/wav and audio/mpeg go as Chat `input_audio`; the others as a vLLM `audio_url`.
AUDIO_MIMES = ("audio/wav", "audio/mpeg", "audio/ogg", "audio/flac")
VIDEO_MIMES = ("video/mp4", "video/webm")

# --- media samples -------------------------------------------------------------------

Color = tuple[int, int, int]
PILLOW_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
# Hand-made magic bytes for the formats nothing here encodes.
MP3_HEAD = b"\xff\xfb\x90\x64"  # MPEG-1 layer III frame header, 128 kbit/s, 44.1 kHz
ID3_HEAD = b"ID3\x04\x00\x00\x00\x00\x00\x00"
OGG_HEAD = b"OggS\x00\x02" + bytes(20)
FLAC_HEAD = b"fLaC\x00\x00\x00\x22"
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
MOV_HEAD = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  "
WEBM_HEAD = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"
MKV_HEAD = b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska"
MAGIC_HEADS = {
    "audio/mpeg": MP3_HEAD,
    "audio/ogg": OGG_HEAD,
    "audio/flac": FLAC_HEAD,
    "video/mp4": MP4_HEAD,
    "video/quicktime": MOV_HEAD,
    "video/webm": WEBM_HEAD,
    "video/x-matroska": MKV_HEAD,
}


def image_bytes(
    mime: str = "image/png", size: tuple[int, int] = (2, 2), color: Color = (0, 0, 0)
) -> bytes:
    """A one-colour image encoded by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=PILLOW_FORMATS[mime])
    return out.getvalue()


def animated_bytes(
    colors: Sequence[Color], mime: str = "image/gif", size: tuple[int, int] = (4, 4)
) -> bytes:
    """An animated GIF/WebP/PNG, one frame per colour (keep colours distinct: encoders
    merge identical neighbouring frames)."""
    frames = [Image.new("RGB", size, c) for c in colors]
    out = io.BytesIO()
    frames[0].save(
        out,
        format=PILLOW_FORMATS[mime],
        save_all=True,
        append_images=frames[1:],
        duration=40,
        loop=0,
    )
    return out.getvalue()


def wav_bytes(samples: bytes = b"\x00\x00" * 8, rate: int = 8000) -> bytes:
    """16-bit mono PCM in a RIFF/WAVE file (``samples`` of even length)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples)
    return out.getvalue()


def media_bytes(mime: str) -> st.SearchStrategy[bytes]:
    """Valid bytes of media type ``mime``."""
    if mime in PILLOW_FORMATS:
        channel = st.integers(0, 255)
        return st.builds(
            image_bytes,
            st.just(mime),
            st.tuples(st.integers(1, 4), st.integers(1, 4)),
            st.tuples(channel, channel, channel),
        )
    if mime == "audio/wav":
        pcm = st.binary(max_size=16).map(lambda b: b[: len(b) // 2 * 2])
        return st.builds(wav_bytes, pcm, st.sampled_from([8000, 16000]))
    head = MAGIC_HEADS[mime]
    return st.binary(max_size=32).map(lambda tail: head + tail)


# --- messages --------------------------------------------------------------------------

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
    return st.sampled_from(mimes).flatmap(
        lambda mime: media_bytes(mime).map(lambda data: store.put(data, mime))
    )


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


def animation_parts(store: MediaStore) -> st.SearchStrategy[VideoPart]:
    """Video parts holding an animated GIF of 1 to 6 frames."""
    color = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
    return st.lists(color, min_size=1, max_size=6, unique=True).map(
        lambda colors: VideoPart(media=store.put(animated_bytes(colors, size=(2, 2)), "image/gif"))
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
        elif kind == ANIMATION:
            options.append(animation_parts(store))
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
