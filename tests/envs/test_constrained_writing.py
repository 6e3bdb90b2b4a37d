import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest

import gymbus
from gymbus.envs.builtin.constrained_writing import (
    ConstrainedWriting,
    ConstrainedWritingSolver,
    compose,
    request,
)
from gymbus.envs.builtin.writing_data import DIFFICULTIES, N_CONSTRAINTS, WritingTask
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers.constraint_parsing import parse_constraint
from gymbus.envs.verifiers.constraints import (
    BulletCount,
    Constraint,
    ConstraintVerifier,
    EndsWith,
    ExcludeWords,
    ForbiddenCharacters,
    IncludeKeywords,
    LetterCase,
    StartsWith,
    WordCount,
)
from gymbus.envs.verifiers.text_counts import RULES, words
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError
from gymbus.runtime.messages import AssistantMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode
from tests.envs.scoring import score_reply

pytestmark = pytest.mark.anyio

# sha256 of ConstrainedWriting(difficulty=d).task(7).model_dump_json(): changes only on purpose.
GOLDEN = {
    "easy": "68126aadb9f0302e506a1a4c96f37533bdce902a002545d26841d1b00612b1ae",
    "medium": "8e0213d4cb413d73cc148bdcd24ad9da0b0a8b46fc0e888abd75d51b9f545862",
    "hard": "445e70eb293d0d7da3a8772c14d418f5f4200ca22aa3db137c2bfa1cc70baa9a",
}
PRESENCE_KINDS = {
    "paragraph_count",
    "bullet_count",
    "heading_count",
    "placeholder_count",
    "letter_case",
    "starts_with",
    "ends_with",
    "include_keywords",
}
REFUSAL = "I can't help with that."


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = ConstrainedWriting(difficulty=difficulty)  # type: ignore[arg-type]
    return env.episode(env.task(seed))


def data_for(difficulty: str, seed: int) -> WritingTask:
    env = ConstrainedWriting(difficulty=difficulty)  # type: ignore[arg-type]
    return WritingTask.model_validate(env.task(seed).data)


def oracle_text(spec: EpisodeSpec) -> str:
    assert spec.solver is not None
    return spec.solver.next_message(Transcript(spec.messages)).text


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_is_deterministic(difficulty: str) -> None:
    first = ConstrainedWriting(difficulty=difficulty).task(7)  # type: ignore[arg-type]
    second = ConstrainedWriting(difficulty=difficulty).task(7)  # type: ignore[arg-type]
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"constrained-writing/{difficulty}/7"
    digest = hashlib.sha256(first.model_dump_json().encode()).hexdigest()
    assert digest == GOLDEN[difficulty]


def test_seeds_give_different_tasks() -> None:
    env = ConstrainedWriting(difficulty="hard")
    assert len({env.task(seed).model_dump_json() for seed in range(30)}) == 30


def test_tasks_cover_every_kind_and_brief() -> None:
    kinds = {c.kind for seed in range(60) for c in data_for("hard", seed).constraints}
    assert len(kinds) == 12
    assert "json_format" not in kinds
    documents = {data_for("easy", seed).document.split(" for ")[0] for seed in range(60)}
    assert len(documents) >= 6


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_constraints_are_consistent_and_a_refusal_misses_one(difficulty: str) -> None:
    for seed in range(200):
        data = data_for(difficulty, seed)
        constraints = data.constraints
        kinds = [c.kind for c in constraints]
        assert len(kinds) == N_CONSTRAINTS[difficulty]  # type: ignore[index]
        assert len(set(kinds)) == len(kinds)
        assert set(kinds) & PRESENCE_KINDS
        assert ConstraintVerifier(constraints).score(refusal_episode(data)).reward == 0.0
        texts = phrases_and_keywords(constraints)
        for c in constraints:
            if isinstance(c, LetterCase):  # phrases and keywords already in that case
                assert all(c.check(t)[0] for t in texts), (seed, c, texts)
            if isinstance(c, ForbiddenCharacters):
                assert not any(ch in t for t in texts for ch in c.characters)
            if isinstance(c, ExcludeWords):
                banned = {w.casefold() for w in c.banned}
                used = {w.casefold() for t in (*texts, *data.facts) for w in words(t)}
                assert not banned & used, seed


