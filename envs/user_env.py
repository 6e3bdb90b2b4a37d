"""Environments whose episodes have a simulated user: scripted by default, or played by
a model (``user_model=``) with a persona drawn from the task's seed."""

from __future__ import annotations

from typing import Any

from gymbus.envs.base import Difficulty, Environment
from gymbus.envs.llm_user import LLMUser, UserGoal
from gymbus.envs.personas import sample_persona
from gymbus.envs.users import ScriptedUser, UserScript
from gymbus.runtime.model import EpisodeInfo, Model
from gymbus.runtime.tasks import Task


class UserEnvironment(Environment):
    """Adds options: ``user_model`` plays the user with that model (an :class:`LLMUser`)
    instead of the scripted user; ``user_judge`` also audits the LLM user with that model;
    ``user_prices`` (USD per million prompt/completion tokens) prices its calls. The
    same seed gives the same persona."""

    def __init__(
        self,
        *,
        difficulty: Difficulty = "medium",
        user_model: Model | None = None,
        user_judge: Model | None = None,
        user_prices: tuple[float, float] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(difficulty=difficulty, **options)
        self.user_model = user_model
        self.user_judge = user_judge
        self.user_prices = user_prices

    def simulated_user(
        self,
        task: Task,
        script: UserScript,
        goal: str,
        alternatives: dict[str, tuple[str, ...]] | None = None,
    ) -> ScriptedUser | LLMUser:
        """The scripted user for ``script``, or an LLM user with the same opening and
        facts pursuing ``goal`` when a user model is configured."""
        if self.user_model is None:
            return ScriptedUser(script)
        return LLMUser(
            self.user_model,
            sample_persona(task.seed),
            UserGoal(
                opening=script.opening,
                goal=goal,
                facts=script.facts,
                alternatives=alternatives or {},
            ),
            episode=EpisodeInfo(f"{task.task_id}/user", self.name, task.task_id, task.seed),
            judge=self.user_judge,
            prices=self.user_prices,
        )
