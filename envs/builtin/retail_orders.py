"""``retail-orders``: answer a stock question by chaining lookups, each one's result
deciding the next call (capability: information dependency).

"How many units of the product in order ORD-48213 are in stock at the warehouse that will
ship it?" needs ``get_order`` (→ sku, warehouse id) → ``get_warehouse`` (→ stock location
code) → ``get_stock(location_code, sku)``. Difficulty: easy is that chain in a small world;
medium adds records and a decoy location code (each warehouse's returns location, stocked
too); hard reroutes orders, so ``get_order`` points to a shipment and ``get_shipment`` to the
warehouse (4 hops, the original warehouse is a decoy).
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any

import orjson
from pydantic import BaseModel

from gymbus.envs.base import Environment
from gymbus.envs.builtin.retail_data import RetailTask, RetailWorld, generate
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers import ExactMatchVerifier, RequiredCalls, last_integer
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolArgumentsError, ToolInputError
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import (
    AssistantMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import FunctionTool, Toolbox, string_tool_spec
from gymbus.runtime.transcript import Transcript

__all__ = ["RetailOrders", "RetailOrdersSolver", "question", "retail_tools"]

_SYSTEM_PROMPT = (
    "You are an operations assistant for an online retailer. You have read-only access to "
    "its order, warehouse and stock systems through the tools. Look every identifier up "
    "with the tools; never guess one."
)
_REROUTE_NOTE = " An order that was rerouted ships from the warehouse on its shipment record."


def question(order_id: str) -> str:
    """The user's question for the order ``order_id``."""
    return (
        f"How many units of the product in order {order_id} are in stock at the warehouse "
        "that will ship it? Answer with just the number."
    )


def _json(record: BaseModel | dict[str, Any]) -> str:
    data = (
        record.model_dump(mode="json", exclude_none=True)
        if isinstance(record, BaseModel)
        else record
    )
    return orjson.dumps(data).decode()


def retail_tools(world: RetailWorld) -> Toolbox:
    """The lookup tools over ``world`` (read-only). Unknown ids raise ToolInputError."""

    def get_order(order_id: str) -> str:
        order = world.orders.get(order_id)
        if order is None:
            raise ToolInputError(f"no order {order_id!r}; order ids look like 'ORD-12345'")
        return _json(order)

    def get_shipment(shipment_id: str) -> str:
        shipment = world.shipments.get(shipment_id)
        if shipment is None:
            raise ToolInputError(
                f"no shipment {shipment_id!r}; shipment ids (like 'SHP-123456') appear in "
                "the 'rerouted_to' field of a rerouted order"
            )
        return _json(shipment)

    def get_warehouse(warehouse_id: str) -> str:
        warehouse = world.warehouses.get(warehouse_id)
        if warehouse is None:
            raise ToolInputError(
                f"no warehouse {warehouse_id!r}; warehouse ids (like 'WH-123') appear on "
                "orders and shipments"
            )
        return _json(warehouse)

    def get_stock(location_code: str, sku: str) -> str:
        by_sku = world.stock.get(location_code)
        if by_sku is None:
            if location_code in world.warehouses:
                raise ToolInputError(
                    f"{location_code!r} is a warehouse id, not a stock location code; "
                    "get_warehouse gives a warehouse's stock_location_code"
                )
            raise ToolInputError(
                f"no stock location {location_code!r}; location codes (like 'LOC-A12') "
                "come from get_warehouse"
            )
        if sku not in by_sku:
            raise ToolInputError(
                f"no product with sku {sku!r}; skus (like 'SKU-AB12') are on orders"
            )
        return _json({"location_code": location_code, "sku": sku, "quantity": by_sku[sku]})

    tools = [
        FunctionTool(
            get_order,
            string_tool_spec(
                "get_order",
                "Look up an order: customer, product sku, status and shipping warehouse.",
                order_id="The order id, like 'ORD-12345'.",
            ),
        ),
        FunctionTool(
            get_warehouse,
            string_tool_spec(
                "get_warehouse",
                "Look up a warehouse: city, suppliers and its stock-system location code(s).",
                warehouse_id="The warehouse id, like 'WH-123'.",
            ),
        ),
        FunctionTool(
            get_stock,
            string_tool_spec(
                "get_stock",
                "Units of a product on hand at a stock-system location.",
                location_code="A location code, like 'LOC-A12' (not a warehouse id).",
                sku="The product sku, like 'SKU-AB12'.",
            ),
        ),
    ]
    if world.shipments:
        tools.insert(
            1,
            FunctionTool(
                get_shipment,
                string_tool_spec(
                    "get_shipment",
                    "Look up a shipment of a rerouted order: carrier and shipping warehouse.",
                    shipment_id="The shipment id, like 'SHP-123456'.",
                ),
            ),
        )
    return Toolbox(tools)


