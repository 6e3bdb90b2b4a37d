import hashlib
from decimal import Decimal
from typing import Any

import orjson
import pytest

import gymbus
from gymbus.envs.base import Difficulty
from gymbus.envs.builtin.ledger_data import DIFFICULTIES, RULES, LedgerTask, LedgerWorld
from gymbus.envs.builtin.ledger_signs import (
    LedgerSigns,
    LedgerSignsSolver,
    account_and_amount,
    ledger_amount,
)
from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError, ConfigError, ToolArgumentsError, ToolInputError
from gymbus.runtime.messages import AssistantMessage, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from tests.envs.scoring import score_reply

pytestmark = pytest.mark.anyio

# sha256 of LedgerSigns(difficulty=d).task(7).model_dump_json(): changes only on purpose.
GOLDEN = {
    "easy": "1d88839112519748aab038d2304f44b276dabf9a583edd50e86e30003647dc1a",
    "medium": "4557a5705980bff3ba1fe38aeddba72af25cadc680cbba50f26592277daf92b3",
    "hard": "709de0f80d13e472c96c85705afd6b6209d6249cb64b02aeb2a8b15af13aee87",
}


def env_for(difficulty: Difficulty) -> LedgerSigns:
    return LedgerSigns(difficulty=difficulty)


def spec_for(difficulty: Difficulty = "medium", seed: int = 0) -> EpisodeSpec:
    env = env_for(difficulty)
    return env.episode(env.task(seed))


def data_of(task: Task) -> LedgerTask:
    return LedgerTask.model_validate(task.data)


def house_balance(world: LedgerWorld, account: str, month: str) -> Decimal:
    """An independent reading of the house rules: debits positive, foreign magnitudes
    converted and rounded to cents with an exact half cent going down."""
    total = Decimal(0)
    for tx in world.transactions[account][month]:
        amount = Decimal(tx.amount)
        if tx.currency != "USD":
            cents = abs(amount) * Decimal(world.rates[tx.currency][tx.date]) * 100
            whole = int(cents)  # positive: floor
            rounded = whole + 1 if cents - whole > Decimal("0.5") else whole
            amount = (Decimal(rounded) / 100) * (1 if amount > 0 else -1)
        total -= amount  # the feed is a bank statement: flip every sign
    return total


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_is_deterministic(difficulty: Difficulty) -> None:
    first, second = env_for(difficulty).task(7), env_for(difficulty).task(7)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"ledger-signs/{difficulty}/7"
    digest = hashlib.sha256(first.model_dump_json().encode()).hexdigest()
    assert digest == GOLDEN[difficulty]


def test_seeds_give_different_tasks() -> None:
    env = env_for("medium")
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(30))
def test_answer_key_follows_the_house_rules(difficulty: Difficulty, seed: int) -> None:
    data = data_of(env_for(difficulty).task(seed))
    world, month = data.world, data.month
    balances = {a: house_balance(world, a, month) for a in world.accounts}
    if data.account_id is None:  # the top account has the LOWEST balance
        top = min(balances, key=lambda a: balances[a])
        assert data.answer == f"{top}: {balances[top]:.2f}"
        assert len(set(balances.values())) == len(balances)
    else:
        assert data.answer == f"{balances[data.account_id]:.2f}"
    assert data.conventional_answer != data.answer
    assert len(data.interpretations) == 2 ** len(RULES[difficulty])
    assert all(data.interpretations[data.answer].values())
    assert not any(data.interpretations[data.conventional_answer].values())
    foreign = [
        tx
        for by_month in world.transactions.values()
        for tx in by_month[month]
        if tx.currency != "USD"
    ]
    assert bool(foreign) == (difficulty != "easy")


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="difficulty must be one of"):
        LedgerSigns(difficulty="extreme")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown options: colour"):
        LedgerSigns(colour="red")


# --- episodes -------------------------------------------------------------------------------


def test_episode_spec() -> None:
    spec = spec_for("hard", 3)
    system, user = spec.messages
    assert "debit" in system.text
    assert "HALF DOWN" in system.text
    assert "LOWEST balance" in system.text
    assert "HALF DOWN" not in spec_for("easy").messages[0].text
    assert "LOWEST" not in spec_for("medium").messages[0].text
    assert isinstance(user, UserMessage)
    assert user.author == "environment"
    assert "top account" in user.text
    assert "balance of account ACC-" in spec_for("medium").messages[1].text
    assert list(spec.tools) == ["list_accounts", "list_transactions", "get_exchange_rate"]
    assert spec.limits.max_turns == 16
    assert EnvMetadata.model_validate(spec.metadata) == LedgerSigns.metadata
    assert isinstance(spec.state, LedgerWorld)


