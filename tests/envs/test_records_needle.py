import hashlib
from collections import Counter
from typing import Any

import orjson
import pytest

import gymbus
from gymbus.envs.builtin.records_data import (
    _DEPTHS,
    DEFAULT_CONTEXT_TOKENS,
    DIFFICULTIES,
    LOG_END,
    LOG_START,
    NeedleTask,
)
from gymbus.envs.builtin.records_needle import RecordsNeedle, RecordsNeedleSolver, field_extractor
from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError, ConfigError
from gymbus.runtime.messages import UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.tasks import Task
from gymbus.runtime.tokenizer import count_tokens
from gymbus.runtime.transcript import Transcript
from tests.envs.scoring import score_reply

pytestmark = pytest.mark.anyio

# sha256 of RecordsNeedle(difficulty=d).task(7).model_dump_json(): changes only on purpose.
GOLDEN = {
    "easy": "5a6548fdc0510c0cdbf7d6989e405f17b3a80a38b85ab16b0d99aa887d6a6262",
    "medium": "eeeb929b1cf4607d5cad8e8245cd1f67e6cb77389a23882b540a19f49347daf9",
    "hard": "886ef16c24b8bb29e06f91cfca628062c37a3cd62a7c7259ab0f0016a2784e63",
}


def task_for(difficulty: str = "medium", seed: int = 0, **options: Any) -> Task:
    return RecordsNeedle(difficulty=difficulty, **options).task(seed)  # type: ignore[arg-type]


def data_of(task: Task) -> NeedleTask:
    return NeedleTask.model_validate(task.data)


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = RecordsNeedle(difficulty=difficulty)  # type: ignore[arg-type]
    return env.episode(env.task(seed))


def log_records(request: ModelRequest) -> tuple[list[dict[str, Any]], str]:
    """The parsed log and the question, as a naive policy would read them."""
    prompt = next(m.text for m in request.conversation if isinstance(m, UserMessage))
    log = prompt[prompt.index(LOG_START) + len(LOG_START) : prompt.index(LOG_END)]
    return [orjson.loads(line) for line in log.strip().splitlines()], prompt.rsplit("\n", 1)[-1]


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_is_deterministic(difficulty: str) -> None:
    first, second = task_for(difficulty, 7), task_for(difficulty, 7)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"records-needle/{difficulty}/7"
    digest = hashlib.sha256(first.model_dump_json().encode()).hexdigest()
    assert digest == GOLDEN[difficulty]
    env = RecordsNeedle(difficulty=difficulty)  # type: ignore[arg-type]
    assert env.episode(first).messages == env.episode(second).messages


def test_seeds_give_different_tasks() -> None:
    assert len({task_for("easy", seed).model_dump_json() for seed in range(20)}) == 20


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_prompt_size_follows_difficulty(difficulty: str) -> None:
    data = data_of(task_for(difficulty, 1))
    target = DEFAULT_CONTEXT_TOKENS[difficulty]  # type: ignore[index]
    assert data.context_tokens == target
    assert target * 0.99 <= data.prompt_tokens <= target * 1.02  # real o200k tokens
    prompt = spec_for(difficulty, 1).messages[1].text
    assert count_tokens(prompt) == data.prompt_tokens


def test_context_tokens_overrides_the_size() -> None:
    data = data_of(task_for("easy", 0, context_tokens=20_000))
    assert data.context_tokens == 20_000
    assert 19_800 <= data.prompt_tokens <= 20_400


@pytest.mark.parametrize("value", [10, 5_000_000, "8000", True, 8000.0])
def test_bad_options_are_config_errors(value: object) -> None:
    with pytest.raises(ConfigError, match="context_tokens must be an integer"):
        RecordsNeedle(context_tokens=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="difficulty must be one of"):
        RecordsNeedle(difficulty="extreme")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown options: colour"):
        RecordsNeedle(colour="red")


