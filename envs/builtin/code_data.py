"""The code-spec library: one module of function specs per task, with hidden tests, built
by a seeded generator from the families in :mod:`code_families`.

A module holds the asked function, two functions of other families and, on medium and
hard, a deprecated twin of the asked function with other constants. A spec states its
rules in prose that names its constants and lists the constants' values, so a careful
programmer can implement it; nobody can implement it without reading it.

Medium adds each family's edge-case rule (with hidden tests for it); hard moves part of
the rules into a helper function with a spec of its own (``depends_on``), also tested.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, get_args

from gymbus.envs.base import Difficulty
from gymbus.envs.builtin.code_families import FAMILIES, Args, Family, FamilyName
from gymbus.envs.verifiers.code import CodeTest
from gymbus.runtime.messages import Frozen

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)


class Example(Frozen):
    """A call shown in a spec and its result (a return value, or the exception raised)."""

    call: str
    returns: Any = None
    raises: str | None = None


class FunctionSpec(Frozen):
    """One function's entry in the spec library (what ``get_spec`` shows, plus ``family``)."""

    name: str
    module: str
    family: FamilyName
    signature: str
    summary: str
    description: str
    constants: dict[str, Any]
    edge_cases: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    depends_on: tuple[str, ...] = ()


class CodeSpecTask(Frozen):
    """``Task.data`` of a code-spec task: the module's specs, what is asked, hidden tests."""

    difficulty: Difficulty
    module: str
    purpose: str
    target: str
    helper: str | None
    functions: dict[str, FunctionSpec]  # the module, in listing order
    tests: tuple[CodeTest, ...]


def _call(name: str, args: Args) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


_MODULES = ("billing", "ledger", "dispatch", "payroll", "registry", "accounts", "fulfilment")
_N_TESTS = 12  # main-rule tests; medium and hard add 6 edge-case tests, hard 5 helper tests
_N_EDGE = 6


def outcome(run: Callable[..., Any], args: Args) -> tuple[Any, str | None]:
    """(return value, None) or (None, exception class name) of ``run(*args)``."""
    try:
        return run(*args), None
    except ValueError:
        return None, "ValueError"


def _examples(name: str, run: Callable[..., Any], inputs: list[Args]) -> tuple[Example, ...]:
    examples = []
    for args in inputs:
        value, raises = outcome(run, args)
        examples.append(Example(call=_call(name, args), returns=value, raises=raises))
    return tuple(examples)


def _unique_inputs(draw: Callable[[], Args], n: int) -> list[Args]:
    seen: list[Args] = []
    for _ in range(50 * n):
        args = draw()
        if args not in seen:
            seen.append(args)
            if len(seen) == n:
                break
    return seen


def _tests(name: str, run: Callable[..., Any], inputs: list[Args]) -> list[CodeTest]:
    tests = []
    for args in inputs:
        value, raises = outcome(run, args)
        tests.append(CodeTest(function=name, args=args, expected=value, raises=raises))
    return tests


def _summary(purpose: str) -> str:
    return purpose[0].upper() + purpose[1:] + "."


def _spec(
    family: Family,
    rng: random.Random,
    *,
    name: str,
    module: str,
    constants: dict[str, Any],
    edge: bool,
    summary: str,
    helper: str | None = None,
    helper_constants: dict[str, Any] | None = None,
) -> FunctionSpec:
    effective = {**constants, **(helper_constants or {})}
    description = family.describe(helper)
    if not edge:
        description += " " + family.easy_rule
    inputs = _unique_inputs(lambda: family.inputs(rng, effective, False), 2)
    return FunctionSpec(
        name=name,
        module=module,
        family=family.name,
        signature=family.signature.format(name=name),
        summary=summary,
        description=description,
        constants=constants,
        edge_cases=family.edge_rules(helper) if edge else (),
        examples=_examples(name, lambda *a: family.run(effective, *a), inputs),
        depends_on=(helper,) if helper else (),
    )


def generate(seed: int, difficulty: Difficulty) -> CodeSpecTask:
    """The task for ``seed`` at ``difficulty``; draws only from ``random.Random(seed)``."""
    rng = random.Random(seed)
    edge, split = difficulty != "easy", difficulty == "hard"
    order = list(FAMILIES)
    rng.shuffle(order)
    family = FAMILIES[order[0]]
    module = rng.choice(_MODULES)
    name = rng.choice(family.names)
    helper = rng.choice(family.helper_names) if split else None

    constants, helper_constants = family.partition(family.constants(rng, edge), split)
    effective = {**constants, **helper_constants}
    specs = [
        _spec(family, rng, name=name, module=module, constants=constants, edge=edge,
              summary=_summary(family.purpose), helper=helper,
              helper_constants=helper_constants),
    ]  # fmt: skip
    if helper is not None:
        helper_run: Callable[..., Any] = lambda *a: family.run_helper(effective, *a)  # noqa: E731
        specs.append(
            FunctionSpec(
                name=helper,
                module=module,
                family=family.name,
                signature=family.helper_signature.format(name=helper),
                summary=family.helper_summary.format(name=name),
                description=family.describe_helper(),
                constants=helper_constants,
                examples=_examples(helper, helper_run, family.helper_inputs(rng, effective)[:2]),
            )
        )
    if edge:  # a deprecated twin whose rules differ in the function's and the helper's part
        while True:
            drawn = family.constants(rng, edge)
            legacy_main, legacy_helper = family.partition(drawn, split)
            if legacy_main != constants and (not split or legacy_helper != helper_constants):
                break
        legacy, _ = family.partition(drawn, False)
        specs.append(
            _spec(family, rng, name=f"legacy_{name}", module=module, constants=legacy,
                  edge=edge, summary=f"Deprecated: {family.purpose} with the old rules; use "
                  f"{name} instead.")
        )  # fmt: skip
    for other in order[1:3]:
        decoy = FAMILIES[other]
        decoy_constants, _ = decoy.partition(decoy.constants(rng, edge), False)
        specs.append(
            _spec(decoy, rng, name=rng.choice(decoy.names), module=module, edge=edge,
                  constants=decoy_constants, summary=_summary(decoy.purpose))
        )  # fmt: skip

    def run(*args: Any) -> Any:
        return family.run(effective, *args)

    inputs = _unique_inputs(lambda: family.inputs(rng, effective, False), _N_TESTS)
    if edge:
        inputs += _unique_inputs(lambda: family.inputs(rng, effective, True), _N_EDGE)
    tests = _tests(name, run, inputs)
    if helper is not None:
        helper_inputs = family.helper_inputs(rng, effective)
        tests += _tests(helper, lambda *a: family.run_helper(effective, *a), helper_inputs)
    return CodeSpecTask(
        difficulty=difficulty,
        module=module,
        purpose=family.purpose,
        target=name,
        helper=helper,
        functions={s.name: s for s in sorted(specs, key=lambda s: s.name)},
        tests=tuple(tests),
    )
