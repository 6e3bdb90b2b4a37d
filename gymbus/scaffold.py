"""``gymbus init``: scaffold an installable environment package.

The package registers its environment through the ``gymbus.envs`` entry-point group, so
after ``pip install`` it shows in ``gymbus envs`` and passes ``gymbus test NAME``. The
generated environment is small but complete — a seeded task generator, a tool, a
verifier with sub-scores and evidence, a reference solver acting through tool calls, and
tests — so that it is a working starting point, not a stub.
"""

from __future__ import annotations

import re
from pathlib import Path

from gymbus.runtime.errors import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def scaffold(name: str, directory: Path) -> Path:
    """Write the package for environment ``name`` into ``directory/name``; return it."""
    if not _NAME.match(name):
        raise ConfigError(f"environment name {name!r} must be kebab-case, like 'my-env'")
    root = directory / name
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} already exists and is not empty")
    module = name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-")) + "Env"
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"src/{module}/__init__.py": _INIT,
        f"src/{module}/env.py": _ENV,
        f"src/{module}/py.typed": "",
        f"tests/test_{module}.py": _TESTS,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            template.replace("{{name}}", name).replace("{{module}}", module).replace("{{cls}}", cls)
        )
    return root


_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{{name}}"
version = "0.1.0"
description = "A gymbus environment: {{name}}"
requires-python = ">=3.11"
dependencies = ["gymbus"]

[project.optional-dependencies]
test = ["pytest"]

# gymbus discovers environments through this entry-point group.
[project.entry-points."gymbus.envs"]
{{name}} = "{{module}}.env:{{cls}}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
"*" = ["py.typed"]

[tool.ruff]
line-length = 100

[tool.ruff.lint.isort]
known-first-party = ["{{module}}"]

[tool.mypy]
strict = true
# gymbus messages accept a plain string as content (one text part); pydantic's plugin
# lets mypy see that.
plugins = ["pydantic.mypy"]
"""

_README = """\
# {{name}}