@pytest.mark.parametrize("difficulty", ["easy", "medium"])
def test_the_needle_moves_through_the_log(difficulty: str) -> None:
    positions: Counter[str] = Counter()
    for seed in range(30):
        data = data_of(task_for(difficulty, seed))
        low, high = _DEPTHS[data.position]
        assert low - 0.01 <= data.depth <= high
        assert data.records[data.needle_line].revision_id == data.answer_revision_id
        positions[data.position] += 1
    assert set(positions) == {"beginning", "middle", "end"}
    assert min(positions.values()) >= 5


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(10))
def test_log_hides_the_answer_among_decoys(difficulty: str, seed: int) -> None:
    data = data_of(task_for(difficulty, seed))
    records = {r.revision_id: r for r in data.records}
    assert len(records) == len(data.records)
    mine = [r for r in data.records if r.badge == data.badge and r.office == data.office]
    current = max(mine, key=lambda r: r.revision)
    assert current.revision_id == data.answer_revision_id
    assert getattr(current, data.field) == data.answer
    assert current.updated_at == max(r.updated_at for r in mine)
    badges_per_office = Counter((r.office, r.badge) for r in data.records)
    assert badges_per_office[(data.office, data.badge)] == len(mine)
    kinds = Counter(d.kind for d in data.distractors)
    assert kinds["outdated-revision"] == len(mine) - 1 >= 1
    assert kinds["same-badge-other-office"] >= 2
    assert kinds["similar-badge"] >= 1
    for decoy in data.distractors:
        record = records[decoy.revision_id]
        assert getattr(record, data.field) == decoy.value != data.answer
        assert (record.badge, record.office) == (data.badge, data.office) or (
            decoy.kind != "outdated-revision"
        )
    assert len({d.value for d in data.distractors}) == len(data.distractors)
    others = [r for r in data.records if r.badge == data.badge and r.office != data.office]
    assert max(r.revision for r in others) > current.revision  # the badge alone misleads
    if difficulty != "easy":
        namesakes = [r for r in data.records if r.name == data.name and r.badge != data.badge]
        assert namesakes
        assert max(r.revision for r in namesakes) > current.revision
        later = data.records[data.needle_line + 1 :]
        assert any(r.revision_id in {m.revision_id for m in mine} for r in later)


def test_episode_spec() -> None:
    spec = spec_for("easy", 3)
    data = data_of(spec.task)
    system, user = spec.messages
    assert system.role == "system"
    assert isinstance(user, UserMessage)
    assert user.author == "environment"
    assert f"badge {data.badge} ({data.name}) in the {data.office} office" in user.text
    assert f"`{data.field}`" in user.text
    assert data.answer in user.text  # the answer is in the log...
    assert user.text.count(LOG_START) == 1
    assert len(spec.tools) == 0
    assert spec.limits.max_turns == 2
    assert EnvMetadata.model_validate(spec.metadata) == RecordsNeedle.metadata


def test_bad_tasks_are_rejected() -> None:
    env = RecordsNeedle()
    task = env.task(0)
    with pytest.raises(BadTaskError, match="belongs to 'other'"):
        env.episode(task.model_copy(update={"env": "other"}))
    with pytest.raises(BadTaskError, match="invalid data"):
        env.episode(Task(env="records-needle", task_id="records-needle/x/0", seed=0, data={}))


# --- through the runtime --------------------------------------------------------------------


@pytest.mark.parametrize(("difficulty", "n"), [("easy", 30), ("medium", 30), ("hard", 10)])
async def test_oracle_scores_one(difficulty: str, n: int) -> None:
    env = RecordsNeedle(difficulty=difficulty)  # type: ignore[arg-type]
    rollouts = await gymbus.run(env, gymbus.OracleModel(), n=n)
    assert len(rollouts) == n
    for r in rollouts:
        assert (r.status, r.reward) == ("scored", 1.0), (r.task_id, r.failure, r.evidence)
        assert r.scores == {"answer_correct": 1.0, "fell_for_distractor": 0.0}
        assert r.turns == 1


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_null_model_scores_zero(difficulty: str) -> None:
    env = RecordsNeedle(difficulty=difficulty)  # type: ignore[arg-type]
    rollouts = await gymbus.run(env, gymbus.NullModel(), n=3)
    for r in rollouts:
        assert (r.status, r.reward) == ("scored", 0.0)
        assert r.evidence["got"] is None
        assert r.evidence["distractor"] is None


def asked(request: ModelRequest) -> tuple[list[dict[str, Any]], str, str, str, str]:
    """The parsed log and the question's field, badge, name and office."""
    records, question = log_records(request)
    field = question.split("`")[1]
    badge = question.split("badge ")[1].split(" ")[0]
    name = question.split("(")[1].split(")")[0]
    office = question.split(" in the ")[1].split(" office")[0]
    return records, field, badge, name, office


