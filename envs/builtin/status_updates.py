"""status-updates: a 1,000-message conversation in which only the latest relevant
update counts (information relevance, long context, multi-turn).

A simulated user sends shipment status updates one message at a time (easy 500, medium
700, hard 1,000 updates — over 1,000 messages each), the agent acknowledges each, and
the user finally asks where one shipment is now. Distractors: many shipments, shipment
ids one digit apart, several moves of the asked shipment (only the latest counts), and
on hard, corrections that retract an earlier update ("disregard update 412").

The user is stateless (the next message is derived from how many it has sent), so the
dialogue replays identically. A turn costs O(new content): the transcript is an
append-only view and every message is encoded once.

Verifier (exact match): the final answer must name exactly one known location, the
expected one. Null check: the null model never names a location, so it scores 0.
"""

from __future__ import annotations

import random
import re
from typing import Any

from gymbus.envs.base import Environment
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers.exact import ExactMatchVerifier
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AssistantMessage, SystemMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import EndEpisode, UserTurn

LOCATIONS = (
    "Rotterdam", "Antwerp", "Hamburg", "Gdansk", "Valencia", "Genoa", "Piraeus", "Marseille",
    "Lisbon", "Bilbao", "Le Havre", "Felixstowe", "Dublin", "Gothenburg", "Aarhus", "Tallinn",
    "Riga", "Klaipeda", "Constanta", "Koper", "Trieste", "Algeciras", "Tangier", "Izmir",
    "Haifa", "Alexandria", "Casablanca", "Oslo", "Bremerhaven", "Zeebrugge",
)  # fmt: skip
SIZES = {"easy": (500, 10, 0.0), "medium": (700, 20, 0.0), "hard": (1000, 30, 0.06)}
"""difficulty → (updates, shipments, share of corrections)."""

_OPENING = (
    "I'll send you our shipment status updates one message at a time. Reply 'ok' to each. "
    "When I'm done I'll ask you one question about them. A correction retracts the update "
    "it names. {first}"
)
_UPDATE = "Update {n}: shipment {sid} is now at {place}."
_CORRECTION = "Correction to update {n}: that update on shipment {sid} was wrong; disregard it."
_QUESTION = "That's all the updates. Where is shipment {sid} now? Answer with just the location."
_UPDATE_RE = re.compile(r"Update (\d+): shipment (SHP-\d+) is now at ([A-Za-z ]+?)\.")
_CORRECTION_RE = re.compile(r"Correction to update (\d+): that update on shipment (SHP-\d+)")
_QUESTION_RE = re.compile(r"Where is shipment (SHP-\d+) now\?")


def generate(seed: int, difficulty: str) -> dict[str, Any]:
    """The user's messages (updates, corrections, the question) and the answer."""
    rng = random.Random(seed)
    n_updates, n_ships, corrections = SIZES[difficulty]
    asked = rng.randrange(1000, 9000)
    twins = {asked + 1, asked - 1, asked + 10}  # ids one digit away: distractors
    others = set(rng.sample(range(1000, 9999), n_ships * 2)) - {asked} - twins
    ids = (
        [f"SHP-{asked}"]
        + [f"SHP-{i}" for i in sorted(twins)]
        + [f"SHP-{i}" for i in sorted(others)[: n_ships - 1 - len(twins)]]
    )
    messages: list[str] = []
    history: dict[str, list[tuple[int, str]]] = {sid: [] for sid in ids}
    retracted: set[int] = set()
    for n in range(1, n_updates + 1):
        if n > 10 and rng.random() < corrections:
            candidates = [u for sid in ids for u, _ in history[sid] if u not in retracted]
            target = rng.choice(candidates)
            sid = next(s for s in ids if any(u == target for u, _ in history[s]))
            retracted.add(target)
            messages.append(_CORRECTION.format(n=target, sid=sid))
            continue
        sid = ids[0] if rng.random() < 0.08 else rng.choice(ids)
        place = rng.choice(LOCATIONS)
        history[sid].append((n, place))
        messages.append(_UPDATE.format(n=n, sid=sid, place=place))
    valid = [place for n, place in history[ids[0]] if n not in retracted]
    if not valid:  # make sure the asked shipment has a current location
        place = rng.choice(LOCATIONS)
        messages.append(_UPDATE.format(n=n_updates + 1, sid=ids[0], place=place))
        valid = [place]
    messages.append(_QUESTION.format(sid=ids[0]))
    return {"messages": messages, "answer": valid[-1], "shipment": ids[0]}


class UpdateFeed:
    """The simulated user: one update per turn, then the question, then goodbye."""

    def __init__(self, messages: list[str]) -> None:
        self._messages = messages

    async def reply(self, conversation: Transcript) -> UserTurn:
        sent = sum(1 for m in conversation if isinstance(m, UserMessage))
        if sent >= len(self._messages):
            return EndEpisode("goal-met")
        return UserMessage(content=self._messages[sent], author="user")


def one_location(text: str) -> str | None:
    """The single known location named in ``text`` (None if none or several)."""
    named = {place for place in LOCATIONS if re.search(rf"\b{re.escape(place)}\b", text)}
    return named.pop() if len(named) == 1 else None


class StatusUpdatesSolver:
    """Acknowledges updates; at the question, replays every update and correction it
    was sent and answers with the asked shipment's latest valid location."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        last = conversation.last
        question = _QUESTION_RE.search(last.text) if last is not None else None
        if question is None:
            return AssistantMessage(content="ok")
        asked = question.group(1)
        moves: list[tuple[int, str]] = []
        retracted: set[int] = set()
        for message in conversation:
            if not isinstance(message, UserMessage):
                continue
            for n, sid, place in _UPDATE_RE.findall(message.text):
                if sid == asked:
                    moves.append((int(n), place))
            for n, _sid in _CORRECTION_RE.findall(message.text):
                retracted.add(int(n))
        current = [place for n, place in moves if n not in retracted]
        return AssistantMessage(content=current[-1] if current else "unknown")


class StatusUpdates(Environment):
    name = "status-updates"
    description = (
        "A user sends 500-1,000 shipment status updates one message at a time (over 1,000 "
        "messages), then asks where one shipment is now: only its latest update counts, "
        "among near-identical ids and (hard) retracting corrections."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-turn", "long-context"),
        core_capabilities=("information-relevance",),
        knowledge_domain="logistics",
        task_type="state-tracking",
        verification_method="exact-match",
    )

    def task(self, seed: int) -> Task:
        return self.make_task(seed, generate(seed, self.difficulty))

    def episode(self, task: Task) -> EpisodeSpec:
        messages = task.data.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            raise BadTaskError(f"task {task.task_id!r} has no user messages")
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content="You track shipments from status updates."),
                UserMessage(content=_OPENING.format(first=messages[0]), author="user"),
            ),
            user=UpdateFeed(messages),
            verifier=ExactMatchVerifier(str(task.data["answer"]), extract=one_location),
            solver=StatusUpdatesSolver(),
            limits=Limits(max_turns=len(messages) + 5),
            metadata=self.metadata.model_dump(mode="json"),
        )
