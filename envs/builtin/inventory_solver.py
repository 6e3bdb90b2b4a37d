"""The inventory-mcp reference solver: parses the numbered jobs of the request (written from
fixed templates, as a careful agent would read them), looks up location ids, skus and the
stock the jobs depend on — those lookups in parallel — then makes the changes one per turn,
in order, and answers the question from the levels the tools reported.

It reads only the conversation: the request and the tool results, never the answer key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gymbus.envs.builtin.recorded_calls import (
    CallFailedError,
    CallsPendingError,
    RecordedCalls,
    Request,
)
from gymbus.runtime.messages import AssistantMessage, UserMessage
from gymbus.runtime.transcript import Transcript

__all__ = ["InventorySolver", "Job", "parse_request"]

_ITEM = r'"(?P<item>[^"]+)"'
_PLACE = r"[A-Z][a-z]+(?: [A-Za-z]+)*?"
_PATTERNS = {
    "move": re.compile(
        rf"Move (?P<quantity>[0-9]+) units of {_ITEM} from (?P<source>{_PLACE}) "
        rf"to (?P<target>{_PLACE})\."
    ),
    "top_up": re.compile(
        rf"Top up (?P<location>{_PLACE}) to (?P<units>[0-9]+) units of {_ITEM} on hand, "
        rf"taking the extra units from (?P<source>{_PLACE})\."
    ),
    "reserve": re.compile(
        rf"Reserve (?P<quantity>[0-9]+) units of {_ITEM} at (?P<location>{_PLACE}) "
        r"for order (?P<order_id>[A-Za-z0-9_-]+)\."
    ),
    "question": re.compile(
        rf"tell me how many units of {_ITEM} are available \(on hand minus reserved\) "
        rf"at (?P<location>{_PLACE})\."
    ),
}


@dataclass(frozen=True, slots=True)
class Job:
    """One parsed job (or the question): its kind and fields as written."""

    kind: str
    fields: dict[str, str]


def parse_request(text: str) -> list[Job]:
    """The jobs and the question in ``text``, in order of appearance."""
    found = [
        (match.start(), Job(kind, match.groupdict()))
        for kind, pattern in _PATTERNS.items()
        for match in pattern.finditer(text)
    ]
    return [job for _, job in sorted(found, key=lambda f: f[0])]


class _Levels:
    """Units on hand and available per (sku, location id), as the tools last reported."""

    def __init__(self) -> None:
        self.on_hand: dict[tuple[str, str], int] = {}
        self.available: dict[tuple[str, str], int] = {}

    def read(self, sku: str, level: dict[str, Any]) -> None:
        key = (sku, str(level["location"]))
        self.on_hand[key] = int(level["on_hand"])
        self.available[key] = int(level["available"])


class InventorySolver:
    """The reference solver (see the module docstring). A pure function of the
    conversation, so it can be driven turn by turn."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        calls = RecordedCalls(conversation)
        try:
            answer = self._solve(conversation, calls)
        except CallsPendingError as pending:
            return calls.message(pending.requests)
        except CallFailedError as failed:
            return AssistantMessage(content=f"I could not finish the jobs: {failed}")
        return AssistantMessage(content=answer)

    @staticmethod
    def _solve(conversation: Transcript, calls: RecordedCalls) -> str:
        request = next((m.text for m in conversation if isinstance(m, UserMessage)), "")
        jobs = parse_request(request)
        if not jobs:
            raise CallFailedError("the request names no job I know")
        items = sorted({job.fields["item"] for job in jobs})
        listing, *found = calls.need(
            ("list_locations", {}), *(("find_item", {"query": item}) for item in items)
        )
        location_ids = {loc["name"]: loc["id"] for loc in listing}
        skus = {item: _exact(item, matches) for item, matches in zip(items, found, strict=True)}

        def where(name: str) -> str:
            if name not in location_ids:
                raise CallFailedError(f"there is no location called {name!r}")
            return str(location_ids[name])

        levels = _Levels()
        # the stock a top-up or the question depends on, read before anything changes
        looked_up = sorted(
            {skus[j.fields["item"]] for j in jobs if j.kind in ("top_up", "question")}
        )
        for sku, stock in zip(
            looked_up, calls.need(*(("get_stock", {"sku": s}) for s in looked_up)), strict=True
        ):
            for level in stock["locations"]:
                levels.read(sku, level)
        for job in jobs:
            f, sku = job.fields, skus[job.fields["item"]]
            if job.kind == "move":
                change: Request = (
                    "move_stock",
                    {
                        "sku": sku,
                        "from_location": where(f["source"]),
                        "to_location": where(f["target"]),
                        "quantity": int(f["quantity"]),
                    },
                )
            elif job.kind == "top_up":
                location = where(f["location"])
                missing = int(f["units"]) - levels.on_hand.get((sku, location), 0)
                if missing <= 0:
                    continue  # already there
                change = (
                    "move_stock",
                    {
                        "sku": sku,
                        "from_location": where(f["source"]),
                        "to_location": location,
                        "quantity": missing,
                    },
                )
            elif job.kind == "reserve":
                change = (
                    "reserve_stock",
                    {
                        "sku": sku,
                        "location": where(f["location"]),
                        "quantity": int(f["quantity"]),
                        "order_id": f["order_id"],
                    },
                )
            else:
                continue
            (result,) = calls.need(change)  # one change per turn, in the order asked
            for key in ("from", "to", "level"):
                if key in result:
                    levels.read(sku, result[key])
        question = next((j for j in jobs if j.kind == "question"), None)
        if question is None:
            return "Done: " + " ".join(f"({i}) {j.kind}" for i, j in enumerate(jobs, 1))
        sku = skus[question.fields["item"]]
        available = levels.available.get((sku, where(question.fields["location"])), 0)
        return f"All jobs are done. Units available there now: {available}"


def _exact(item: str, matches: list[dict[str, Any]]) -> str:
    """The sku of the match named exactly ``item`` (a search also returns look-alikes)."""
    for match in matches:
        if match["name"] == item:
            return str(match["sku"])
    raise CallFailedError(f"no item is named exactly {item!r}")
