"""Everything the runtime needs to play one episode, built by an environment from a task."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AnyMessage
from gymbus.runtime.model import SamplingParams, Solver
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import Toolbox
from gymbus.runtime.users import UserSimulator
from gymbus.runtime.verification import Verifier


@dataclass(frozen=True, slots=True)
class EpisodeSpec:
    """One episode's ingredients.

    ``state`` is the environment-side object the tools act on (per episode, so parallel
    episodes never share it); it is handed to the verifier for state checks.
    ``params`` are sampling overrides the environment asks for (merged over the run's).
    """

    task: Task
    messages: tuple[AnyMessage, ...]
    verifier: Verifier
    tools: Toolbox = field(default_factory=Toolbox)
    user: UserSimulator | None = None
    limits: Limits = field(default_factory=Limits)
    solver: Solver | None = None
    params: SamplingParams | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    state: Any = None
