"""`gymbus test`: the self-test passes good environments and catches broken ones."""

from __future__ import annotations

import random

import pytest
from typer.testing import CliRunner

from gymbus import AssistantMessage, Score, Task, UserMessage
from gymbus.cli import app
from gymbus.envs import Environment, EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode
from gymbus.selftest import self_test

runner = CliRunner()


class _Echo:
    async def verify(self, episode: CompletedEpisode) -> Score:
        last = episode.transcript.last
        got = last.text if last is not None else ""
        return Score(reward=float(got == str(episode.task.data["answer"])))


class _Says:
    def __init__(self, text: str) -> None:
        self.text = text

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        return AssistantMessage(content=self.text)


class Flaky(Environment):
    """Broken on purpose: the task depends on global randomness and the oracle guesses."""

    name = "flaky"
    metadata = EnvMetadata(
        rollout_structures=(),
        core_capabilities=(),
        knowledge_domain="testing",
        task_type="broken",
        verification_method="exact-match",
    )

    def task(self, seed: int) -> Task:
        answer = random.randint(0, 10**9)  # not seeded: not deterministic
        return Task(env=self.name, task_id=f"flaky/{seed}", seed=seed, data={"answer": answer})

    def episode(self, task: Task) -> EpisodeSpec:
        return EpisodeSpec(
            task=task,
            messages=(UserMessage(content="guess"),),
            verifier=_Echo(),
            solver=_Says("42"),
        )


@pytest.mark.anyio
async def test_a_broken_environment_fails_determinism_and_oracle_checks() -> None:
    checks = await self_test(Flaky, seeds=5, difficulties=["easy"])
    by_name = {c.name: c for c in checks}
    assert by_name["metadata"].ok
    assert not by_name["easy: determinism"].ok
    assert "different tasks" in by_name["easy: determinism"].detail
    assert not by_name["easy: oracle scores 1"].ok
    assert by_name["easy: null scores 0"].ok


@pytest.mark.anyio
async def test_the_first_environment_passes_every_check() -> None:
    from gymbus.envs import load

    checks = await self_test(type(load("retail-orders")), seeds=5)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert len(checks) == 1 + 3 * 3


def test_gymbus_test_exits_zero_on_success_and_two_on_bad_usage() -> None:
    ok = runner.invoke(app, ["test", "retail-orders", "--seeds", "3", "--json"])
    assert ok.exit_code == 0, ok.output
    assert '"ok": true' in ok.stdout
    assert runner.invoke(app, ["test"]).exit_code == 2
    unknown = runner.invoke(app, ["test", "nope"])
    assert unknown.exit_code == 2
    assert "retail-orders" in unknown.output
