from dataclasses import dataclass, field

import pytest

import gymbus
from gymbus.envs.verifiers.state import (
    CheckResult,
    StateCheck,
    StateCheckVerifier,
    TranscriptCheck,
)
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import VerifierError
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.messages import AssistantMessage, UserMessage
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Verifier

pytestmark = pytest.mark.anyio

TASK = Task(env="inbox", task_id="inbox/0", seed=0)


@dataclass
class Inbox:
    archived: list[str] = field(default_factory=list)
    flagged: set[str] = field(default_factory=set)


def archived_m1(inbox: Inbox) -> CheckResult:
    return CheckResult("m1" in inbox.archived, {"expected": "m1", "got": inbox.archived})


def nothing_flagged(inbox: Inbox) -> bool:
    return not inbox.flagged


def said_done(transcript: Transcript) -> bool:
    last = transcript.last
    return last is not None and "done" in last.text


VERIFIER = StateCheckVerifier(
    Inbox,
    [
        StateCheck("archived_m1", archived_m1, "message m1 was archived"),
        StateCheck("nothing_flagged", nothing_flagged),
        TranscriptCheck("said_done", said_done, counts=False),
    ],
)


def episode(state: object, reply: str = "done") -> CompletedEpisode:
    transcript = Transcript([UserMessage(content="Archive m1."), AssistantMessage(content=reply)])
    return CompletedEpisode("e1", TASK, transcript, "answered", state)


def test_all_counting_checks_pass_gives_one() -> None:
    score = VERIFIER.score(episode(Inbox(archived=["m1"])))
    assert score.reward == 1.0
    assert score.scores == {"archived_m1": 1.0, "nothing_flagged": 1.0, "said_done": 1.0}
    assert score.evidence == {
        "archived_m1": {
            "passed": True,
            "description": "message m1 was archived",
            "expected": "m1",
            "got": ["m1"],
        },
        "nothing_flagged": {"passed": True},
        "said_done": {"passed": True},
        "failed_checks": [],
    }


@pytest.mark.parametrize(
    ("state", "failed"),
    [
        (Inbox(), ["archived_m1"]),
        (Inbox(archived=["m1"], flagged={"m2"}), ["nothing_flagged"]),
        (Inbox(flagged={"m2"}), ["archived_m1", "nothing_flagged"]),
    ],
)
def test_any_failing_counting_check_gives_zero(state: Inbox, failed: list[str]) -> None:
    score = VERIFIER.score(episode(state))
    assert score.reward == 0.0
    assert score.evidence["failed_checks"] == failed
    for name in failed:
        assert score.scores[name] == 0.0
        assert score.evidence[name]["passed"] is False


def test_a_check_that_does_not_count_is_evidence_only() -> None:
    score = VERIFIER.score(episode(Inbox(archived=["m1"]), reply="ok"))
    assert score.reward == 1.0
    assert score.scores["said_done"] == 0.0
    assert score.evidence["failed_checks"] == []


def test_the_state_must_have_the_declared_type() -> None:
    with pytest.raises(VerifierError, match="expected state of type Inbox, got NoneType"):
        VERIFIER.score(episode(None))


async def test_verify_is_score() -> None:
    assert isinstance(VERIFIER, Verifier)
    done = episode(Inbox(archived=["m1"]))
    assert await VERIFIER.verify(done) == VERIFIER.score(done)


def test_checks_are_validated() -> None:
    check = StateCheck("a", nothing_flagged)
    with pytest.raises(ValueError, match="repeated: a"):
        StateCheckVerifier(Inbox, [check, check])
    with pytest.raises(ValueError, match="'failed_checks' is reserved"):
        StateCheckVerifier(Inbox, [StateCheck("failed_checks", nothing_flagged)])
    with pytest.raises(ValueError, match="at least one check that counts"):
        StateCheckVerifier(Inbox, [StateCheck("a", nothing_flagged, counts=False)])
    assert VERIFIER.checks[0].name == "archived_m1"


async def test_a_wiring_bug_is_a_verifier_failure_not_a_zero() -> None:
    def build() -> EpisodeSpec:  # the environment forgot to hand over its state
        return EpisodeSpec(
            task=TASK, messages=(UserMessage(content="Archive m1."),), verifier=VERIFIER
        )

    async with Runtime(gymbus.NullModel()) as runtime:
        [rollout] = await runtime.run([EpisodeJob(env="inbox", seed=0, build=build)])
    assert rollout.status == "failed"
    assert rollout.reward is None
    assert rollout.failure is not None
    assert rollout.failure.kind == "verifier"
