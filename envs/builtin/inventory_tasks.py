"""The inventory-mcp tasks: a seeded warehouse, the jobs the user asks for, and the state
they must leave behind (the answer key).

A warehouse has locations (ids like ``LOC-417``, named "Dock A", "Back room" …) and items
from product families whose names overlap ("LED work lantern", "solar LED work lantern"),
so looking an item up by name returns a decoy too. Jobs: move N units; top a location up
to N units on hand (the amount to move depends on the current stock); reserve N units for
an order. The expected final stock and reservations are computed here with plain
arithmetic, independently of the server's code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import Field

from gymbus.envs.base import Difficulty
from gymbus.envs.builtin.inventory_store import ItemSeed, LocationSeed, ReservationSeed
from gymbus.runtime.messages import Frozen

__all__ = [
    "DIFFICULTIES",
    "InventoryTask",
    "MoveStep",
    "ReserveStep",
    "Step",
    "StockQuestion",
    "TopUpStep",
    "clause",
    "generate",
    "render_request",
]

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)


class MoveStep(Frozen):
    kind: Literal["move"] = "move"
    sku: str
    item: str
    quantity: int
    source: str  # location ids
    target: str


class TopUpStep(Frozen):
    """Bring ``location`` to ``units`` on hand with units from ``source``."""

    kind: Literal["top_up"] = "top_up"
    sku: str
    item: str
    location: str
    units: int
    source: str
    moved: int  # what it takes, given the stock at that point (answer key)


class ReserveStep(Frozen):
    kind: Literal["reserve"] = "reserve"
    sku: str
    item: str
    location: str
    quantity: int
    order_id: str


Step = Annotated[MoveStep | TopUpStep | ReserveStep, Field(discriminator="kind")]


class StockQuestion(Frozen):
    """How many units of ``sku`` are available at ``location`` once the jobs are done."""

    sku: str
    item: str
    location: str
    answer: int


class InventoryTask(Frozen):
    """``Task.data`` of an inventory-mcp task: the initial inventory, the request, and the
    expected final state (stock on hand per sku and location, non-zero; reservations)."""

    difficulty: Difficulty
    locations: tuple[LocationSeed, ...]
    items: tuple[ItemSeed, ...]
    reservations: tuple[ReservationSeed, ...]
    steps: tuple[Step, ...]
    question: StockQuestion | None
    request: str
    expected_stock: dict[str, dict[str, int]]
    expected_reservations: tuple[ReservationSeed, ...]

    def location_name(self, location_id: str) -> str:
        return next(loc.name for loc in self.locations if loc.id == location_id)


# no digits in names: a location or item name must never look like the answer
_LOCATION_NAMES = (
    "Dock A", "Dock B", "Back room", "Overflow", "Shop floor", "Mezzanine", "Returns cage",
    "Cold store", "Yard", "Staging lane",
)  # fmt: skip
_FAMILIES = (
    ("cordless drill", "cordless drill battery", "cordless drill charger"),
    ("LED work lantern", "solar LED work lantern", "LED head torch"),
    ("nitrile gloves medium", "nitrile gloves large", "nitrile gloves small"),
    ("pallet wrap clear", "pallet wrap black"),
    ("safety helmet white", "safety helmet yellow"),
    ("hex bolt box", "stainless hex bolt box", "hex nut box"),
    ("extension cord short", "extension cord long"),
    ("packing tape brown", "packing tape clear", "packing tape dispenser"),
    ("hand truck", "folding hand truck"),
    ("high-vis vest orange", "high-vis vest yellow"),
    ("storage bin large", "storage bin small", "storage bin lid"),
)


@dataclass(frozen=True, slots=True)
class _Size:
    locations: int
    families: int
    reservations: int  # existing reservations of other orders (decoys: on hand ≠ available)


_SIZES: dict[Difficulty, _Size] = {
    "easy": _Size(locations=3, families=2, reservations=0),
    "medium": _Size(locations=4, families=3, reservations=1),
    "hard": _Size(locations=5, families=4, reservations=2),
}


class _Stock:
    """On hand and reserved units while the task is generated (plain arithmetic)."""

    def __init__(self) -> None:
        self.on_hand: dict[tuple[str, str], int] = {}
        self.reserved: dict[tuple[str, str, str], int] = {}

    def available(self, sku: str, location: str) -> int:
        held = sum(q for (_, s, loc), q in self.reserved.items() if (s, loc) == (sku, location))
        return self.on_hand.get((sku, location), 0) - held

    def move(self, sku: str, source: str, target: str, units: int) -> None:
        assert 0 < units <= self.available(sku, source)
        self.on_hand[(sku, source)] -= units
        self.on_hand[(sku, target)] = self.on_hand.get((sku, target), 0) + units

    def reserve(self, order_id: str, sku: str, location: str, units: int) -> None:
        assert 0 < units <= self.available(sku, location)
        key = (order_id, sku, location)
        self.reserved[key] = self.reserved.get(key, 0) + units

    def stock(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for (sku, loc), units in sorted(self.on_hand.items()):
            if units:
                result.setdefault(sku, {})[loc] = units
        return result

    def reservations(self) -> tuple[ReservationSeed, ...]:
        return tuple(
            ReservationSeed(order_id=o, sku=s, location=loc, quantity=q)
            for (o, s, loc), q in sorted(self.reserved.items())
        )


def generate(seed: int, difficulty: Difficulty) -> InventoryTask:
    """The task for ``seed`` at ``difficulty``; draws only from ``random.Random(seed)``."""
    rng = random.Random(seed)
    size = _SIZES[difficulty]
    numbers = rng.sample(range(100, 1000), size.locations)
    locations = tuple(
        LocationSeed(id=f"LOC-{n}", name=name)
        for n, name in zip(numbers, rng.sample(_LOCATION_NAMES, size.locations), strict=True)
    )
    loc_ids = [loc.id for loc in locations]
    families = rng.sample(_FAMILIES, size.families)
    names = [name for family in families for name in rng.sample(family, 2)]  # target + decoy
    skus = [f"SKU-{n}" for n in rng.sample(range(1000, 10000), len(names))]
    stock = _Stock()
    for sku in skus:
        for loc in rng.sample(loc_ids, rng.randint(2, min(3, len(loc_ids)))):
            stock.on_hand[(sku, loc)] = rng.randint(12, 80)
    orders = iter(f"SO-{n}" for n in rng.sample(range(10000, 100000), 4))
    targets = [skus[2 * i] for i in range(len(families))]  # each family's first pick
    for sku, loc in rng.sample(
        [(s, loc) for (s, loc) in stock.on_hand if s in targets], size.reservations
    ):
        stock.reserve(next(orders), sku, loc, rng.randint(2, stock.on_hand[(sku, loc)] // 3))
    reservations = stock.reservations()
    items = tuple(
        ItemSeed(
            sku=sku,
            name=name,
            stock={loc: units for (s, loc), units in stock.on_hand.items() if s == sku},
        )
        for sku, name in zip(skus, names, strict=True)
    )
    item = dict(zip(skus, names, strict=True))
    steps: list[MoveStep | TopUpStep | ReserveStep] = []
    question: StockQuestion | None = None

    def move(sku: str) -> MoveStep:
        source = rng.choice([loc for loc in loc_ids if stock.available(sku, loc) >= 4])
        target = rng.choice([loc for loc in loc_ids if loc != source])
        units = rng.randint(2, stock.available(sku, source) - 1)
        stock.move(sku, source, target, units)
        return MoveStep(sku=sku, item=item[sku], quantity=units, source=source, target=target)

    def top_up_and_reserve(sku: str) -> tuple[TopUpStep, ReserveStep]:
        source = max(loc_ids, key=lambda loc: (stock.available(sku, loc), loc))
        # a location already holding some: the amount to move is not the number asked for
        location = rng.choice(
            [loc for loc in loc_ids if loc != source and stock.on_hand.get((sku, loc), 0)]
        )
        moved = rng.randint(3, stock.available(sku, source) - 1)
        units = stock.on_hand.get((sku, location), 0) + moved
        stock.move(sku, source, location, moved)
        top_up = TopUpStep(
            sku=sku, item=item[sku], location=location, units=units, source=source, moved=moved
        )
        order = next(orders)
        quantity = rng.randint(1, stock.available(sku, location) - 1)
        stock.reserve(order, sku, location, quantity)
        reserve = ReserveStep(
            sku=sku, item=item[sku], location=location, quantity=quantity, order_id=order
        )
        return top_up, reserve

    if difficulty == "easy":
        steps.append(move(targets[0]))
    elif difficulty == "medium":
        steps.extend(top_up_and_reserve(targets[0]))
    else:
        top_up, reserve = top_up_and_reserve(targets[0])
        moving = move(targets[1])  # another sku: the order of the jobs does not matter
        steps.extend(rng.choice([(moving, top_up, reserve), (top_up, moving, reserve)]))
        # ask where reservations make "available" differ from "on hand"
        sku, location = rng.choice(
            [
                (s, loc)
                for s, loc in ((moving.sku, moving.source), (reserve.sku, reserve.location))
                if stock.available(s, loc) != stock.on_hand.get((s, loc), 0)
            ]
        )
        question = StockQuestion(
            sku=sku, item=item[sku], location=location, answer=stock.available(sku, location)
        )
    task = InventoryTask(
        difficulty=difficulty,
        locations=locations,
        steps=tuple(steps),
        question=question,
        request="",
        expected_stock=stock.stock(),
        expected_reservations=stock.reservations(),
        items=items,
        reservations=reservations,
    )
    return task.model_copy(update={"request": render_request(task)})


def clause(task: InventoryTask, step: MoveStep | TopUpStep | ReserveStep) -> str:
    """The words asking for ``step`` (the reference solver parses these back)."""
    name = task.location_name
    if isinstance(step, MoveStep):
        return (
            f'Move {step.quantity} units of "{step.item}" from {name(step.source)} '
            f"to {name(step.target)}."
        )
    if isinstance(step, TopUpStep):
        return (
            f'Top up {name(step.location)} to {step.units} units of "{step.item}" on hand, '
            f"taking the extra units from {name(step.source)}."
        )
    return (
        f'Reserve {step.quantity} units of "{step.item}" at {name(step.location)} '
        f"for order {step.order_id}."
    )


def render_request(task: InventoryTask) -> str:
    """The user's message: the numbered jobs, then the question (hard)."""
    jobs = "\n".join(f"{i}. {clause(task, s)}" for i, s in enumerate(task.steps, start=1))
    text = f"Hi! Warehouse jobs for today, in this order:\n{jobs}"
    if task.question is not None:
        q = task.question
        text += (
            f'\nWhen you are done, tell me how many units of "{q.item}" are available (on '
            f"hand minus reserved) at {task.location_name(q.location)}. End your reply with "
            "that number."
        )
    return text
