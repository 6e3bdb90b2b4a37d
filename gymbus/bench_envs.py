"""The two benchmark workloads as environments (not in the catalogue): ``single`` — one
model call, exact-answer reward — and ``tools3`` — three dependent tool calls, then the
answer (four model calls). The mock server (:mod:`gymbus.bench_server`) plays them."""

from __future__ import annotations

from typing import Literal

from gymbus.envs.base import Environment
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers import ExactMatchVerifier
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolInputError
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import SystemMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import FunctionTool, Toolbox, ToolSpec

Workload = Literal["single", "tools3"]
WORKLOADS: tuple[Workload, ...] = ("single", "tools3")
_KEY = {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}


def _step(n: int) -> FunctionTool:
    def lookup(key: str) -> str:
        if key != f"k{n - 1}":
            raise ToolInputError(f"unknown key {key!r}")
        return f"k{n}" if n < 3 else "the answer is 42"

    return FunctionTool(lookup, ToolSpec(name=f"step{n}", description="next key", parameters=_KEY))


class BenchEnv(Environment):
    name = "bench"
    description = "Benchmark workloads (single, tools3) played by gymbus.bench_server."
    metadata = EnvMetadata(
        rollout_structures=("multi-step",),
        core_capabilities=("information-dependency",),
        knowledge_domain="benchmark",
        task_type="benchmark",
        verification_method="exact-match",
    )

    def __init__(self, workload: Workload = "tools3") -> None:
        super().__init__()
        self.workload = workload
        self._tools = Toolbox([_step(1), _step(2), _step(3)]) if workload == "tools3" else Toolbox()
        self._verifier = ExactMatchVerifier("42")

    def task(self, seed: int) -> Task:
        return Task(env=self.name, task_id=f"bench/{self.workload}/{seed}", seed=seed)

    def episode(self, task: Task) -> EpisodeSpec:
        question = (
            "Follow step1, step2 and step3 from key k0; what is the answer?"
            if self.workload == "tools3"
            else "What is 40 + 2? Answer with the number."
        )
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content="You are a benchmark."),
                UserMessage(content=question, author="environment"),
            ),
            tools=self._tools,  # stateless tools: shared, no per-episode state
            verifier=self._verifier,
            limits=Limits(max_turns=6),
        )
