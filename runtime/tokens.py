"""The token view of an episode for trainers: one token sequence with a trainable mask
(1 on tokens the policy generated, 0 on everything else — system, user, tool and
environment tokens) and the policy's logprobs, built only from what the server returned.

Each policy turn's ``generation`` holds the prompt token ids the server saw and the
completion token ids it produced. When every prompt extends the previous prompt plus
completion (prefix-preserving chat templates), the view is the exact token stream of
the whole episode. When a prompt does not (a template that rewrites history, e.g. drops
earlier reasoning), the view restarts from that prompt — earlier completions inside it
are no longer identifiable, so they count as context (mask 0) — and
``prefix_consistent`` is False so a trainer can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gymbus.runtime.messages import AnyMessage, AssistantMessage


@dataclass(frozen=True, slots=True)
class TokenView:
    token_ids: tuple[int, ...]
    mask: tuple[int, ...]
    """1 where the policy generated the token (trainable), else 0."""
    logprobs: tuple[float | None, ...]
    """The policy's logprob per generated token (None where not returned, and on context)."""
    policy_turns: int
    prefix_consistent: bool


def token_view(messages: Sequence[AnyMessage]) -> TokenView | None:
    """The episode's token view, or None when the server returned no token ids (ask for
    them with ``SamplingParams(return_token_ids=True)`` on vLLM)."""
    turns = [m.generation for m in messages if isinstance(m, AssistantMessage)]
    if not turns or any(
        g is None or g.prompt_token_ids is None or g.token_ids is None for g in turns
    ):
        return None
    ids: list[int] = []
    mask: list[int] = []
    logprobs: list[float | None] = []
    consistent = True
    for generation in turns:
        assert generation is not None
        assert generation.prompt_token_ids is not None
        assert generation.token_ids is not None
        prompt = generation.prompt_token_ids
        if tuple(ids) != prompt[: len(ids)]:
            consistent = False
            ids, mask, logprobs = [], [], []
        context = prompt[len(ids) :]
        ids.extend(context)
        mask.extend([0] * len(context))
        logprobs.extend([None] * len(context))
        completion = generation.token_ids
        ids.extend(completion)
        mask.extend([1] * len(completion))
        lps = generation.logprobs or ()
        if len(lps) == len(completion):
            logprobs.extend(lp.logprob for lp in lps)
        else:
            logprobs.extend([None] * len(completion))
    return TokenView(tuple(ids), tuple(mask), tuple(logprobs), len(turns), consistent)
