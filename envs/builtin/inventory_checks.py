"""The inventory-mcp verifier (``state-check``): reads the workspace's state from the MCP
server after the episode and compares it with the state the task expects.

Sub-scores: one per job (``job_1`` …: the stock and reservations that job touches are as
expected), ``state_exact`` (the whole stock and every reservation match — nothing else was
moved, adjusted or reserved) and, when the request asks a question, ``answer_correct`` (the
last integer of the final answer). Reward 1.0 only if every one passes. Evidence: expected
vs got for each, and the server's operation log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gymbus.envs.builtin.inventory_tasks import InventoryTask, MoveStep, Step, TopUpStep, clause
from gymbus.envs.verifiers.exact import final_answer, last_integer
from gymbus.envs.verifiers.state import (
    CheckResult,
    StateCheck,
    StateCheckVerifier,
    TranscriptCheck,
)
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Score

__all__ = ["InventorySnapshot", "InventoryVerifier", "inventory_checks"]

Reservations = dict[tuple[str, str, str], int]  # (order id, sku, location) → units


@dataclass(frozen=True, slots=True)
class InventorySnapshot:
    """A workspace's state as read after the episode (``inventory_state``)."""

    stock: dict[str, dict[str, int]]  # sku → location → units on hand (non-zero)
    reservations: Reservations
    log: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> InventorySnapshot:
        reservations: Reservations = {}
        for r in state["reservations"]:
            key = (str(r["order_id"]), str(r["sku"]), str(r["location"]))
            reservations[key] = reservations.get(key, 0) + int(r["quantity"])
        stock = {
            str(sku): {str(loc): int(units) for loc, units in by_loc.items() if units}
            for sku, by_loc in state["stock"].items()
        }
        return cls({s: b for s, b in stock.items() if b}, reservations, tuple(state["log"]))

    def units(self, sku: str, location: str) -> int:
        return self.stock.get(sku, {}).get(location, 0)


def _reservation_rows(reservations: Reservations) -> list[dict[str, Any]]:
    return [
        {"order_id": o, "sku": s, "location": loc, "quantity": q}
        for (o, s, loc), q in sorted(reservations.items())
    ]


def inventory_checks(data: InventoryTask) -> StateCheckVerifier[InventorySnapshot]:
    """The checks of one task (pure: a snapshot and a transcript in, a verdict out)."""
    expected_reservations: Reservations = {
        (r.order_id, r.sku, r.location): r.quantity for r in data.expected_reservations
    }

    def expected_units(sku: str, location: str) -> int:
        return data.expected_stock.get(sku, {}).get(location, 0)

    def job_check(number: int, step: Step) -> StateCheck[InventorySnapshot]:
        reservation: tuple[str, str, str] | None = None
        if isinstance(step, MoveStep):
            cells = [(step.sku, step.source), (step.sku, step.target)]
        elif isinstance(step, TopUpStep):
            cells = [(step.sku, step.source), (step.sku, step.location)]
        else:
            cells = [(step.sku, step.location)]
            reservation = (step.order_id, step.sku, step.location)

        def check(snapshot: InventorySnapshot) -> CheckResult:
            expected = {f"{s} at {loc}": expected_units(s, loc) for s, loc in cells}
            got = {f"{s} at {loc}": snapshot.units(s, loc) for s, loc in cells}
            evidence: dict[str, Any] = {"expected_on_hand": expected, "got_on_hand": got}
            passed = expected == got
            if reservation is not None:
                want = expected_reservations.get(reservation, 0)
                have = snapshot.reservations.get(reservation, 0)
                evidence |= {"expected_reserved": want, "got_reserved": have}
                passed = passed and want == have
            return CheckResult(passed, evidence)

        return StateCheck(f"job_{number}", check, clause(data, step))

    def state_exact(snapshot: InventorySnapshot) -> CheckResult:
        skus = sorted(set(data.expected_stock) | set(snapshot.stock))
        differences = [
            {"sku": sku, "location": loc, "expected": expected_units(sku, loc), "got": got}
            for sku in skus
            for loc in sorted(
                set(data.expected_stock.get(sku, {})) | set(snapshot.stock.get(sku, {}))
            )
            if (got := snapshot.units(sku, loc)) != expected_units(sku, loc)
        ]
        passed = not differences and snapshot.reservations == expected_reservations
        evidence: dict[str, Any] = {"stock_differences": differences}
        if snapshot.reservations != expected_reservations:
            evidence |= {
                "expected_reservations": _reservation_rows(expected_reservations),
                "got_reservations": _reservation_rows(snapshot.reservations),
            }
        evidence["operations"] = list(snapshot.log)
        return CheckResult(passed, evidence)

    checks: list[StateCheck[InventorySnapshot] | TranscriptCheck] = [
        job_check(i, step) for i, step in enumerate(data.steps, start=1)
    ]
    checks.append(
        StateCheck(
            "state_exact", state_exact, "the final stock and reservations are exactly as expected"
        )
    )
    if data.question is not None:
        question = data.question

        def answer_correct(transcript: Transcript) -> CheckResult:
            reply = final_answer(transcript)
            got = last_integer(reply.text) if reply is not None else None
            passed = got == str(question.answer)
            return CheckResult(passed, {"expected": question.answer, "got": got})

        checks.append(
            TranscriptCheck(
                "answer_correct", answer_correct, "the final answer gives the units available"
            )
        )
    return StateCheckVerifier(InventorySnapshot, checks)


class InventoryVerifier:
    """Reads the state with ``read_state`` (the ``inventory_state`` admin tool, through
    the episode's connection), then scores it with :func:`inventory_checks`. A state that
    cannot be read raises: the episode fails (kind ``verifier``), it is never a 0."""

    __slots__ = ("_checks", "_read_state")

    def __init__(
        self, data: InventoryTask, read_state: Callable[[], Awaitable[dict[str, Any]]]
    ) -> None:
        self._checks = inventory_checks(data)
        self._read_state = read_state

    async def verify(self, episode: CompletedEpisode) -> Score:
        snapshot = InventorySnapshot.from_state(await self._read_state())
        return self._checks.score(dataclasses.replace(episode, state=snapshot))
