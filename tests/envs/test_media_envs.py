"""What the four media environments (chart-reading, shape-count, motion-video, dtmf-audio)
share, checked once for each: media go to the shared store by default, tasks of another
environment or with invalid data are rejected, the oracle scores 1 and the null model 0
through the runtime on every difficulty."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import gymbus
from gymbus.envs.builtin.audio import first_audio
from gymbus.envs.builtin.chart_reading import ChartReading
from gymbus.envs.builtin.dtmf_audio import DtmfAudio
from gymbus.envs.builtin.images import first_image
from gymbus.envs.builtin.motion_video import MotionVideo
from gymbus.envs.builtin.shape_count import ShapeCount
from gymbus.envs.builtin.video import first_video
from gymbus.envs.media_env import MediaEnvironment
from gymbus.runtime.errors import BadTaskError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript

pytestmark = pytest.mark.anyio

DIFFICULTIES = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Case:
    env: type[MediaEnvironment]
    first_media: Callable[[Transcript, MediaStore], Any]
    """Finds the environment's medium in a transcript (None when there is none)."""
    scores: tuple[str, ...]
    """The sub-scores its verifier gives."""
    null_n: int
    """Episodes the null model plays per difficulty."""

    def make(self, difficulty: str = "medium") -> MediaEnvironment:
        return self.env(difficulty=difficulty, media=MediaStore())  # type: ignore[arg-type]


ANSWER = ("answer_correct", "answer_parsed")
CASES = {
    "chart-reading": Case(ChartReading, first_image, ANSWER, 10),
    "shape-count": Case(ShapeCount, first_image, ANSWER, 10),
    "motion-video": Case(MotionVideo, first_video, ANSWER, 30),
    "dtmf-audio": Case(DtmfAudio, first_audio, (*ANSWER, "positions_correct"), 30),
}


@pytest.mark.parametrize("name", CASES)
def test_media_go_to_the_shared_store_by_default(name: str) -> None:
    env = CASES[name].env(difficulty="easy")
    assert env.media is MediaStore.shared()
    spec = env.episode(env.task(0))
    assert isinstance(spec, gymbus.EpisodeSpec)
    assert CASES[name].first_media(Transcript(spec.messages), MediaStore.shared()) is not None


@pytest.mark.parametrize("name", CASES)
def test_bad_tasks_are_rejected(name: str) -> None:
    env = CASES[name].make()
    task = env.task(0)
    with pytest.raises(BadTaskError, match="belongs to 'other'"):
        env.episode(task.model_copy(update={"env": "other"}))
    with pytest.raises(BadTaskError, match="invalid data"):
        env.episode(Task(env=name, task_id=f"{name}/x/0", seed=0, data={}))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("name", CASES)
async def test_oracle_scores_one(name: str, difficulty: str) -> None:
    case = CASES[name]
    rollouts = await gymbus.run(case.make(difficulty), gymbus.OracleModel(), n=30)
    assert len(rollouts) == 30
    for r in rollouts:
        assert (r.status, r.reward) == ("scored", 1.0), (r.task_id, r.failure, r.evidence)
        assert r.scores == dict.fromkeys(case.scores, 1.0)
        assert r.turns == 1


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("name", CASES)
async def test_null_model_scores_zero(name: str, difficulty: str) -> None:
    case = CASES[name]
    rollouts = await gymbus.run(case.make(difficulty), gymbus.NullModel(), n=case.null_n)
    assert len(rollouts) == case.null_n
    for r in rollouts:
        assert (r.status, r.reward) == ("scored", 0.0)
        assert r.scores == dict.fromkeys(case.scores, 0.0)
        assert r.evidence["got"] is None