class RetailOrders(Environment):
    name = "retail-orders"
    description = (
        "Answer how many units of an order's product are in stock at the warehouse that will "
        "ship it, by chaining order → (shipment →) warehouse → stock lookups in a seeded world "
        "with decoy records. Reward: the exact number (last integer of the final answer)."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-step",),
        core_capabilities=("information-dependency",),
        knowledge_domain="retail",
        task_type="lookup-question-answering",
        verification_method="exact-match",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        # a fresh world per episode: parallel episodes never share state
        data = self.task_data(task, RetailTask)
        system = _SYSTEM_PROMPT + (_REROUTE_NOTE if data.world.shipments else "")
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content=system),
                UserMessage(content=question(data.order_id), author="environment"),
            ),
            tools=retail_tools(data.world),
            verifier=ExactMatchVerifier(
                str(data.answer),
                extract=last_integer,
                sub_scorers=(RequiredCalls(data.required_calls),),
            ),
            solver=RetailOrdersSolver(),
            limits=Limits(max_turns=12),
            metadata=self.metadata.model_dump(mode="json"),
            state=data.world,
        )


_ORDER_ID = re.compile(r"\bORD-[0-9]+\b")


class _MissingLookupError(Exception):
    """The next lookup has not been made yet; ``message`` makes it (control flow)."""

    def __init__(self, message: AssistantMessage) -> None:
        super().__init__(message)
        self.message = message


class _LookupFailedError(Exception):
    """A lookup returned an error: the solver gives up."""


class _Lookups:
    """The tool calls made so far in a conversation and their results."""

    def __init__(self, conversation: Transcript) -> None:
        self.calls: dict[tuple[str, bytes], str] = {}  # (name, canonical args) → call id
        self.results: dict[str, ToolMessage] = {}
        self.n_calls = 0
        for message in conversation:
            if isinstance(message, AssistantMessage):
                for call in message.tool_calls:
                    self.n_calls += 1
                    with suppress(ToolArgumentsError):  # not a call this solver made
                        self.calls[(call.name, _canonical(call.parsed_arguments()))] = call.id
            elif isinstance(message, ToolMessage):
                self.results[message.tool_call_id] = message

    def require(self, name: str, **arguments: str) -> dict[str, Any]:
        """The parsed result of ``name(**arguments)``; raises :class:`_MissingLookupError`
        carrying the call when it has not been answered yet."""
        call_id = self.calls.get((name, _canonical(arguments)))
        result = self.results.get(call_id) if call_id is not None else None
        if result is None:
            call = ToolCall(
                id=f"call_{self.n_calls + 1}", name=name, arguments=orjson.dumps(arguments).decode()
            )
            raise _MissingLookupError(AssistantMessage(tool_calls=(call,)))
        if result.is_error:
            raise _LookupFailedError(f"{name} failed: {result.text}")
        try:
            value = orjson.loads(result.text)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise _LookupFailedError(f"{name} returned {result.text!r}, not a record")
        return value


def _canonical(arguments: dict[str, Any]) -> bytes:
    return orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)


class RetailOrdersSolver:
    """The reference solver: reads only the question and the tool results in the
    conversation (never the answer key) and makes one lookup per turn, then answers.
    A pure function of the conversation, so it can be driven turn by turn."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        try:
            answer = self._solve(conversation)
        except _MissingLookupError as pending:
            return pending.message
        except _LookupFailedError as failed:
            return AssistantMessage(content=f"I could not look this up: {failed}")
        return AssistantMessage(content=str(answer))

    @staticmethod
    def _solve(conversation: Transcript) -> int:
        asked = next(
            (m for m in conversation if isinstance(m, UserMessage) and _ORDER_ID.search(m.text)),
            None,
        )
        if asked is None:
            raise _LookupFailedError("the question names no order id")
        order_id = _ORDER_ID.findall(asked.text)[0]
        lookups = _Lookups(conversation)
        order = lookups.require("get_order", order_id=order_id)
        warehouse_id = order.get("warehouse_id")
        if order.get("rerouted_to"):
            shipment = lookups.require("get_shipment", shipment_id=order["rerouted_to"])
            warehouse_id = shipment["warehouse_id"]
        warehouse = lookups.require("get_warehouse", warehouse_id=str(warehouse_id))
        stock = lookups.require(
            "get_stock", location_code=warehouse["stock_location_code"], sku=order["sku"]
        )
        return int(stock["quantity"])
