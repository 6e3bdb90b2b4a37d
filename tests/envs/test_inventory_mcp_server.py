"""The inventory MCP server on its own: the store's rules (pure), then the real server over
stdio and streamable HTTP with the `mcp` package's own client."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, TextContent

from gymbus.envs.builtin.inventory_store import (
    ADMIN_TOOLS,
    MAX_LOG,
    MODEL_TOOLS,
    Inventory,
    InventoryError,
    ItemSeed,
    LocationSeed,
    ReservationSeed,
    Workspace,
)
from tests.envs.inventory_server import SERVER_MODULE, inventory_http_server

LOCATIONS = [LocationSeed(id="LOC-1", name="Dock A"), LocationSeed(id="LOC-2", name="Yard")]
ITEMS = [
    ItemSeed(sku="SKU-1", name="LED work lantern", stock={"LOC-1": 10, "LOC-2": 4}),
    ItemSeed(sku="SKU-2", name="solar LED work lantern", stock={"LOC-2": 7}),
]
SEED: dict[str, Any] = {
    "locations": [loc.model_dump() for loc in LOCATIONS],
    "items": [item.model_dump() for item in ITEMS],
    "reservations": [{"order_id": "SO-1", "sku": "SKU-1", "location": "LOC-1", "quantity": 3}],
}


def workspace() -> Workspace:
    reservation = ReservationSeed(order_id="SO-1", sku="SKU-1", location="LOC-1", quantity=3)
    return Inventory().create("w", LOCATIONS, ITEMS, [reservation])


# --- the store (pure) -------------------------------------------------------------------------


def test_lookups() -> None:
    ws = workspace()
    assert [m["sku"] for m in ws.find_item("LED lantern")] == ["SKU-1", "SKU-2"]
    assert ws.find_item("solar") == [
        {"sku": "SKU-2", "name": "solar LED work lantern", "on_hand_total": 7}
    ]
    assert ws.get_stock("SKU-1")["locations"] == [
        {"location": "LOC-1", "on_hand": 10, "reserved": 3, "available": 7},
        {"location": "LOC-2", "on_hand": 4, "reserved": 0, "available": 4},
    ]


def test_only_available_units_move_and_refusals_change_nothing() -> None:
    ws = workspace()
    with pytest.raises(
        InventoryError, match=r"8 requested, 7 available \(10 on hand, 3 reserved\)"
    ):
        ws.move_stock("SKU-1", "LOC-1", "LOC-2", 8)
    ws.move_stock("SKU-1", "LOC-1", "LOC-2", 7)
    with pytest.raises(InventoryError, match="not enough"):
        ws.reserve_stock("SKU-1", "LOC-1", 1, "SO-2")
    with pytest.raises(InventoryError, match="fewer than the 3 units reserved"):
        ws.adjust_stock("SKU-1", "LOC-1", -1, "damaged")
    state = ws.state()
    assert state["stock"] == {"SKU-1": {"LOC-1": 3, "LOC-2": 11}, "SKU-2": {"LOC-2": 7}}
    assert [(e["op"], e["ok"]) for e in state["log"]] == [
        ("move_stock", False),
        ("move_stock", True),
        ("reserve_stock", False),
        ("adjust_stock", False),
    ]
    assert "7 available" in state["log"][0]["error"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ws: ws.get_stock("SKU-9"), "unknown sku 'SKU-9'; find_item"),
        (lambda ws: ws.move_stock("SKU-1", "LOC-1", "DOCK", 1), "unknown location 'DOCK'"),
        (lambda ws: ws.move_stock("SKU-1", "LOC-1", "LOC-1", 1), "the same location"),
        (lambda ws: ws.adjust_stock("SKU-1", "LOC-2", 0, "count"), "delta must not be 0"),
    ],
)
def test_mistakes_say_what_is_wrong(call: Any, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        call(workspace())


def test_workspaces_are_bounded_and_never_reused() -> None:
    inventory = Inventory(max_workspaces=2)
    inventory.create("a", LOCATIONS, ITEMS)
    with pytest.raises(InventoryError, match="'a' already exists"):
        inventory.create("a", LOCATIONS, ITEMS)
    inventory.create("b", LOCATIONS, ITEMS)
    with pytest.raises(InventoryError, match="holds 2 workspaces, its limit; drop finished"):
        inventory.create("c", LOCATIONS, ITEMS)
    assert inventory.drop("a")
    assert not inventory.drop("a")
    inventory.create("c", LOCATIONS, ITEMS)
    assert inventory.stats() == {"workspaces": 2, "created": 3, "dropped": 1, "peak": 2}
    with pytest.raises(InventoryError, match="no workspace 'a'"):
        inventory.get("a")


def test_the_log_is_bounded() -> None:
    ws = workspace()
    for _ in range(MAX_LOG + 5):
        ws.adjust_stock("SKU-2", "LOC-2", 1, "found")
    assert len(ws.state()["log"]) == MAX_LOG
    assert ws.state()["log_dropped"] == 5


def test_a_bad_seed_is_refused() -> None:
    bad = ReservationSeed(order_id="SO-1", sku="SKU-1", location="LOC-2", quantity=5)
    with pytest.raises(InventoryError, match="not enough SKU-1 at LOC-2"):
        Inventory().create("w", LOCATIONS, ITEMS, [bad])
    with pytest.raises(InventoryError, match="unique"):
        Inventory().create("w", LOCATIONS, [*ITEMS, ITEMS[0]])


# --- the real server --------------------------------------------------------------------------


def text(result: CallToolResult) -> str:
    (content,) = result.content
    assert isinstance(content, TextContent)
    return content.text


def value(result: CallToolResult) -> Any:
    assert not result.is_error, text(result)
    return orjson.loads(text(result))


@asynccontextmanager
async def stdio_client(*arguments: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-m", SERVER_MODULE, *arguments])
    async with Client(params) as client:
        yield client


@pytest.mark.anyio
async def test_stdio_server_lists_its_tools_with_schemas() -> None:
    async with stdio_client() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(MODEL_TOOLS) | ADMIN_TOOLS
    move = tools["move_stock"]
    assert move.description
    assert "available units" in move.description
    schema = move.input_schema
    assert schema["required"] == ["workspace", "sku", "from_location", "to_location", "quantity"]
    assert schema["properties"]["quantity"]["type"] == "integer"
    assert schema["properties"]["quantity"]["minimum"] == 1
    assert schema["properties"]["sku"]["description"]
    assert tools["reserve_stock"].input_schema["properties"]["order_id"]["pattern"]
    for name in MODEL_TOOLS:
        assert tools[name].description, name
        assert "workspace" in tools[name].input_schema["required"], name
    assert tools["list_locations"].annotations is not None
    assert tools["list_locations"].annotations.read_only_hint


@pytest.mark.anyio
async def test_stdio_server_reports_model_errors_as_tool_errors() -> None:
    async with stdio_client() as client:
        assert value(await client.call_tool("create_workspace", {"workspace": "w", **SEED}))
        move = {"workspace": "w", "sku": "SKU-1", "from_location": "LOC-1", "to_location": "LOC-2"}
        refused = [
            await client.call_tool("move_stock", {**move, "quantity": 8}),
            await client.call_tool("move_stock", {**move, "sku": "SKU-9", "quantity": 1}),
            await client.call_tool("move_stock", {**move, "quantity": "many"}),
            await client.call_tool("move_stock", {**move, "quantity": 0}),
            await client.call_tool("get_stock", {"workspace": "nope", "sku": "SKU-1"}),
            await client.call_tool("no_such_tool", {}),
        ]
        assert all(r.is_error for r in refused)
        messages = [text(r) for r in refused]
        assert "not enough SKU-1 at LOC-1: 8 requested, 7 available" in messages[0]
        assert "unknown sku 'SKU-9'" in messages[1]
        assert "quantity" in messages[2]
        assert "integer" in messages[2]
        assert "greater than or equal to 1" in messages[3]
        assert "no workspace 'nope'" in messages[4]
        # the server is unharmed, and refusals changed nothing
        moved = value(await client.call_tool("move_stock", {**move, "quantity": 7}))
        assert moved["from"] == {"location": "LOC-1", "on_hand": 3, "reserved": 3, "available": 0}
        state = value(await client.call_tool("inventory_state", {"workspace": "w"}))
    assert state["stock"]["SKU-1"] == {"LOC-1": 3, "LOC-2": 11}
    assert [e["ok"] for e in state["log"]] == [False, False, True]  # the store's refusals


@pytest.mark.anyio
async def test_stdio_server_caps_its_workspaces() -> None:
    async with stdio_client("--max-workspaces", "1") as client:
        value(await client.call_tool("create_workspace", {"workspace": "a", **SEED}))
        again = await client.call_tool("create_workspace", {"workspace": "a", **SEED})
        full = await client.call_tool("create_workspace", {"workspace": "b", **SEED})
        assert again.is_error
        assert "'a' already exists" in text(again)
        assert full.is_error
        assert "holds 1 workspaces, its limit" in text(full)
        value(await client.call_tool("drop_workspace", {"workspace": "a"}))
        value(await client.call_tool("create_workspace", {"workspace": "b", **SEED}))


@pytest.mark.anyio
async def test_http_server_keeps_workspaces_apart(tmp_path: Path) -> None:
    with inventory_http_server(tmp_path / "server.log") as server:
        assert server.url.startswith("http://127.0.0.1:")
        async with Client(server.url) as first, Client(server.url) as second:
            value(await first.call_tool("create_workspace", {"workspace": "a", **SEED}))
            value(await second.call_tool("create_workspace", {"workspace": "b", **SEED}))
            move = {"sku": "SKU-2", "from_location": "LOC-2", "to_location": "LOC-1"}
            value(await first.call_tool("move_stock", {"workspace": "a", **move, "quantity": 5}))
            a = value(await second.call_tool("get_stock", {"workspace": "a", "sku": "SKU-2"}))
            b = value(await second.call_tool("get_stock", {"workspace": "b", "sku": "SKU-2"}))
            assert [lv["on_hand"] for lv in a["locations"]] == [5, 2]
            assert [lv["on_hand"] for lv in b["locations"]] == [7]
            for name in ("a", "b"):
                assert value(await first.call_tool("drop_workspace", {"workspace": name}))
            stats = value(await first.call_tool("server_stats", {}))
        assert stats == {"workspaces": 0, "created": 2, "dropped": 2, "peak": 2}
        assert server.process.poll() is None
