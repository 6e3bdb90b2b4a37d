"""Hypothesis strategies for the fuzz tests (``tests/test_fuzz_*.py``), and
:func:`outcome`, which tells a surface's own errors from bugs.

Random input mostly fails a parser's first check, so these speak the vocabulary of the
surface under test: JSON values whose keys and strings are drawn from the field names
and type tags the parser looks for, media bytes that start with real magic numbers, and
``data:`` URIs that are nearly right. Text includes lone surrogates, which Python's
``json`` (unlike orjson) produces from ``"\\ud800"``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

from tests.runtime.strategies import MAGIC_HEADS, media_bytes

JSON = Any
T = TypeVar("T")
E = TypeVar("E", bound=Exception)


def outcome(call: Callable[[], T], *allowed: type[E]) -> T | E:
    """What ``call()`` returned, or the exception it raised if it is one of ``allowed``
    (the surface's documented errors); any other exception propagates: a bug."""
    try:
        return call()
    except allowed as exc:
        return exc


any_text = st.text(st.characters(exclude_categories=()), max_size=16)
scalars: st.SearchStrategy[JSON] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), any_text
)

SAMPLE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp", "audio/wav", "audio/mpeg")
MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF89a",
    b"RIFF\x24\x00\x00\x00WAVEfmt ",
    b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    b"ID3",
    *MAGIC_HEADS.values(),
)
DECLARED_TYPES = (
    *SAMPLE_MIMES,
    "video/mp4",
    "audio/ogg",
    "application/octet-stream",
    "image/svg+xml",
    "text/plain",
    "audio/L16",  # raw PCM: a type not sniffed, kept as declared
    "audio/L16\n",  # `$` in a regex matches before a final newline
    "image/png\n",
    "image/png; charset=x",
    "image/",
    "a/b/c",
    "",
)


def _flip(data: bytes, at: int, value: int) -> bytes:
    if not data:
        return data
    i = at % len(data)
    return data[:i] + bytes([value]) + data[i + 1 :]


def media_ish_bytes() -> st.SearchStrategy[bytes]:
    """Random bytes, magic numbers followed by junk, and real samples cut short or with
    a byte changed."""
    real = st.sampled_from(SAMPLE_MIMES).flatmap(media_bytes)
    return st.one_of(
        st.binary(max_size=48),
        st.builds(bytes.__add__, st.sampled_from(MAGIC), st.binary(max_size=64)),
        real,
        real.flatmap(lambda data: st.integers(0, len(data)).map(lambda n: data[:n])),
        st.builds(_flip, real, st.integers(0, 10_000), st.integers(0, 255)),
    )


def declared_types() -> st.SearchStrategy[str | None]:
    return st.none() | st.sampled_from(DECLARED_TYPES) | st.text(max_size=12)


def data_uris() -> st.SearchStrategy[str]:
    """``data:`` URIs, mostly well formed, of media-ish bytes (or of text that is not
    base64)."""
    payload = media_ish_bytes().map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=12)
    mark = st.sampled_from([";base64,", ";base64,", ",", ";base64"])
    return st.builds(
        lambda mime, sep, data: f"data:{mime}{sep}{data}",
        st.sampled_from(DECLARED_TYPES) | st.text(max_size=8),
        mark,
        payload,
    )


def json_values(
    keys: Sequence[str], words: Sequence[str], *leaves: st.SearchStrategy[JSON]
) -> st.SearchStrategy[JSON]:
    """Nested JSON values whose object keys are mostly from ``keys`` and whose strings
    are often from ``words`` (or come from ``leaves``)."""
    leaf = st.one_of(scalars, st.sampled_from(list(words)), *leaves)
    key = st.sampled_from(list(keys)) | st.text(max_size=6)
    return st.recursive(
        leaf,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(key, kids, max_size=5),
        max_leaves=24,
    )


def json_objects(
    keys: Sequence[str], words: Sequence[str], *leaves: st.SearchStrategy[JSON]
) -> st.SearchStrategy[dict[str, JSON]]:
    """JSON objects as :func:`json_values` builds them."""
    key = st.sampled_from(list(keys)) | st.text(max_size=6)
    return st.dictionaries(key, json_values(keys, words, *leaves), max_size=6)


