"""The warehouse inventory behind the ``inventory-mcp`` server: plain Python, no MCP.

An :class:`Inventory` holds many independent workspaces (one per episode), each with its
locations, items, stock on hand per location, reservations for orders and a log of the
operations tried. Every mistake a caller can make raises :class:`InventoryError` with a
message meant for the model; the server turns it into a tool error (``isError``).
Memory is bounded: at most :data:`MAX_WORKSPACES` workspaces, and limits per workspace.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ADMIN_TOOLS",
    "MAX_UNITS",
    "MAX_WORKSPACES",
    "MODEL_TOOLS",
    "Inventory",
    "InventoryError",
    "ItemSeed",
    "LocationSeed",
    "ReservationSeed",
    "Workspace",
]

MODEL_TOOLS = (
    "list_locations",
    "find_item",
    "get_stock",
    "move_stock",
    "reserve_stock",
    "adjust_stock",
)
"""The server's tools for the model (each takes the ``workspace`` the environment binds)."""
ADMIN_TOOLS = frozenset({"create_workspace", "inventory_state", "drop_workspace", "server_stats"})
"""The server's tools for the environment and its verifier, never shown to the model."""

MAX_WORKSPACES = 10_000
MAX_LOCATIONS = 100
MAX_ITEMS = 1_000
MAX_UNITS = 1_000_000  # of one item at one location
MAX_LOG = 1_000  # operations kept per workspace (the oldest are dropped, and counted)

LOCATION_ID = r"^[A-Z0-9][A-Z0-9-]{0,31}$"
SKU = r"^[A-Z0-9][A-Z0-9-]{0,31}$"
ORDER_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

Units = Annotated[int, Field(ge=0, le=MAX_UNITS)]
Quantity = Annotated[int, Field(ge=1, le=MAX_UNITS)]


class InventoryError(Exception):
    """A request the inventory refuses; the message says why, for the caller to fix."""


class _Seed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocationSeed(_Seed):
    id: Annotated[str, Field(pattern=LOCATION_ID, description="Location id, like 'DOCK-A'.")]
    name: Annotated[str, Field(min_length=1, max_length=80)]


class ItemSeed(_Seed):
    sku: Annotated[str, Field(pattern=SKU, description="Stock-keeping unit, like 'SKU-4821'.")]
    name: Annotated[str, Field(min_length=1, max_length=120)]
    stock: dict[str, Units] = Field(default_factory=dict, description="location id → on hand")


class ReservationSeed(_Seed):
    order_id: Annotated[str, Field(pattern=ORDER_ID)]
    sku: str
    location: str
    quantity: Quantity


