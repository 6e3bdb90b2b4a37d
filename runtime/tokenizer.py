"""Token counts with OpenAI's ``o200k_base`` encoding (tiktoken), shipped with gymbus.

tiktoken downloads its encodings on first use; gymbus must not download anything at run
time, so the encoding's rank file travels inside the package
(``o200k_base.tiktoken.gz``, the official file, checked against tiktoken's published
sha256 on load) and the :class:`tiktoken.Encoding` is built from it locally.

Counts are used for context-window accounting and to size long-context tasks. Each
message's count is computed once and cached on the (immutable) message.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from pathlib import Path

import tiktoken

from gymbus.runtime.messages import AnyMessage, AssistantMessage, TextPart

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
_RANKS = Path(__file__).with_name("o200k_base.tiktoken.gz")
# tiktoken_ext.openai_public.o200k_base's pattern (the encoding's definition)
_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
MESSAGE_OVERHEAD = 4
"""Tokens a chat template adds per message (role markers), as OpenAI documents."""
MEDIA_TOKENS = 765
"""Tokens counted for an image, audio or video part (a high-detail 512x512 image tile)."""


@functools.cache
def o200k() -> tiktoken.Encoding:
    """The o200k_base encoding, loaded once from the shipped rank file."""
    data = gzip.decompress(_RANKS.read_bytes())
    if hashlib.sha256(data).hexdigest() != O200K_SHA256:
        raise RuntimeError(f"{_RANKS} is not the published o200k_base rank file")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    return tiktoken.Encoding(
        name="o200k_base",
        pat_str=_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    )


def count_tokens(text: str) -> int:
    """o200k_base tokens in ``text`` (special-token text counts as ordinary text)."""
    return len(o200k().encode_ordinary(text))


def message_tokens(message: AnyMessage) -> int:
    """Tokens a message takes in a prompt: its text, tool calls, media parts and the
    per-message overhead. Computed once per message."""
    return message.cached("tokens:o200k", lambda: _count(message))


def _count(message: AnyMessage) -> int:
    total = MESSAGE_OVERHEAD
    for part in message.content:
        total += count_tokens(part.text) if isinstance(part, TextPart) else MEDIA_TOKENS
    if isinstance(message, AssistantMessage):
        for call in message.tool_calls:
            total += count_tokens(call.name) + count_tokens(call.arguments) + MESSAGE_OVERHEAD
    return total