def test_bad_tasks_are_rejected() -> None:
    env = env_for("medium")
    task = env.task(0)
    with pytest.raises(BadTaskError, match="belongs to 'other'"):
        env.episode(task.model_copy(update={"env": "other"}))
    with pytest.raises(BadTaskError, match="invalid data"):
        env.episode(Task(env="ledger-signs", task_id="ledger-signs/x/0", seed=0, data={}))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_oracle_scores_one_on_every_seed(difficulty: Difficulty) -> None:
    rollouts = await gymbus.run(env_for(difficulty), gymbus.OracleModel(), n=30)
    assert len(rollouts) == 30
    for r in rollouts:
        assert (r.status, r.reward) == ("scored", 1.0), (r.task_id, r.evidence)
        assert r.scores == {"answer_correct": 1.0} | {rule: 1.0 for rule in RULES[difficulty]}


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_null_model_scores_zero(difficulty: Difficulty) -> None:
    rollouts = await gymbus.run(env_for(difficulty), gymbus.NullModel(), n=30)
    for r in rollouts:
        assert (r.status, r.reward) == ("scored", 0.0)
        assert r.evidence["got"] is None
        assert r.evidence["interpretation"] is None


async def test_solver_is_a_pure_function_of_the_conversation() -> None:
    (rollout,) = await gymbus.run(env_for("hard"), gymbus.OracleModel(), n=1, seed=5)
    messages = list(rollout.messages)
    assert rollout.turns == 4  # accounts, statements, rates, answer
    solver = LedgerSignsSolver()
    for i, message in enumerate(messages):
        if isinstance(message, AssistantMessage):
            replay = solver.next_message(Transcript(messages[:i]))
            assert replay == message.model_copy(update={"generation": None})


# --- the capability: the conventional answer never scores -----------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_the_conventional_answer_scores_zero_on_every_seed(difficulty: Difficulty) -> None:
    env = env_for(difficulty)

    def conventional(request: ModelRequest) -> str:
        return f"The balance is {data_of(env.task(request.episode.seed)).conventional_answer}"

    rollouts = await gymbus.run(env, gymbus.FunctionModel(conventional), n=30)
    assert len(rollouts) == 30
    for r in rollouts:
        assert (r.status, r.reward) == ("scored", 0.0)
        assert r.evidence["got"] == r.evidence["conventional_answer"]
        assert r.scores == {"answer_correct": 0.0} | {rule: 0.0 for rule in RULES[difficulty]}
        assert set(r.evidence["interpretation"].values()) == {"conventional"}


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(30))
async def test_breaking_any_rule_scores_zero_and_is_diagnosed(
    difficulty: Difficulty, seed: int
) -> None:
    spec = spec_for(difficulty, seed)
    data = data_of(spec.task)
    for answer, followed in data.interpretations.items():
        score = await score_reply(spec, answer)
        assert score.reward == (1.0 if all(followed.values()) else 0.0)
        assert score.scores == {"answer_correct": score.reward} | {
            rule: float(ok) for rule, ok in followed.items()
        }


async def test_an_answer_matching_no_rule_mix_has_no_interpretation() -> None:
    spec = spec_for("medium", 2)
    answer = Decimal(data_of(spec.task).answer) + Decimal("100.00")
    score = await score_reply(spec, f"{answer}")
    assert score.reward == 0.0
    assert score.evidence["interpretation"] is None
    assert set(score.scores.values()) == {0.0}