@dataclass(slots=True)
class Workspace:
    """One episode's warehouse. Methods return JSON-able records; they raise
    :class:`InventoryError` for a request that cannot be carried out (nothing changes)."""

    locations: dict[str, str]  # id → name, in display order
    items: dict[str, str]  # sku → name
    on_hand: dict[tuple[str, str], int] = field(default_factory=dict)  # (sku, location)
    reserved: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (order, sku, loc)
    log: list[dict[str, Any]] = field(default_factory=list)
    log_dropped: int = 0

    # --- queries ---------------------------------------------------------------------------

    def list_locations(self) -> list[dict[str, Any]]:
        return [{"id": i, "name": n} for i, n in self.locations.items()]

    def find_item(self, query: str) -> list[dict[str, Any]]:
        words = query.lower().split()
        return [
            {"sku": sku, "name": name, "on_hand_total": self._total(sku)}
            for sku, name in self.items.items()
            if all(w in f"{sku} {name}".lower() for w in words)
        ]

    def get_stock(self, sku: str) -> dict[str, Any]:
        self._item(sku)
        levels = [self._level(sku, loc) for loc in self.locations if self._held(sku, loc)]
        return {"sku": sku, "name": self.items[sku], "locations": levels}

    # --- changes ---------------------------------------------------------------------------

    def move_stock(self, sku: str, source: str, target: str, quantity: int) -> dict[str, Any]:
        request = {"sku": sku, "from_location": source, "to_location": target, "quantity": quantity}
        with self._logged("move_stock", request):
            self._item(sku)
            self._location(source)
            self._location(target)
            if source == target:
                raise InventoryError("from_location and to_location are the same location")
            self._require_available(sku, source, quantity)
            if self.on_hand.get((sku, target), 0) + quantity > MAX_UNITS:
                raise InventoryError(f"{target} cannot hold more than {MAX_UNITS} units of {sku}")
            self._add(sku, source, -quantity)
            self._add(sku, target, quantity)
        return {"moved": quantity, "from": self._level(sku, source), "to": self._level(sku, target)}

    def reserve_stock(
        self, sku: str, location: str, quantity: int, order_id: str
    ) -> dict[str, Any]:
        request = {"sku": sku, "location": location, "quantity": quantity, "order_id": order_id}
        with self._logged("reserve_stock", request):
            self._item(sku)
            self._location(location)
            self._require_available(sku, location, quantity)
            key = (order_id, sku, location)
            self.reserved[key] = self.reserved.get(key, 0) + quantity
        return {"reserved": quantity, "order_id": order_id, "level": self._level(sku, location)}

    def adjust_stock(self, sku: str, location: str, delta: int, reason: str) -> dict[str, Any]:
        request = {"sku": sku, "location": location, "delta": delta, "reason": reason}
        with self._logged("adjust_stock", request):
            self._item(sku)
            self._location(location)
            if delta == 0:
                raise InventoryError("delta must not be 0")
            after = self.on_hand.get((sku, location), 0) + delta
            held = self._reserved_at(sku, location)
            if after < held:
                raise InventoryError(
                    f"cannot adjust {sku} at {location} by {delta}: {after} on hand would be "
                    f"fewer than the {held} units reserved there"
                )
            if after > MAX_UNITS:
                raise InventoryError(f"{location} cannot hold more than {MAX_UNITS} units")
            self._add(sku, location, delta)
        return {"adjusted": delta, "level": self._level(sku, location)}

    def state(self) -> dict[str, Any]:
        """Everything, as JSON-able data: the verifier compares it with what it expects."""
        stock: dict[str, dict[str, int]] = {}
        for (sku, loc), units in sorted(self.on_hand.items()):
            if units:
                stock.setdefault(sku, {})[loc] = units
        reservations = [
            {"order_id": order, "sku": sku, "location": loc, "quantity": units}
            for (order, sku, loc), units in sorted(self.reserved.items())
        ]
        return {
            "locations": self.list_locations(),
            "items": [{"sku": s, "name": n} for s, n in self.items.items()],
            "stock": stock,
            "reservations": reservations,
            "log": list(self.log),
            "log_dropped": self.log_dropped,
        }

    # --- internals -------------------------------------------------------------------------

    def _item(self, sku: str) -> None:
        if sku not in self.items:
            raise InventoryError(f"unknown sku {sku!r}; find_item looks skus up by name")

    def _location(self, location: str) -> None:
        if location not in self.locations:
            known = ", ".join(self.locations)
            raise InventoryError(f"unknown location {location!r}; location ids are: {known}")

    def _held(self, sku: str, location: str) -> bool:
        return bool(self.on_hand.get((sku, location)) or self._reserved_at(sku, location))

    def _total(self, sku: str) -> int:
        return sum(u for (s, _), u in self.on_hand.items() if s == sku)

    def _reserved_at(self, sku: str, location: str) -> int:
        return sum(u for (_, s, loc), u in self.reserved.items() if (s, loc) == (sku, location))

    def _level(self, sku: str, location: str) -> dict[str, Any]:
        on_hand = self.on_hand.get((sku, location), 0)
        reserved = self._reserved_at(sku, location)
        return {
            "location": location,
            "on_hand": on_hand,
            "reserved": reserved,
            "available": on_hand - reserved,
        }

    def _require_available(self, sku: str, location: str, quantity: int) -> None:
        level = self._level(sku, location)
        if level["available"] < quantity:
            raise InventoryError(
                f"not enough {sku} at {location}: {quantity} requested, {level['available']} "
                f"available ({level['on_hand']} on hand, {level['reserved']} reserved)"
            )

    def _add(self, sku: str, location: str, units: int) -> None:
        self.on_hand[(sku, location)] = self.on_hand.get((sku, location), 0) + units

    @contextmanager
    def _logged(self, op: str, request: dict[str, Any]) -> Iterator[None]:
        """Record the operation in the log: ``ok``, or refused with its ``error``."""
        entry = {"op": op, **request}
        try:
            yield
        except InventoryError as exc:
            self._append({**entry, "ok": False, "error": str(exc)})
            raise
        self._append({**entry, "ok": True})

    def _append(self, entry: dict[str, Any]) -> None:
        self.log.append(entry)
        if len(self.log) > MAX_LOG:
            del self.log[0]
            self.log_dropped += 1


