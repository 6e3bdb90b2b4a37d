"""Environments that the registry tests load through entry points (imported by name)."""

from typing import Any

from gymbus.envs import Environment, EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.tasks import Task

METADATA = EnvMetadata(
    rollout_structures=("multi-step",),
    core_capabilities=(),
    knowledge_domain="testing",
    task_type="echo",
    verification_method="exact-match",
)


class _Stub(Environment):
    def task(self, seed: int) -> Task:
        return Task(env=self.name, task_id=f"{self.name}/{seed}", seed=seed)

    def episode(self, task: Task) -> EpisodeSpec:
        raise NotImplementedError


class GoodEnv(_Stub):
    name = "good-env"
    metadata = METADATA


class SameNameEnv(_Stub):
    name = "good-env"
    metadata = METADATA


class OtherGoodEnv(_Stub):
    name = "other-good-env"
    metadata = METADATA


class BadMetadataEnv(_Stub):
    name = "bad-metadata-env"
    metadata = EnvMetadata.model_construct(
        rollout_structures=("multi-step",),
        core_capabilities=(),
        knowledge_domain="testing",
        task_type="echo",
        verification_method="vibes",  # type: ignore[arg-type]
    )


def not_a_class(**options: Any) -> None:
    """An entry point must name an Environment subclass, not a factory."""
