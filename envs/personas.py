"""A library of simulated-user personas, sampled reproducibly from a seed.

One task yields diverse but reproducible users: ``sample_persona(seed)`` draws from the
library with its own random stream (``random.Random(f"persona:{seed}")``), so the same
seed always gives the same persona and the persona draw never disturbs the task's own
random stream.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from gymbus.runtime.messages import Frozen

Verbosity = Literal["terse", "normal", "chatty"]
Cooperativeness = Literal["cooperative", "reluctant", "impatient"]


class Persona(Frozen):
    """Who the simulated user is: traits, how much they say, how readily they help,
    and how they write. Rendered into the user model's instructions by :meth:`describe`."""

    name: str
    traits: tuple[str, ...] = Field(min_length=1)
    verbosity: Verbosity = "normal"
    cooperativeness: Cooperativeness = "cooperative"
    style: str = "plain, everyday language"

    def describe(self) -> str:
        length = {
            "terse": "Answer in as few words as possible, one short sentence at most.",
            "normal": "Answer in one or two sentences.",
            "chatty": "You like to chat: two to four sentences, with a personal aside.",
        }[self.verbosity]
        attitude = {
            "cooperative": "You answer questions willingly.",
            "reluctant": "You answer questions, but only what is asked, never more.",
            "impatient": "You are in a hurry and say so, but you still answer questions.",
        }[self.cooperativeness]
        return (
            f"You are {self.name}: {', '.join(self.traits)}. {length} {attitude} "
            f"Write in {self.style}."
        )


PERSONAS: tuple[Persona, ...] = (
    Persona(name="Ana, a nurse on night shifts", traits=("tired", "precise"),
            verbosity="terse", style="short plain sentences"),
    Persona(name="Ben, a retired teacher", traits=("polite", "thorough"),
            verbosity="chatty", style="full, well-formed sentences"),
    Persona(name="Chloé, a start-up founder", traits=("busy", "decisive"),
            cooperativeness="impatient", verbosity="terse", style="clipped, lowercase texting"),
    Persona(name="Dev, a graduate student", traits=("curious", "informal"),
            style="casual language with the odd 'tbh'"),
    Persona(name="Elif, an accountant", traits=("careful", "formal"),
            cooperativeness="reluctant", style="formal business English"),
    Persona(name="Femi, a sales manager", traits=("friendly", "talkative"),
            verbosity="chatty", style="warm, enthusiastic language"),
    Persona(name="Greta, a software engineer", traits=("direct", "skeptical"),
            verbosity="terse", cooperativeness="reluctant", style="terse technical English"),
    Persona(name="Hiro, a hotel concierge", traits=("courteous", "patient"),
            style="very polite, formal phrasing"),
    Persona(name="Inés, a parent of three", traits=("distracted", "warm"),
            verbosity="chatty", cooperativeness="impatient", style="run-on sentences"),
    Persona(name="Jonas, a logistics coordinator", traits=("organized", "matter-of-fact"),
            style="plain, structured sentences"),
    Persona(name="Kemi, a journalist", traits=("inquisitive", "sharp"),
            cooperativeness="reluctant", style="crisp, questioning tone"),
    Persona(name="Luca, a chef", traits=("expressive", "hurried"),
            cooperativeness="impatient", style="lively language with exclamation marks"),
)  # fmt: skip


def sample_persona(seed: int, pool: Sequence[Persona] = PERSONAS) -> Persona:
    """The persona for ``seed``: the same seed always gives the same persona."""
    if not pool:
        raise ValueError("the persona pool is empty")
    return random.Random(f"persona:{seed}").choice(list(pool))