@pytest.mark.parametrize(
    ("reply", "reward"),
    [
        ("{answer}", 1.0),
        ("Balance (house convention): **${answer}**", 1.0),
        ("{unicode_minus}", 1.0),
        ("{answer}1", 0.0),  # more precision than cents is not rounded for you
        ("{negated}", 0.0),
    ],
)
async def test_final_answer_formats(reply: str, reward: float) -> None:
    spec = spec_for("easy", 4)
    answer = data_of(spec.task).answer
    negated = answer[1:] if answer.startswith("-") else f"-{answer}"
    text = reply.format(answer=answer, unicode_minus=answer.replace("-", "−"), negated=negated)
    assert (await score_reply(spec, text)).reward == reward


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-1234.56", "-1234.56"),
        ("The balance is $1,234.5.", "1234.50"),
        ("−3.10", "-3.10"),
        ("-$3.10", "-3.10"),
        ("$-3.10", "-3.10"),
        ("42", "42.00"),
        ("12.345", "12.345"),
        ("-0.00", "0.00"),
        ("ACC-1234", None),
        ("first 3.00 then 4.00", "4.00"),
        ("I can't help with that.", None),
    ],
)
def test_ledger_amount(text: str, expected: str | None) -> None:
    assert ledger_amount(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ACC-1234: -512.30", "ACC-1234: -512.30"),
        ("The top account is ACC-1234 with a balance of $512.30.", "ACC-1234: 512.30"),
        ("-512.30 (ACC-1234)", "ACC-1234: -512.30"),
        ("ACC-1234", None),
        ("512.30", None),
    ],
)
def test_account_and_amount(text: str, expected: str | None) -> None:
    assert account_and_amount(text) == expected


# --- tools ----------------------------------------------------------------------------------


async def call(spec: EpisodeSpec, name: str, **arguments: Any) -> Any:
    result = await spec.tools[name](arguments)
    assert isinstance(result, str)
    return orjson.loads(result)


async def test_tools_serve_the_bank_feed() -> None:
    spec = spec_for("medium", 1)
    data = data_of(spec.task)
    assert data.account_id is not None
    accounts = await call(spec, "list_accounts")
    assert data.account_id in [a["account_id"] for a in accounts["accounts"]]
    feed = await call(spec, "list_transactions", account_id=data.account_id, month=data.month)
    assert "money in is positive" in feed["amounts"]
    assert feed["transactions"] == [
        tx.model_dump() for tx in data.world.transactions[data.account_id][data.month]
    ]
    tx = next(t for t in feed["transactions"] if t["currency"] != "USD")
    rate = await call(spec, "get_exchange_rate", currency=tx["currency"], date=tx["date"])
    assert rate["usd_per_unit"] == data.world.rates[tx["currency"]][tx["date"]]


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("list_transactions", {"account_id": "ACC-0", "month": "2024-03"}, "no account 'ACC-0'"),
        ("get_exchange_rate", {"currency": "USD", "date": "2024-03-01"}, "need no conversion"),
        ("get_exchange_rate", {"currency": "XYZ", "date": "2024-03-01"}, "no rates for 'XYZ'"),
    ],
)
async def test_unknown_ids_are_tool_input_errors(
    name: str, arguments: dict[str, Any], message: str
) -> None:
    spec = spec_for("medium", 0)
    with pytest.raises(ToolInputError, match=message):
        await spec.tools[name](arguments)


async def test_unknown_months_and_dates_are_tool_input_errors() -> None:
    spec = spec_for("medium", 0)
    data = data_of(spec.task)
    account = next(iter(data.world.accounts))
    with pytest.raises(ToolInputError, match="no statement for '1999-01'; available: "):
        await spec.tools["list_transactions"]({"account_id": account, "month": "1999-01"})
    currency = next(iter(data.world.rates))
    with pytest.raises(ToolInputError, match=f"no {currency} rate for '1999-01-01'"):
        await spec.tools["get_exchange_rate"]({"currency": currency, "date": "1999-01-01"})
    easy = spec_for("easy", 0)
    with pytest.raises(ToolInputError, match="every entry is in USD"):
        await easy.tools["get_exchange_rate"]({"currency": "EUR", "date": "2024-03-01"})


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("list_transactions", {"account_id": "ACC-1"}),
        ("list_transactions", {"account_id": "ACC-1", "month": "March"}),
        ("get_exchange_rate", {"currency": "EUR", "date": "14/03/2024"}),
        ("list_accounts", {"all": True}),
    ],
)
async def test_bad_arguments_are_rejected_by_the_schema(
    name: str, arguments: dict[str, Any]
) -> None:
    spec = spec_for("easy", 0)
    with pytest.raises(ToolArgumentsError, match=f"invalid arguments for '{name}'"):
        await spec.tools[name](arguments)
