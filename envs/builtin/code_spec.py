"""``code-spec``: implement a function whose exact behaviour is only in the spec library
behind the tools (capability: information dependency).

The user asks for "the function in module `billing` that computes the check digit of an
account number". ``list_functions(module)`` gives the module's function names and
summaries, ``get_spec(function_name)`` a spec: signature, prose rules naming constants, the
constants' seeded values, edge cases and examples. The rules deviate from the textbook
(weights and modulus instead of Luhn, a seeded token layout instead of "a3b2", a tie rule
and step instead of ``round``, month lengths of a made-up calendar), so the function cannot
be written without reading its spec. Difficulty: easy is one spec; medium adds an edge-case
rule (tested) and a deprecated twin with other constants in the listing; hard moves part of
the rules into a helper whose own spec must be read too (``depends_on``), and tests both.

Reward (see :class:`~gymbus.envs.verifiers.code.CodeExecutionVerifier`): 1.0 when the last
```python block of the final answer passes every hidden test in a subprocess. Sub-scores
``all_passed``, ``tests_passed`` and ``used_tools`` (the spec lookups made). Null check:
"I can't help with that." has no code block, so it scores 0.0.
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any

import orjson

from gymbus.envs.base import Environment
from gymbus.envs.builtin.code_data import CodeSpecTask, FunctionSpec, generate
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers import ExpectedCall, RequiredCalls
from gymbus.envs.verifiers.code import CodeExecutionVerifier
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

__all__ = ["CodeSpec", "CodeSpecSolver", "code_tools", "render_solution", "request"]

_SYSTEM_PROMPT = (
    "You are a software engineer. The internal spec library documents every function of "
    "the codebase; read it with the tools. Implement functions exactly as their specs say, "
    "never from memory of how such functions usually work."
)


def request(module: str, purpose: str) -> str:
    """The user's request for the function of ``module`` that ``purpose``."""
    return (
        f"Our `{module}` module has a function that {purpose}. Please implement it in Python "
        "exactly as its specification says. Reply with one ```python code block that defines "
        "the function under its specified name, together with any helper function its spec "
        "depends on (under the helper's own name); only that code block will be run."
    )


def _public(spec: FunctionSpec) -> dict[str, Any]:
    """What ``get_spec`` shows: everything but the generator's family label."""
    return spec.model_dump(mode="json", exclude={"family"})


def code_tools(data: CodeSpecTask) -> Toolbox:
    """The spec-library tools over ``data`` (read-only). Unknown names raise ToolInputError."""

    def list_functions(module: str) -> str:
        if module != data.module:
            raise ToolInputError(f"no module {module!r}; the spec library has: {data.module}")
        return orjson.dumps(
            [{"name": s.name, "summary": s.summary} for s in data.functions.values()]
        ).decode()

    def get_spec(function_name: str) -> str:
        spec = data.functions.get(function_name)
        if spec is None:
            raise ToolInputError(
                f"no function {function_name!r} in the spec library; list_functions(module) "
                "lists a module's functions"
            )
        return orjson.dumps(_public(spec)).decode()

    return Toolbox(
        [
            FunctionTool(
                list_functions,
                string_tool_spec(
                    "list_functions",
                    "List a module's functions: name and one-line summary.",
                    module="The module name, like 'billing'.",
                ),
            ),
            FunctionTool(
                get_spec,
                string_tool_spec(
                    "get_spec",
                    "A function's specification: signature, rules, constants, edge cases, "
                    "examples and the helper functions it depends on.",
                    function_name="The function's name, as list_functions shows it.",
                ),
            ),
        ]
    )


