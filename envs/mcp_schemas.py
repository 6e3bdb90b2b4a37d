"""The tools of an MCP server as the model sees them: the listing's usable tools (a
valid name, a valid input schema) as :class:`ToolSpec` s, and a spec with bound arguments
hidden from the model."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import structlog
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import Draft202012Validator, validator_for

from gymbus.runtime.tools import ToolSpec

if TYPE_CHECKING:  # mcp is imported when a connection opens (it takes ~0.4 s)
    from mcp import Client
    from mcp_types import Tool as ListedTool

UsableTool = tuple[ToolSpec, type[Validator]]
"""A tool's full spec and the validator class its schema asks for (``$schema``)."""
ToolShape = tuple[ToolSpec, Validator, tuple[str, ...]]
"""What the model sees of a tool, its validator, and the bound arguments it takes."""

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_PAGES = 100
"""Pages of ``tools/list`` read at most: a paginator that never ends cannot hang a connection."""

log = structlog.get_logger("gymbus.mcp")


async def list_tools(client: Client) -> list[ListedTool]:
    """Every tool the server lists, page by page."""
    tools: list[ListedTool] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def usable_tools(listed: list[ListedTool], server: str) -> dict[str, UsableTool]:
    """The tools a model can be given, by name; the others are skipped with a warning
    (a name models do not accept, an input schema that is not a JSON Schema)."""
    usable: dict[str, UsableTool] = {}
    for tool in listed:
        if not _TOOL_NAME.match(tool.name):
            log.warning(
                "mcp.tool_skipped",
                server=server,
                tool=tool.name[:80],
                why="not a valid tool name for models",
            )
            continue
        schema = dict(tool.input_schema)
        cls = validator_for(schema, default=Draft202012Validator)
        try:
            cls.check_schema(schema)
        except SchemaError as exc:
            log.warning(
                "mcp.tool_skipped",
                server=server,
                tool=tool.name,
                why=f"invalid input schema: {exc.message}",
            )
            continue
        spec = ToolSpec(name=tool.name, description=tool.description or "", parameters=schema)
        usable[tool.name] = (spec, cls)
    return usable


def hide_arguments(spec: ToolSpec, cls: type[Validator], hidden: frozenset[str]) -> ToolShape:
    """``spec`` without the ``hidden`` arguments it takes (removed from ``properties`` and
    ``required``), a validator of that schema, and which hidden arguments it takes."""
    schema = dict(spec.parameters)
    properties = dict(schema.get("properties") or {})
    takes = tuple(sorted(key for key in hidden if key in properties))
    if takes:
        schema["properties"] = {k: v for k, v in properties.items() if k not in takes}
        schema["required"] = [k for k in schema.get("required") or () if k not in takes]
        spec = spec.model_copy(update={"parameters": schema})
    return spec, cls(schema), takes
