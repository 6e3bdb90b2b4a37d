"""The environment interface: a seeded task source that builds episodes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Mapping
from typing import Any, ClassVar, Literal, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.closing import AsyncClosing
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError, ConfigError
from gymbus.runtime.tasks import Task

Difficulty = Literal["easy", "medium", "hard"]
DataModel = TypeVar("DataModel", bound=BaseModel)


class Environment(AsyncClosing, ABC):
    """Subclass, set :attr:`name`, :attr:`metadata` and :attr:`description`, implement
    :meth:`task` and :meth:`episode`.

    ``task(seed)`` must be deterministic: the same seed and options give a byte-identical
    task (``task.model_dump_json()``). ``episode(task)`` builds fresh per-episode state,
    tools, the reference solver and the verifier; it may be ``async def`` when building
    needs I/O (connecting to an MCP server), and whatever the episode holds is released by
    the spec's ``cleanup``. What an environment holds across episodes (a shared
    connection) is released by :meth:`aclose` — use the environment as ``async with env:``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    metadata: ClassVar[EnvMetadata]

    def __init__(self, *, difficulty: Difficulty = "medium", **options: Any) -> None:
        if options:
            raise ConfigError(
                f"environment {self.name!r} got unknown options: {', '.join(sorted(options))}"
            )
        if difficulty not in get_args(Difficulty):
            raise ConfigError(
                f"environment {self.name!r}: difficulty must be one of "
                f"{', '.join(get_args(Difficulty))}, got {difficulty!r}"
            )
        self.difficulty: Difficulty = difficulty

    @abstractmethod
    def task(self, seed: int) -> Task:
        """The task for ``seed`` (deterministic)."""

    @abstractmethod
    def episode(self, task: Task) -> EpisodeSpec | Awaitable[EpisodeSpec]:
        """Everything needed to play ``task`` once: messages, tools, verifier, solver.
        Raising :class:`~gymbus.runtime.errors.ToolError` (a tool server could not start)
        fails the episode with kind ``tool``; anything else with kind ``bad_task``."""

    async def aclose(self) -> None:
        """Release what the environment holds across episodes (by default nothing)."""

    def make_task(self, seed: int, data: BaseModel | Mapping[str, Any]) -> Task:
        """The standard task for ``seed``: id ``name/difficulty/seed``, data as JSON."""
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else dict(data)
        return Task(
            env=self.name,
            task_id=f"{self.name}/{self.difficulty}/{seed}",
            seed=seed,
            data=payload,
        )

    def task_data(self, task: Task, model: type[DataModel]) -> DataModel:
        """``task.data`` as ``model``; a task of another environment, or data that does not
        validate, is a :class:`BadTaskError` (the episode fails with kind ``bad_task``)."""
        if task.env != self.name:
            raise BadTaskError(f"task {task.task_id!r} belongs to {task.env!r}, not {self.name!r}")
        try:
            return model.model_validate(task.data)
        except ValidationError as exc:
            raise BadTaskError(f"task {task.task_id!r} has invalid data: {exc}") from None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "metadata": self.metadata.model_dump(mode="json")}