def phrases_and_keywords(constraints: tuple[Constraint, ...]) -> list[str]:
    texts: list[str] = []
    for c in constraints:
        if isinstance(c, StartsWith | EndsWith):
            texts.append(c.phrase)
        if isinstance(c, IncludeKeywords):
            texts += c.keywords
    return texts


def refusal_episode(data: WritingTask) -> CompletedEpisode:
    transcript = Transcript([UserMessage(content="x"), AssistantMessage(content=REFUSAL)])
    task = Task(env="constrained-writing", task_id="t", seed=0, data=data.model_dump(mode="json"))
    return CompletedEpisode(episode_id="e", task=task, transcript=transcript, stop_reason="test")


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_the_reference_text_meets_every_constraint(difficulty: str) -> None:
    for seed in range(200):
        data = data_for(difficulty, seed)
        text = compose(list(data.facts), list(data.constraints))
        failed = [c.describe() for c in data.constraints if not c.check(text)[0]]
        assert not failed, (seed, failed, text)


def test_options_are_checked() -> None:
    with pytest.raises(gymbus.InputError, match="unknown options: tone"):
        ConstrainedWriting(tone="formal")


# --- episodes -------------------------------------------------------------------------------


def test_prompt_lists_facts_constraints_and_only_the_rules_needed() -> None:
    data = data_for("hard", 4)
    text = request(data)
    for fact in data.facts:
        assert f"\n- {fact}\n" in text
    lines = re.findall(r"^([0-9]+)\. (.+)$", text, re.MULTILINE)
    assert [int(n) for n, _ in lines] == list(range(1, 7))
    assert [parse_constraint(line) for _, line in lines] == list(data.constraints)
    shown = {key for key, rule in RULES.items() if rule in text}
    needed = {c.rule for c in data.constraints if c.rule is not None}
    assert needed <= shown
    assert text.endswith("no preface and no notes.")


def test_episode_spec() -> None:
    spec = spec_for("medium", 3)
    system, user = spec.messages
    assert system.role == "system"
    assert isinstance(user, UserMessage)
    assert user.author == "environment"
    assert len(spec.tools) == 0
    assert spec.limits.max_turns == 1
    assert EnvMetadata.model_validate(spec.metadata) == ConstrainedWriting.metadata
    assert isinstance(spec.verifier, ConstraintVerifier)
    assert len(spec.verifier.constraints) == 4


def test_bad_tasks_are_rejected() -> None:
    env = ConstrainedWriting()
    with pytest.raises(BadTaskError, match="belongs to 'other'"):
        env.episode(env.task(0).model_copy(update={"env": "other"}))
    bad: dict[str, Any] = {"difficulty": "easy", "document": "x", "audience": "y", "facts": []}
    bad["constraints"] = [{"kind": "word_count"}]  # no bounds
    with pytest.raises(BadTaskError, match="invalid data"):
        env.episode(Task(env="constrained-writing", task_id="t", seed=0, data=bad))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_oracle_scores_one_through_the_runtime(difficulty: str) -> None:
    env = ConstrainedWriting(difficulty=difficulty)  # type: ignore[arg-type]
    rollouts = await gymbus.run(env, gymbus.OracleModel(), n=30)
    assert len(rollouts) == 30
    for r in rollouts:
        assert r.status == "scored", r.failure
        assert r.reward == 1.0, (r.seed, r.evidence)
        assert r.turns == 1


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_null_model_scores_zero(difficulty: str) -> None:
    env = ConstrainedWriting(difficulty=difficulty)  # type: ignore[arg-type]
    rollouts = await gymbus.run(env, gymbus.NullModel(), n=30)
    for r in rollouts:
        assert r.status == "scored"
        assert r.reward == 0.0
        assert r.scores["fraction_satisfied"] < 1.0


