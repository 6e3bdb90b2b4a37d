"""Environment metadata on the five dimensions: rollout structure, core capabilities,
knowledge domain, task type and verification method."""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import field_validator, model_validator

from gymbus.runtime.messages import Frozen

RolloutStructure = Literal["multi-step", "multi-turn", "multi-modal", "long-context"]
CoreCapability = Literal[
    "information-dependency",
    "proactive-asking",
    "schema-adherence",
    "metadata-instruction-following",
    "counterintuitive-instruction-following",
    "information-relevance",
    "multiple-intent-synthesis",
]
VerificationMethod = Literal[
    "exact-match",
    "schema",
    "programmatic-constraints",
    "state-check",
    "llm-judge",
    "code-execution",
    "composite",
]

ROLLOUT_STRUCTURES: tuple[str, ...] = get_args(RolloutStructure)
CORE_CAPABILITIES: tuple[str, ...] = get_args(CoreCapability)
VERIFICATION_METHODS: tuple[str, ...] = get_args(VerificationMethod)

# A capability is only exercised by rollouts of a certain shape: claiming the capability
# means claiming (one of) these structures.
REQUIRED_STRUCTURES: dict[str, frozenset[str]] = {
    "information-dependency": frozenset({"multi-step"}),
    "proactive-asking": frozenset({"multi-turn"}),
    "information-relevance": frozenset({"long-context"}),
    "multiple-intent-synthesis": frozenset({"multi-step", "multi-turn"}),
}

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def normalize_label(value: str) -> str:
    """'Retail / Orders' → 'retail-orders': lower-case kebab, for domain and task type."""
    return "-".join(re.findall(r"[a-z0-9]+", value.lower()))


class EnvMetadata(Frozen):
    rollout_structures: tuple[RolloutStructure, ...]
    core_capabilities: tuple[CoreCapability, ...]
    knowledge_domain: str
    task_type: str
    verification_method: VerificationMethod

    @field_validator("knowledge_domain", "task_type", mode="before")
    @classmethod
    def _normalize(cls, value: object) -> object:
        if isinstance(value, str):
            value = normalize_label(value)
            if not _SLUG.match(str(value)):
                raise ValueError("must contain at least one letter or digit")
        return value

    @model_validator(mode="after")
    def _capabilities_need_structures(self) -> EnvMetadata:
        claimed = set(self.rollout_structures)
        for capability in self.core_capabilities:
            needed = REQUIRED_STRUCTURES.get(capability)
            if needed and not claimed & needed:
                raise ValueError(
                    f"capability {capability!r} requires rollout structure "
                    f"{' or '.join(sorted(needed))!r} in rollout_structures"
                )
        return self