class CodeSpec(Environment):
    name = "code-spec"
    description = (
        "Implement a function whose seeded rules are only in a spec library reached through "
        "tools (list_functions → get_spec → helper spec on hard). Reward: the code passes "
        "every hidden test in a sandboxed subprocess."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-step",),
        core_capabilities=("information-dependency",),
        knowledge_domain="code",
        task_type="implementation-from-spec",
        verification_method="code-execution",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, CodeSpecTask)
        required = [ExpectedCall(name="get_spec", arguments={"function_name": data.target})]
        if data.helper is not None:
            required.append(ExpectedCall(name="get_spec", arguments={"function_name": data.helper}))
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content=_SYSTEM_PROMPT),
                UserMessage(content=request(data.module, data.purpose), author="environment"),
            ),
            tools=code_tools(data),
            verifier=CodeExecutionVerifier(data.tests, sub_scorers=(RequiredCalls(required),)),
            solver=CodeSpecSolver(),
            limits=Limits(max_turns=8),
            metadata=self.metadata.model_dump(mode="json"),
            state=data,
        )


# --- the reference solver -------------------------------------------------------------------

_REQUEST = re.compile(r"Our `(?P<module>\w+)` module has a function that (?P<purpose>[^.]+)\.")

_CHECK_DIGIT = """
def {helper}(position):
    return WEIGHTS[position % len(WEIGHTS)]


def {name}(number):
    digits = []
    for char in number:
        if char in "0123456789":
            digits.append(int(char))
        elif char not in SEPARATORS:
            raise ValueError(f"unexpected character {{char!r}}")
    if not digits:
        raise ValueError("no digits")
    total = sum(d * {helper}(i) for i, d in enumerate(reversed(digits)))
    r = total % MODULUS
    return (MODULUS - r) % MODULUS if COMPLEMENT else r
"""
_RUN_LENGTH = """
def {helper}(char, count):
    if count == 1 and OMIT_ONE:
        return char
    return f"{{count}}{{char}}" if COUNT_FIRST else f"{{char}}{{count}}"


def {name}(text):
    def same(a, b):
        return a.lower() == b.lower() if CASE_INSENSITIVE else a == b

    tokens = []
    i = 0
    while i < len(text):
        j = i + 1
        while j < len(text) and j - i < MAX_RUN and same(text[j], text[i]):
            j += 1
        tokens.append({helper}(text[i], j - i))
        i = j
    return SEPARATOR.join(tokens)
"""
_STEP_ROUNDING = """
def {helper}(value):
    if STEP is not None:
        return STEP
    if abs(value) < LIMITS[0]:
        return STEPS[0]
    if abs(value) < LIMITS[1]:
        return STEPS[1]
    return STEPS[2]


def {name}(value):
    step = {helper}(value)
    low = value // step * step
    twice = 2 * (value - low)
    if twice != step:
        return low if twice < step else low + step
    ties = NEGATIVE_TIES if value < 0 and NEGATIVE_TIES else TIES
    if ties == "up":
        return low + step
    if ties == "down":
        return low
    return low if (low // step) % 2 == 0 else low + step
"""
_CALENDAR = """
def {helper}(month):
    return FESTIVAL_DAYS if month == 0 else MONTH_LENGTHS[month - 1]


def {name}(month, day, days):
    order = list(range(1, MONTHS + 1)) + ([0] if {helper}(0) else [])
    start = sum({helper}(m) for m in order[: order.index(month)])
    ordinal = (start + day - 1 + days) % sum({helper}(m) for m in order)
    for m in order:
        if ordinal < {helper}(m):
            return [m, ordinal + 1]
        ordinal -= {helper}(m)
"""
# family template, the constant that identifies it, defaults for constants a spec may omit
_TEMPLATES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("MODULUS", _CHECK_DIGIT, {"SEPARATORS": ""}),
    ("MAX_RUN", _RUN_LENGTH, {"CASE_INSENSITIVE": False}),
    ("TIES", _STEP_ROUNDING, {"NEGATIVE_TIES": None, "STEP": None}),
    ("MONTHS", _CALENDAR, {"FESTIVAL_DAYS": 0}),
    ("MONTH_LENGTHS", _CALENDAR, {"FESTIVAL_DAYS": 0}),
)