def test_solver_reads_only_the_prompt() -> None:
    spec = spec_for("hard", 11)
    solver = ConstrainedWritingSolver()
    assert solver.next_message(Transcript(spec.messages)) == solver.next_message(
        Transcript(spec.messages)
    )
    user = spec.messages[1]
    garbled = UserMessage(content=user.text.replace("1. ", "1. Please ", 1), author="environment")
    reply = solver.next_message(Transcript([spec.messages[0], garbled]))
    assert reply.text.startswith("I cannot follow these instructions")
    no_facts = UserMessage(content="Write something nice.", author="environment")
    assert solver.next_message(Transcript([no_facts])).text.startswith("I cannot find the facts")


# --- the capability: following every formal instruction ------------------------------------

LAUNCH = WritingTask(
    difficulty="hard",
    document="a product announcement for Lumen",
    audience="the customers of Brightwave",
    facts=(
        "Lumen is the new planning app from Brightwave",
        "Lumen launches on Monday 3 June",
        "The starting price is 12 dollars per month",
        "Lumen syncs notes across phone and laptop",
        "Lumen works offline on long flights",
        "Existing customers get the first two months free",
    ),
    constraints=(
        StartsWith(phrase="Dear customers"),
        EndsWith(phrase="Happy planning"),
        WordCount(at_least=40, at_most=90),
        ForbiddenCharacters(characters=","),
        BulletCount(at_least=3, at_most=3),
        IncludeKeywords(keywords=("Lumen",), at_least=4),
    ),
)
CONVENTIONAL = """Dear customers,

We're thrilled to announce Lumen, the new planning app from Brightwave! Lumen launches on \
Monday, 3 June, starting at just 12 dollars per month. It syncs your notes across phone and \
laptop and works offline on long flights. As a thank-you, existing customers get the first \
two months free.

Happy planning,
The Brightwave team"""


def launch_spec() -> EpisodeSpec:
    task = Task(
        env="constrained-writing",
        task_id="constrained-writing/hard/custom",
        seed=0,
        data=LAUNCH.model_dump(mode="json"),
    )
    return ConstrainedWriting(difficulty="hard").episode(task)


async def test_a_conventional_well_written_reply_scores_zero() -> None:
    spec = launch_spec()
    assert (await score_reply(spec, oracle_text(spec))).reward == 1.0
    score = await score_reply(spec, CONVENTIONAL)
    assert score.reward == 0.0
    missed = {k for k, v in score.scores.items() if v == 0.0}
    assert missed == {
        "constraint:ends_with",
        "constraint:forbidden_characters",
        "constraint:bullet_count",
        "constraint:include_keywords",
    }
    assert score.scores["fraction_satisfied"] == pytest.approx(2 / 6)


def add_bullet(text: str) -> str:
    return text.replace("\n- ", "\n- One more point\n- ", 1)


def pad_sentence(text: str) -> str:
    return text.replace(".", " and so on" * 30 + ".", 1)


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("starts_with", lambda t: "Hello\n" + t),
        ("starts_with", lambda t: t.replace("Dear customers", "Dear Customers", 1)),
        ("ends_with", lambda t: t + "\nCheers"),
        ("ends_with", lambda t: t.rstrip("g")),
        ("forbidden_characters", lambda t: t.replace("Lumen ", "Lumen, ", 1)),
        ("bullet_count", add_bullet),
        ("bullet_count", lambda t: t.replace("\n- ", "\n-", 1)),
        ("word_count", pad_sentence),
        ("include_keywords", lambda t: t.replace("Lumen", "It")),
        ("include_keywords", lambda t: t.replace("Lumen", "Lumens")),
    ],
)
async def test_breaking_one_constraint_scores_zero(kind: str, mutate: Callable[[str], str]) -> None:
    spec = launch_spec()
    score = await score_reply(spec, mutate(oracle_text(spec)))
    assert score.reward == 0.0
    missed = {k for k, v in score.scores.items() if v == 0.0}
    assert missed == {f"constraint:{kind}"}
    assert score.scores["fraction_satisfied"] == pytest.approx(5 / 6)
