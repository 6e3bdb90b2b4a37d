import math
from typing import Any

import pytest

import gymbus
from gymbus.envs import Environment, EnvMetadata
from gymbus.envs.verifiers.composite import CompositeVerifier, Part
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.messages import AssistantMessage, SystemMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Score, Verifier

pytestmark = pytest.mark.anyio


class Fixed:
    """A verifier with a fixed verdict; counts its calls."""

    def __init__(self, reward: float, **scores: float) -> None:
        self.score = Score(reward=reward, scores=scores, evidence={"said": reward})
        self.calls = 0

    async def verify(self, episode: CompletedEpisode) -> Score:
        self.calls += 1
        return self.score


class Broken:
    async def verify(self, episode: CompletedEpisode) -> Score:
        raise RuntimeError("the checker crashed")


def episode() -> CompletedEpisode:
    return CompletedEpisode(
        episode_id="e1",
        task=Task(env="test", task_id="test/0", seed=0),
        transcript=Transcript([UserMessage(content="hi"), AssistantMessage(content="hello")]),
        stop_reason="final_answer",
    )


async def test_weighted_mode_is_the_weighted_mean() -> None:
    verifier = CompositeVerifier(
        [Part("a", Fixed(1.0), weight=3.0), Part("b", Fixed(0.0)), Part("c", Fixed(0.5))],
        mode="weighted",
    )
    score = await verifier.verify(episode())
    assert score.reward == pytest.approx((3 * 1.0 + 0.0 + 0.5) / 5)
    assert score.scores == {"a": 1.0, "b": 0.0, "c": 0.5}


async def test_weighted_mode_of_perfect_parts_is_exactly_one() -> None:
    parts = [Part(f"p{i}", Fixed(1.0), weight=w) for i, w in enumerate((0.1, 0.2, 0.7, 1 / 3))]
    assert (await CompositeVerifier(parts, mode="weighted").verify(episode())).reward == 1.0


@pytest.mark.parametrize(
    ("rewards", "expected"),
    [((1.0, 1.0, 1.0), 1.0), ((1.0, 0.0, 1.0), 0.0), ((1.0, 0.99, 1.0), 0.0), ((0.0,), 0.0)],
)
async def test_all_mode_needs_every_part(rewards: tuple[float, ...], expected: float) -> None:
    parts = [Part(f"p{i}", Fixed(r)) for i, r in enumerate(rewards)]
    score = await CompositeVerifier(parts, mode="all").verify(episode())
    assert score.reward == expected
    assert score.scores == {f"p{i}": r for i, r in enumerate(rewards)}


async def test_sub_scores_are_prefixed_and_evidence_is_kept_per_part() -> None:
    first, second = Fixed(1.0, right_day=1.0, right_time=0.0), Fixed(0.0, used_tools=0.5)
    verifier = CompositeVerifier([Part("move", first), Part("count", second)], mode="all")
    score = await verifier.verify(episode())
    assert score.scores == {
        "move": 1.0,
        "move.right_day": 1.0,
        "move.right_time": 0.0,
        "count": 0.0,
        "count.used_tools": 0.5,
    }
    assert score.evidence == {
        "mode": "all",
        "parts": {
            "move": {"reward": 1.0, "weight": 1.0, "evidence": {"said": 1.0}},
            "count": {"reward": 0.0, "weight": 1.0, "evidence": {"said": 0.0}},
        },
    }
    assert list(score.evidence["parts"]) == ["move", "count"]  # in the order given
    assert (first.calls, second.calls) == (1, 1)
    assert isinstance(verifier, Verifier)
    assert verifier.mode == "all"
    assert [p.name for p in verifier.parts] == ["move", "count"]


async def test_a_part_that_raises_propagates() -> None:
    verifier = CompositeVerifier([Part("ok", Fixed(1.0)), Part("bad", Broken())], mode="weighted")
    with pytest.raises(RuntimeError, match="the checker crashed"):
        await verifier.verify(episode())


@pytest.mark.parametrize("reward", [1.5, -0.1, math.nan, math.inf])
async def test_a_part_reward_outside_zero_one_is_an_error(reward: float) -> None:
    verifier = CompositeVerifier([Part("odd", Fixed(reward))], mode="weighted")
    with pytest.raises(ValueError, match="part 'odd' \\(Fixed\\) returned reward"):
        await verifier.verify(episode())


@pytest.mark.parametrize(
    ("parts", "mode", "message"),
    [
        ([], "all", "at least one part"),
        ([Part("a", Fixed(1)), Part("a", Fixed(1))], "all", "'a' is used twice"),
        ([Part("a.b", Fixed(1))], "all", "dot-free"),
        ([Part("", Fixed(1))], "all", "non-empty"),
        ([Part("a", Fixed(1), weight=0)], "weighted", "weight must be a finite number > 0"),
        ([Part("a", Fixed(1), weight=-1)], "weighted", "weight must be a finite number > 0"),
        ([Part("a", Fixed(1), weight=math.inf)], "weighted", "finite number"),
        ([Part("a", Fixed(1), weight=2)], "all", "weights have no effect in mode 'all'"),
        ([Part("a", Fixed(1))], "mean", "mode must be one of weighted, all"),
    ],
)
def test_bad_configurations_are_rejected(parts: list[Part], mode: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CompositeVerifier(parts, mode=mode)


class BrokenVerifierEnv(Environment):
    name = "broken-verifier"
    metadata = EnvMetadata(
        rollout_structures=("multi-step",),
        core_capabilities=(),
        knowledge_domain="testing",
        task_type="echo",
        verification_method="composite",
    )

    def task(self, seed: int) -> Task:
        return Task(env=self.name, task_id=f"{self.name}/{seed}", seed=seed)

    def episode(self, task: Task) -> EpisodeSpec:
        verifier = CompositeVerifier([Part("ok", Fixed(1.0)), Part("bad", Broken())], mode="all")
        messages = (
            SystemMessage(content="Say hi."),
            UserMessage(content="hi", author="environment"),
        )
        return EpisodeSpec(task=task, messages=messages, verifier=verifier)


async def test_the_runtime_records_a_raising_part_as_a_verifier_failure() -> None:
    (rollout,) = await gymbus.run(BrokenVerifierEnv(), gymbus.ScriptedModel(["hello"]), n=1)
    assert rollout.status == "failed"
    assert rollout.reward is None
    assert rollout.failure is not None
    assert rollout.failure.kind == "verifier"
    assert "the checker crashed" in rollout.failure.message
