"""A small stateful warehouse-inventory MCP server (the ``inventory-mcp`` environment's).

Run it over stdio (the default) or streamable HTTP on 127.0.0.1::

    python -m gymbus.envs.builtin.inventory_mcp_server
    python -m gymbus.envs.builtin.inventory_mcp_server --http --port 0   # prints its URL

Every tool takes a ``workspace`` argument: one server holds many independent warehouses
(one per episode, created with the admin tool ``create_workspace``), and the environment
binds the argument so the model never sees it. The model's tools look stock up and change
it; a request the inventory refuses (unknown sku, not enough stock) is a tool error
(``isError``) saying why. The admin tools (``ADMIN_TOOLS`` of :mod:`.inventory_store`) are
for the environment and its verifier only: seed a workspace, read its whole state, drop it,
count workspaces.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import anyio
import orjson
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from gymbus.envs.builtin.inventory_store import (
    MAX_UNITS,
    MAX_WORKSPACES,
    ORDER_ID,
    Inventory,
    InventoryError,
    ItemSeed,
    LocationSeed,
    ReservationSeed,
    Workspace,
)

__all__ = ["build_server", "main", "serve_http"]


_INSTRUCTIONS = (
    "A warehouse inventory system. Look items up by name with find_item to get their sku, "
    "locations with list_locations, stock levels with get_stock; then move_stock, "
    "reserve_stock or adjust_stock. Only available units (on hand minus reserved) can be "
    "moved or reserved."
)

WorkspaceArg = Annotated[
    str, Field(min_length=1, max_length=128, description="The workspace (warehouse) to act on.")
]
SkuArg = Annotated[
    str, Field(min_length=1, max_length=32, description="The item's sku, as find_item gives it.")
]
LocationArg = Annotated[
    str, Field(min_length=1, max_length=32, description="A location id from list_locations.")
]
QuantityArg = Annotated[int, Field(ge=1, le=MAX_UNITS, description="Number of units, at least 1.")]

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def build_server(inventory: Inventory | None = None) -> MCPServer:
    """The MCP server over ``inventory`` (a fresh, empty one by default)."""
    store = inventory if inventory is not None else Inventory()
    server: MCPServer = MCPServer("inventory", instructions=_INSTRUCTIONS, log_level="WARNING")

    def act(workspace: str, operation: Callable[[Workspace], Any]) -> str:
        """Run ``operation`` on the workspace; a refusal becomes a tool error (isError)."""
        try:
            return _json(operation(store.get(workspace)))
        except InventoryError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(annotations=_READ, structured_output=False)
    async def list_locations(workspace: WorkspaceArg) -> str:
        """List the warehouse's locations: their ids (used by the other tools) and names."""
        return act(workspace, Workspace.list_locations)

    @server.tool(annotations=_READ, structured_output=False)
    async def find_item(
        workspace: WorkspaceArg,
        query: Annotated[
            str,
            Field(
                min_length=1,
                max_length=120,
                description="Words of the item's name (or its sku); every word must match.",
            ),
        ],
    ) -> str:
        """Find items by name: a list of matches with their sku, full name and total units
        on hand. Use it to get the sku of an item named in a request."""
        return act(workspace, lambda ws: ws.find_item(query))

    @server.tool(annotations=_READ, structured_output=False)
    async def get_stock(workspace: WorkspaceArg, sku: SkuArg) -> str:
        """An item's stock at every location holding it: units on hand, reserved for
        orders, and available (on hand minus reserved)."""
        return act(workspace, lambda ws: ws.get_stock(sku))

    @server.tool(annotations=_WRITE, structured_output=False)
    async def move_stock(
        workspace: WorkspaceArg,
        sku: SkuArg,
        from_location: LocationArg,
        to_location: LocationArg,
        quantity: QuantityArg,
    ) -> str:
        """Move units of an item from one location to another. Only available units can be
        moved. Returns both locations' new stock levels."""
        return act(workspace, lambda ws: ws.move_stock(sku, from_location, to_location, quantity))

    @server.tool(annotations=_WRITE, structured_output=False)
    async def reserve_stock(
        workspace: WorkspaceArg,
        sku: SkuArg,
        location: LocationArg,
        quantity: QuantityArg,
        order_id: Annotated[
            str, Field(pattern=ORDER_ID, description="The order to reserve for, like 'SO-48213'.")
        ],
    ) -> str:
        """Reserve available units of an item at a location for a customer order; reserved
        units stay on hand but can no longer be moved or reserved again."""
        return act(workspace, lambda ws: ws.reserve_stock(sku, location, quantity, order_id))

    @server.tool(annotations=_WRITE, structured_output=False)
    async def adjust_stock(
        workspace: WorkspaceArg,
        sku: SkuArg,
        location: LocationArg,
        delta: Annotated[
            int,
            Field(
                ge=-MAX_UNITS,
                le=MAX_UNITS,
                description="Units to add (positive) or write off (negative); not 0.",
            ),
        ],
        reason: Annotated[
            str,
            Field(
                min_length=1,
                max_length=200,
                description="Why: a cycle count, damage, a found pallet …",
            ),
        ],
    ) -> str:
        """Correct the units on hand of an item at a location after a count or damage (not
        for moving stock between locations: use move_stock)."""
        return act(workspace, lambda ws: ws.adjust_stock(sku, location, delta, reason))

    # --- admin tools: the environment's and the verifier's, never the model's --------------

    @server.tool(structured_output=False)
    async def create_workspace(
        workspace: WorkspaceArg,
        locations: list[LocationSeed],
        items: list[ItemSeed],
        reservations: list[ReservationSeed] | None = None,
    ) -> str:
        """Admin: create a workspace with its initial inventory (an error if it exists or
        the server is full)."""
        try:
            store.create(workspace, locations, items, reservations or ())
        except InventoryError as exc:
            raise ToolError(str(exc)) from None
        return _json({"created": workspace, **store.stats()})

    @server.tool(annotations=_READ, structured_output=False)
    async def inventory_state(workspace: WorkspaceArg) -> str:
        """Admin: the workspace's whole state as JSON (stock, reservations, operation log)."""
        return act(workspace, Workspace.state)

    @server.tool(structured_output=False)
    async def drop_workspace(workspace: WorkspaceArg) -> str:
        """Admin: forget a workspace (no error if it does not exist)."""
        return _json({"dropped": store.drop(workspace), **store.stats()})

    @server.tool(annotations=_READ, structured_output=False)
    async def server_stats() -> str:
        """Admin: workspaces held now, created and dropped since the server started, and
        the most held at once."""
        return _json(store.stats())

    return server


async def serve_http(server: MCPServer, port: int = 0) -> None:
    """Serve ``server`` over streamable HTTP on 127.0.0.1:``port`` (0: a free port) until
    SIGINT/SIGTERM; print the endpoint URL on stdout once it accepts connections."""
    import uvicorn  # only the HTTP transport needs it

    class _AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()[1]
                print(f"inventory MCP server: http://127.0.0.1:{bound}/mcp", flush=True)

    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    await _AnnouncingServer(config).serve()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gymbus.envs.builtin.inventory_mcp_server",
        description="The inventory-mcp environment's warehouse-inventory MCP server.",
    )
    parser.add_argument(
        "--http", action="store_true", help="serve streamable HTTP on 127.0.0.1 (default: stdio)"
    )
    parser.add_argument("--port", type=int, default=0, help="with --http: the port (0: a free one)")
    parser.add_argument(
        "--max-workspaces",
        type=int,
        default=MAX_WORKSPACES,
        help=f"workspaces held at once (default {MAX_WORKSPACES})",
    )
    args = parser.parse_args(argv)
    server = build_server(Inventory(args.max_workspaces))
    if args.http:
        anyio.run(serve_http, server, args.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
