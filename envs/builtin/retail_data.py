"""The retail-orders world: its records and the seeded generator that builds one per task.

A world has orders (→ product sku and shipping warehouse), shipments (hard only: a rerouted
order ships from the warehouse on its shipment), warehouses (→ the stock-system location
code) and a stock table keyed by location code and sku. Every stock quantity in a world is
distinct, so any wrong hop along the chain yields a wrong number.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, get_args

from gymbus.envs.base import Difficulty
from gymbus.envs.verifiers import ExpectedCall
from gymbus.runtime.messages import Frozen

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)

OrderStatus = Literal["processing", "ready-to-ship", "rerouted"]
_OPEN_STATUSES: tuple[OrderStatus, ...] = ("processing", "ready-to-ship")


class Order(Frozen):
    order_id: str
    customer: str
    sku: str
    product: str
    quantity_ordered: int
    status: OrderStatus
    warehouse_id: str | None = None  # None once rerouted: see the shipment
    original_warehouse_id: str | None = None
    rerouted_to: str | None = None  # a shipment id


class Shipment(Frozen):
    shipment_id: str
    order_id: str
    carrier: str
    warehouse_id: str


class Warehouse(Frozen):
    warehouse_id: str
    city: str
    suppliers: tuple[str, ...]
    stock_location_code: str
    returns_location_code: str | None = None  # a distractor (medium, hard)


class RetailWorld(Frozen):
    orders: dict[str, Order]
    shipments: dict[str, Shipment]
    warehouses: dict[str, Warehouse]
    products: dict[str, str]  # sku → product name
    stock: dict[str, dict[str, int]]  # location code → sku → units on hand


class RetailTask(Frozen):
    """``Task.data`` of a retail-orders task: the world, the question, the answer key."""

    difficulty: Difficulty
    order_id: str
    world: RetailWorld
    answer: int
    required_calls: tuple[ExpectedCall, ...]


@dataclass(frozen=True, slots=True)
class _Size:
    orders: int
    warehouses: int
    products: int
    rerouted: int  # orders rerouted through a shipment (the asked one among them if > 0)
    returns_locations: bool


_SIZES: dict[Difficulty, _Size] = {
    "easy": _Size(orders=4, warehouses=3, products=4, rerouted=0, returns_locations=False),
    "medium": _Size(orders=8, warehouses=5, products=7, rerouted=0, returns_locations=True),
    "hard": _Size(orders=8, warehouses=5, products=7, rerouted=3, returns_locations=True),
}

_CITIES = (
    "Aarhus", "Bilbao", "Calgary", "Dortmund", "Eindhoven", "Fresno", "Graz", "Halifax",
    "Izmir", "Jaipur", "Krakow", "Lyon", "Memphis", "Nagoya", "Oulu", "Porto", "Quito",
    "Reno", "Sapporo", "Tampere", "Utrecht", "Valencia", "Wichita", "Zagreb",
)  # fmt: skip
_SUPPLIERS = (
    "Acme Textiles", "Borealis Outdoor", "Crescent Goods", "Delta Footwear", "Evergreen Supply",
    "Fjord Gear", "Granite Home", "Harbor Electronics", "Indigo Apparel", "Juniper Kitchen",
)  # fmt: skip
_PRODUCTS = (
    "trail running shoes", "insulated water bottle", "wool beanie", "camping lantern",
    "espresso grinder", "noise-cancelling headphones", "yoga mat", "cast-iron skillet",
    "rain jacket", "bike helmet", "desk lamp", "hiking backpack", "ceramic teapot",
    "wireless keyboard", "down sleeping bag", "chef's knife",
)  # fmt: skip
_CUSTOMERS = (
    "Amara Okafor", "Bruno Ferreira", "Chen Wei", "Dagny Lund", "Elif Yilmaz", "Farid Haddad",
    "Greta Novak", "Hiro Tanaka", "Ines Duarte", "Jonas Berg", "Kavya Iyer", "Liam Walsh",
    "Mei Lin", "Nadia Petrova", "Oscar Ruiz", "Priya Nair",
)  # fmt: skip
_CARRIERS = ("DHL", "UPS", "FedEx", "PostNord", "GLS", "DPD")
_SKU_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
_LOCATION_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def _sku(n: int) -> str:
    chars = []
    for _ in range(4):
        n, digit = divmod(n, len(_SKU_ALPHABET))
        chars.append(_SKU_ALPHABET[digit])
    return "SKU-" + "".join(chars)


def _location(n: int) -> str:
    letter, number = divmod(n, 100)
    return f"LOC-{_LOCATION_LETTERS[letter]}{number:02d}"


def generate(seed: int, difficulty: Difficulty) -> RetailTask:
    """The task for ``seed`` at ``difficulty``; draws only from ``random.Random(seed)``."""
    rng = random.Random(seed)
    size = _SIZES[difficulty]

    skus = [_sku(n) for n in rng.sample(range(len(_SKU_ALPHABET) ** 4), size.products)]
    products = dict(zip(skus, rng.sample(_PRODUCTS, size.products), strict=True))

    n_codes = size.warehouses * (2 if size.returns_locations else 1)
    codes = [_location(n) for n in rng.sample(range(len(_LOCATION_LETTERS) * 100), n_codes)]
    warehouses: dict[str, Warehouse] = {}
    for i, (number, city) in enumerate(
        zip(
            rng.sample(range(100, 1000), size.warehouses),
            rng.sample(_CITIES, size.warehouses),
            strict=True,
        )
    ):
        warehouse = Warehouse(
            warehouse_id=f"WH-{number}",
            city=city,
            suppliers=tuple(rng.sample(_SUPPLIERS, rng.randint(2, 3))),
            stock_location_code=codes[i],
            returns_location_code=codes[size.warehouses + i] if size.returns_locations else None,
        )
        warehouses[warehouse.warehouse_id] = warehouse
    warehouse_ids = list(warehouses)

    orders: dict[str, Order] = {}
    for number in rng.sample(range(10000, 100000), size.orders):
        sku = rng.choice(skus)
        order = Order(
            order_id=f"ORD-{number}",
            customer=rng.choice(_CUSTOMERS),
            sku=sku,
            product=products[sku],
            quantity_ordered=rng.randint(1, 5),
            status=rng.choice(_OPEN_STATUSES),
            warehouse_id=rng.choice(warehouse_ids),
        )
        orders[order.order_id] = order
    order_ids = list(orders)
    asked = rng.choice(order_ids)

    shipments: dict[str, Shipment] = {}
    if size.rerouted:
        others = [o for o in order_ids if o != asked]
        rerouted = [asked, *rng.sample(others, size.rerouted - 1)]
        numbers = rng.sample(range(100000, 1000000), size.rerouted)
        for order_id, number in zip(rerouted, numbers, strict=True):
            order = orders[order_id]
            original = order.warehouse_id
            assert original is not None
            shipment = Shipment(
                shipment_id=f"SHP-{number}",
                order_id=order_id,
                carrier=rng.choice(_CARRIERS),
                warehouse_id=rng.choice([w for w in warehouse_ids if w != original]),
            )
            shipments[shipment.shipment_id] = shipment
            orders[order_id] = order.model_copy(
                update={
                    "status": "rerouted",
                    "warehouse_id": None,
                    "original_warehouse_id": original,
                    "rerouted_to": shipment.shipment_id,
                }
            )

    quantities = iter(rng.sample(range(10, 1000), len(codes) * len(skus)))
    stock = {code: {sku: next(quantities) for sku in skus} for code in codes}

    world = RetailWorld(
        orders=orders,
        shipments=shipments,
        warehouses=warehouses,
        products=products,
        stock=stock,
    )
    return RetailTask(
        difficulty=difficulty,
        order_id=asked,
        world=world,
        answer=_answer(world, asked),
        required_calls=_required_calls(world, asked),
    )


def ships_from(world: RetailWorld, order: Order) -> Warehouse:
    """The warehouse that will ship ``order`` (through its shipment if it was rerouted)."""
    if order.rerouted_to is not None:
        return world.warehouses[world.shipments[order.rerouted_to].warehouse_id]
    assert order.warehouse_id is not None
    return world.warehouses[order.warehouse_id]


def _answer(world: RetailWorld, order_id: str) -> int:
    order = world.orders[order_id]
    return world.stock[ships_from(world, order).stock_location_code][order.sku]


def _required_calls(world: RetailWorld, order_id: str) -> tuple[ExpectedCall, ...]:
    order = world.orders[order_id]
    warehouse = ships_from(world, order)
    calls = [ExpectedCall(name="get_order", arguments={"order_id": order_id})]
    if order.rerouted_to is not None:
        calls.append(
            ExpectedCall(name="get_shipment", arguments={"shipment_id": order.rerouted_to})
        )
    calls.append(
        ExpectedCall(name="get_warehouse", arguments={"warehouse_id": warehouse.warehouse_id})
    )
    calls.append(
        ExpectedCall(
            name="get_stock",
            arguments={"location_code": warehouse.stock_location_code, "sku": order.sku},
        )
    )
    return tuple(calls)