class Inventory:
    """Workspaces by id. Creating an id that exists is an error (ids are never reused by
    the environment, so a clash is a bug worth seeing)."""

    def __init__(self, max_workspaces: int = MAX_WORKSPACES) -> None:
        self.max_workspaces = max_workspaces
        self._workspaces: dict[str, Workspace] = {}
        self.created = 0  # over the server's life: the acceptance test counts episodes
        self.dropped = 0
        self.peak = 0  # the most held at once

    def __len__(self) -> int:
        return len(self._workspaces)

    def create(
        self,
        workspace: str,
        locations: Iterable[LocationSeed],
        items: Iterable[ItemSeed],
        reservations: Iterable[ReservationSeed] = (),
    ) -> Workspace:
        if workspace in self._workspaces:
            raise InventoryError(f"workspace {workspace!r} already exists")
        if len(self._workspaces) >= self.max_workspaces:
            raise InventoryError(
                f"the server holds {len(self._workspaces)} workspaces, its limit; "
                "drop finished ones with drop_workspace"
            )
        ws = _build(list(locations), list(items), list(reservations))
        self._workspaces[workspace] = ws
        self.created += 1
        self.peak = max(self.peak, len(self._workspaces))
        return ws

    def get(self, workspace: str) -> Workspace:
        try:
            return self._workspaces[workspace]
        except KeyError:
            raise InventoryError(f"no workspace {workspace!r}") from None

    def drop(self, workspace: str) -> bool:
        """Forget ``workspace``; False if there was none."""
        if self._workspaces.pop(workspace, None) is None:
            return False
        self.dropped += 1
        return True

    def stats(self) -> dict[str, int]:
        return {
            "workspaces": len(self),
            "created": self.created,
            "dropped": self.dropped,
            "peak": self.peak,
        }


def _build(
    locations: list[LocationSeed], items: list[ItemSeed], reservations: list[ReservationSeed]
) -> Workspace:
    if not 0 < len(locations) <= MAX_LOCATIONS:
        raise InventoryError(f"a workspace needs 1 to {MAX_LOCATIONS} locations")
    if not 0 < len(items) <= MAX_ITEMS:
        raise InventoryError(f"a workspace needs 1 to {MAX_ITEMS} items")
    ws = Workspace(
        locations={loc.id: loc.name for loc in locations},
        items={item.sku: item.name for item in items},
    )
    if len(ws.locations) != len(locations) or len(ws.items) != len(items):
        raise InventoryError("location ids and skus must be unique")
    for item in items:
        for location, units in item.stock.items():
            ws._location(location)
            if units:
                ws.on_hand[(item.sku, location)] = units
    for r in reservations:
        ws._item(r.sku)
        ws._location(r.location)
        ws._require_available(r.sku, r.location, r.quantity)
        key = (r.order_id, r.sku, r.location)
        ws.reserved[key] = ws.reserved.get(key, 0) + r.quantity
    return ws