def render_solution(spec: dict[str, Any], helpers: list[dict[str, Any]]) -> str:
    """Python source implementing ``spec`` (a ``get_spec`` result) and the specs of the
    helpers it depends on, from their constants — as a programmer would after reading."""
    constants: dict[str, Any] = {}
    for part in (*helpers, spec):
        constants.update(part["constants"])
    _, template, defaults = next(t for t in _TEMPLATES if t[0] in spec["constants"])
    constants = {**defaults, **constants}
    if "MONTH_LENGTHS" in constants:
        constants.setdefault("MONTHS", len(constants["MONTH_LENGTHS"]))
    helper = helpers[0]["name"] if helpers else "_helper"
    header = "\n".join(f"{k} = {v!r}" for k, v in sorted(constants.items()))
    return header + "\n\n" + template.format(name=spec["name"], helper=helper)


class _MissingLookupError(Exception):
    """The next lookup has not been made yet; ``message`` makes it (control flow)."""

    def __init__(self, message: AssistantMessage) -> None:
        super().__init__(message)
        self.message = message


class _LookupFailedError(Exception):
    """A lookup returned an error or nonsense: the solver gives up."""


def _lookup(conversation: Transcript, name: str, **arguments: str) -> Any:
    """The parsed result of ``name(**arguments)`` in the conversation; raises
    :class:`_MissingLookupError` carrying the call when it has not been answered yet."""
    wanted = orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)
    call_id: str | None = None
    n_calls = 0
    results: dict[str, ToolMessage] = {}
    for message in conversation:
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls:
                n_calls += 1
                with suppress(ToolArgumentsError):
                    parsed = orjson.dumps(call.parsed_arguments(), option=orjson.OPT_SORT_KEYS)
                    if call.name == name and parsed == wanted:
                        call_id = call.id
        elif isinstance(message, ToolMessage):
            results[message.tool_call_id] = message
    result = results.get(call_id) if call_id is not None else None
    if result is None:
        call = ToolCall(
            id=f"call_{n_calls + 1}", name=name, arguments=orjson.dumps(arguments).decode()
        )
        raise _MissingLookupError(AssistantMessage(tool_calls=(call,)))
    if result.is_error:
        raise _LookupFailedError(f"{name} failed: {result.text}")
    try:
        return orjson.loads(result.text)
    except orjson.JSONDecodeError:
        raise _LookupFailedError(f"{name} returned {result.text!r}") from None


class CodeSpecSolver:
    """The reference solver: lists the module, picks the function whose summary states the
    asked purpose (not the deprecated twin), reads its spec and its helpers' specs, and
    answers with code built from them. A pure function of the conversation."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        try:
            code = self._solve(conversation)
        except _MissingLookupError as pending:
            return pending.message
        except _LookupFailedError as failed:
            return AssistantMessage(content=f"I could not read the spec: {failed}")
        return AssistantMessage(content=f"```python\n{code}```")

    @staticmethod
    def _solve(conversation: Transcript) -> str:
        asked = next(
            (
                match
                for m in conversation
                if isinstance(m, UserMessage) and (match := _REQUEST.search(m.text))
            ),
            None,
        )
        if asked is None:
            raise _LookupFailedError("the request names no module")
        listing = _lookup(conversation, "list_functions", module=asked["module"])
        purpose = asked["purpose"].lower()
        name = next(
            (
                f["name"]
                for f in listing
                if purpose in f["summary"].lower() and not f["summary"].startswith("Deprecated")
            ),
            None,
        )
        if name is None:
            raise _LookupFailedError(f"no function of {asked['module']} {purpose}")
        spec = _lookup(conversation, "get_spec", function_name=name)
        helpers = [_lookup(conversation, "get_spec", function_name=h) for h in spec["depends_on"]]
        return render_solution(spec, helpers)
