"""The environment interface: a seeded task source that builds episodes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, get_args

from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.tasks import Task

Difficulty = Literal["easy", "medium", "hard"]


class Environment(ABC):
    """Subclass, set :attr:`name`, :attr:`metadata` and :attr:`description`, implement
    :meth:`task` and :meth:`episode`.

    ``task(seed)`` must be deterministic: the same seed and options give a byte-identical
    task (``task.model_dump_json()``). ``episode(task)`` builds fresh per-episode state,
    tools, the reference solver and the verifier.
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
    def episode(self, task: Task) -> EpisodeSpec:
        """Everything needed to play ``task`` once: messages, tools, verifier, solver."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "metadata": self.metadata.model_dump(mode="json")}