def latest_listed(request: ModelRequest) -> str:
    """Takes the exact badge and office, but trusts the order of the log (last one wins)."""
    records, field, badge, _, office = asked(request)
    mine = [r for r in records if r["badge"] == badge and r["office"] == office]
    return str(mine[-1][field])


def latest_for_badge(request: ModelRequest) -> str:
    """Takes the highest revision of the badge, ignoring the office."""
    records, field, badge, _, _ = asked(request)
    return str(max((r for r in records if r["badge"] == badge), key=lambda r: r["revision"])[field])


def latest_for_name(request: ModelRequest) -> str:
    """Matches the employee by name and office instead of badge."""
    records, field, _, name, office = asked(request)
    mine = [r for r in records if r["name"] == name and r["office"] == office]
    return str(max(mine, key=lambda r: r["revision"])[field])


@pytest.mark.parametrize(
    ("policy", "difficulties", "kind"),
    [
        (latest_listed, ("medium", "hard"), "outdated-revision"),
        (latest_for_badge, DIFFICULTIES, "same-badge-other-office"),
        (latest_for_name, ("medium", "hard"), "namesake"),
    ],
)
async def test_careless_readers_fall_for_the_decoys(
    policy: Any, difficulties: tuple[str, ...], kind: str
) -> None:
    for difficulty in difficulties:
        env = RecordsNeedle(difficulty=difficulty)  # type: ignore[arg-type]
        n = 3 if difficulty == "hard" else 10
        rollouts = await gymbus.run(env, gymbus.FunctionModel(policy), n=n)
        for r in rollouts:
            assert (r.status, r.reward) == ("scored", 0.0), (r.task_id, r.evidence)
            assert r.scores["fell_for_distractor"] == 1.0
            assert r.evidence["distractor"]["kind"] == kind


# --- scoring --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
async def test_every_decoy_value_scores_zero(seed: int) -> None:
    spec = spec_for("medium", seed)
    data = data_of(spec.task)
    for decoy in data.distractors:
        score = await score_reply(spec, decoy.value)
        assert score.reward == 0.0
        assert score.scores == {"answer_correct": 0.0, "fell_for_distractor": 1.0}
        assert score.evidence["expected"] == data.answer
        assert score.evidence["got"] == decoy.value
        assert score.evidence["distractor"] == {
            "kind": decoy.kind,
            "revision_id": decoy.revision_id,
        }
    assert {d.kind for d in data.distractors} == {
        "outdated-revision",
        "same-badge-other-office",
        "similar-badge",
        "namesake",
    }


@pytest.mark.parametrize(
    ("reply", "reward"),
    [
        ("{answer}", 1.0),
        ("The current value is {lower}.", 1.0),
        ("It was {outdated}, now it is {answer}", 1.0),
        ("It is {answer} (it used to be {outdated})", 0.0),
        ("{answer_glued}", 0.0),
        ("I can't help with that.", 0.0),
    ],
)
async def test_final_answer_scoring(reply: str, reward: float) -> None:
    spec = spec_for("easy", 11)
    data = data_of(spec.task)
    outdated = next(d.value for d in data.distractors if d.kind == "outdated-revision")
    text = reply.format(
        answer=data.answer,
        lower=data.answer.lower(),
        outdated=outdated,
        answer_glued="X" + data.answer,
    )
    score = await score_reply(spec, text)
    assert score.reward == reward
    assert score.scores["answer_correct"] == reward


def test_field_extractor_reads_only_the_asked_field() -> None:
    assert field_extractor("salary_band")("SB-14 at CC-48213") == "SB-14"
    assert field_extractor("cost_center")("SB-14 at cc-48213.") == "CC-48213"
    assert field_extractor("workstation")("WS-311 or WS-31170") is None
    assert field_extractor("workstation")("desk ws-3117") == "WS-3117"


def test_solver_reads_only_the_conversation() -> None:
    spec = spec_for("medium", 4)
    data = data_of(spec.task)
    reply = RecordsNeedleSolver().next_message(Transcript(spec.messages))
    assert reply.text == data.answer
    assert not reply.tool_calls
    empty = RecordsNeedleSolver().next_message(Transcript([UserMessage(content="hello")]))
    assert "no question" in empty.text