A [gymbus](https://pypi.org/project/gymbus/) environment.

```bash
pip install .                 # registers the environment with gymbus
gymbus test {{name}}          # oracle 1.0, null 0.0, determinism, metadata
gymbus run {{name}} --model oracle --n 10
pytest tests
```

Edit `src/{{module}}/env.py`: the task generator (`task`), the tools, the verifier and
the reference solver. See gymbus's docs/tutorials/creating-an-environment.md.
"""

_INIT = '''\
"""The {{name}} gymbus environment."""

from {{module}}.env import {{cls}}

__all__ = ["{{cls}}"]
'''

_ENV = '''\
"""{{name}}: the user asks what a quantity of an item costs; the unit price is only
available through the `get_price` tool (multi-step, information dependency).

Null check: the null model answers without calling the tool and without a number, so
the verifier finds no total and scores 0.
"""

from __future__ import annotations

import random
import re

from gymbus import (
    AssistantMessage,
    CompletedEpisode,
    Environment,
    EnvMetadata,
    EpisodeSpec,
    FunctionTool,
    Limits,
    Score,
    SystemMessage,
    Task,
    Toolbox,
    ToolCall,
    ToolInputError,
    ToolMessage,
    ToolSpec,
    Transcript,
    UserMessage,
)

ITEMS = ("widget", "gadget", "sprocket", "gizmo", "flange", "bracket")
QUANTITY = re.compile(r"(\\d+) units of (\\w+)")


class {{cls}}(Environment):
    name = "{{name}}"
    description = "Price lookup: quantity x unit price, where the price comes from a tool."
    metadata = EnvMetadata(
        rollout_structures=("multi-step",),
        core_capabilities=("information-dependency",),
        knowledge_domain="retail",
        task_type="arithmetic-lookup",
        verification_method="exact-match",
    )

    def task(self, seed: int) -> Task:
        rng = random.Random(seed)  # the only source of randomness: same seed, same task
        top = {"easy": 20, "medium": 200, "hard": 2000}[self.difficulty]
        prices = {item: rng.randint(1, top) for item in ITEMS}
        item = rng.choice(ITEMS)
        quantity = rng.randint(2, 9)
        return Task(
            env=self.name,
            task_id=f"{self.name}/{self.difficulty}/{seed}",
            seed=seed,
            data={
                "prices": prices,
                "item": item,
                "quantity": quantity,
                "answer": prices[item] * quantity,
            },
        )

    def episode(self, task: Task) -> EpisodeSpec:
        prices: dict[str, int] = task.data["prices"]

        def get_price(item: str) -> str:
            if item not in prices:
                raise ToolInputError(f"unknown item {item!r}; known: {', '.join(prices)}")
            return f"{prices[item]} cents per unit"

        tool = FunctionTool(
            get_price,
            ToolSpec(
                name="get_price",
                description="The unit price of an item, in cents.",
                parameters={
                    "type": "object",
                    "properties": {"item": {"type": "string"}},
                    "required": ["item"],
                    "additionalProperties": False,
                },
            ),
        )
        question = (
            f"What do {task.data['quantity']} units of {task.data['item']} cost? "
            "Answer with just the total in cents."
        )
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content="You are a shop assistant. Use the tools."),
                UserMessage(content=question, author="environment"),
            ),
            tools=Toolbox([tool]),
            verifier=TotalVerifier(),
            solver=Solver(),
            limits=Limits(max_turns=4),
            metadata=self.metadata.model_dump(mode="json"),
        )


class TotalVerifier:
    """Reward 1.0 when the last integer of the final answer is the expected total."""

    async def verify(self, episode: CompletedEpisode) -> Score:
        expected = episode.task.data["answer"]
        last = episode.transcript.last
        text = last.text if isinstance(last, AssistantMessage) and not last.tool_calls else ""
        numbers = re.findall(r"-?\\d+", text)
        got = int(numbers[-1]) if numbers else None
        looked_up = any(isinstance(m, ToolMessage) and not m.is_error for m in episode.transcript)
        return Score(
            reward=float(got == expected),
            scores={"correct": float(got == expected), "used_tool": float(looked_up)},
            evidence={"expected": expected, "got": got},
        )


class Solver:
    """The reference solver: asks the tool for the price, then multiplies. It reads only
    the conversation, never the task's answer."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        question = next(m.text for m in conversation if isinstance(m, UserMessage))
        match = QUANTITY.search(question)
        if match is None:
            return AssistantMessage(content="I don't understand the question.")
        quantity, item = int(match.group(1)), match.group(2)
        result = next((m for m in conversation if isinstance(m, ToolMessage)), None)
        if result is None:
            call = ToolCall(id="call_1", name="get_price", arguments=f'{{"item": "{item}"}}')
            return AssistantMessage(tool_calls=(call,))
        price = int(result.text.split()[0])
        return AssistantMessage(content=str(price * quantity))
'''

_TESTS = '''\
"""Tests for {{name}}: determinism, the oracle solves every task, null scores 0."""

import anyio
import gymbus

from {{module}} import {{cls}}


def test_tasks_are_deterministic() -> None:
    env = {{cls}}()
    assert env.task(7).model_dump_json() == env.task(7).model_dump_json()
    assert env.task(7) != env.task(8)


def test_the_oracle_scores_one_and_null_scores_zero() -> None:
    async def main() -> None:
        for difficulty in ("easy", "medium", "hard"):
            env = {{cls}}(difficulty=difficulty)
            oracle = await gymbus.run(env, gymbus.OracleModel(), n=20)
            assert [r.reward for r in oracle] == [1.0] * 20
            null = await gymbus.run(env, gymbus.NullModel(), n=20)
            assert [r.reward for r in null] == [0.0] * 20

    anyio.run(main)
'''