# --- wire messages: near-valid shapes with a wrong value here and there ---------------


def sometimes(good: st.SearchStrategy[JSON]) -> st.SearchStrategy[JSON]:
    """Mostly ``good`` (six times in seven), else a JSON scalar."""
    return st.sampled_from((True,) * 6 + (False,)).flatmap(lambda ok: good if ok else scalars)


def sometimes_one_of(*good: st.SearchStrategy[JSON]) -> st.SearchStrategy[JSON]:
    return sometimes(st.one_of(*good))


def shaped(
    required: dict[str, st.SearchStrategy[JSON]], **optional: st.SearchStrategy[JSON]
) -> st.SearchStrategy[dict[str, JSON]]:
    return st.fixed_dictionaries(
        {k: sometimes(v) for k, v in required.items()},
        optional={k: sometimes(v) for k, v in optional.items()},
    )


short_text = st.text(max_size=10) | any_text
urls = st.one_of(data_uris(), st.just("https://example.com/a.png"), st.text(max_size=8))
arguments = st.one_of(st.just("{}"), st.just('{"a": 1}'), st.text(max_size=12))


def chat_parts() -> st.SearchStrategy[JSON]:
    media_url = urls | shaped({}, url=urls, detail=st.sampled_from(["auto", "low", "high", "x"]))
    audio = shaped(
        {},
        data=media_ish_bytes().map(lambda b: base64.b64encode(b).decode()) | data_uris(),
        format=st.sampled_from(["wav", "mp3", "flac"]),
    )
    return sometimes_one_of(
        short_text,
        shaped({"type": st.just("text")}, text=short_text),
        shaped({"type": st.just("image_url")}, image_url=media_url),
        shaped({"type": st.just("input_audio")}, input_audio=audio),
        shaped({"type": st.sampled_from(["audio_url", "video_url"])}, audio_url=media_url),
        shaped({"type": st.just("video_url")}, video_url=media_url),
        shaped({"type": st.just("refusal")}, refusal=short_text),
    )


def chat_messages() -> st.SearchStrategy[JSON]:
    """Chat Completions messages, mostly of the right shape."""
    content = st.one_of(short_text, st.none(), st.lists(chat_parts(), max_size=3))
    call = shaped(
        {},
        id=short_text,
        type=st.sampled_from(["function", "custom"]),
        function=shaped({}, name=short_text, arguments=arguments),
    )
    return shaped(
        {"role": st.sampled_from(["user", "system", "developer", "assistant", "tool"])},
        content=content,
        tool_calls=st.lists(call, max_size=2),
        refusal=short_text,
        reasoning=short_text,
        reasoning_content=short_text,
        tool_call_id=short_text,
        name=short_text,
    )


def responses_items() -> st.SearchStrategy[JSON]:
    """Responses API input/output items, mostly of the right shape."""
    part = sometimes_one_of(
        shaped({"type": st.sampled_from(["input_text", "output_text"])}, text=short_text),
        shaped(
            {"type": st.just("input_image")},
            image_url=urls,
            detail=st.sampled_from(["auto", "low", "x"]),
        ),
        shaped({"type": st.just("refusal")}, refusal=short_text),
    )
    content = short_text | st.lists(part, max_size=3)
    texts = st.lists(
        shaped({"type": st.sampled_from(["reasoning_text", "summary_text"])}, text=short_text),
        max_size=2,
    )
    return sometimes_one_of(
        shaped(
            {"role": st.sampled_from(["user", "system", "developer", "assistant", "tool"])},
            type=st.just("message"),
            content=content,
        ),
        shaped({"type": st.just("reasoning")}, content=texts, summary=texts),
        shaped(
            {"type": st.just("function_call")},
            call_id=short_text,
            name=short_text,
            arguments=arguments,
        ),
        shaped(
            {"type": st.just("function_call_output")},
            call_id=short_text,
            output=content,
            name=short_text,
        ),
    )
