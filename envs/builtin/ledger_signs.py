"""``ledger-signs``: report a balance under house ledger rules that go against convention
(capability: counterintuitive instruction following).

The transaction feed is a bank statement (money in positive, money out negative); the
house ledger writes debits positive and credits negative, so its balance (debits minus
credits) is the opposite of the feed's sum. Medium adds foreign-currency entries converted
with daily rates and rounded to cents half DOWN (the world is built so an exact half cent
occurs); hard asks for the "top" account, which the house defines as the one with the
LOWEST balance, so every account must be totalled.

Verifier: exact match of the answer (``-1234.56``; hard ``ACC-1234: -1234.56``), with
diagnostic sub-scores, one per house rule, naming which rules the answer followed (the
world is built so the answers under every mix of house and conventional rules differ).
The conventional answer (feed sign, half up, highest balance) never scores. Null check:
the null model's refusal contains no amount, so it scores 0.0.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from gymbus.envs.base import Environment
from gymbus.envs.builtin.ledger_data import (
    LedgerTask,
    LedgerWorld,
    Transaction,
    balance,
    generate,
    house_rules,
    money,
)
from gymbus.envs.builtin.recorded_calls import CallFailedError, CallsPendingError, RecordedCalls
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers import ExactMatchVerifier, SubScore, final_answer
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolInputError
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AssistantMessage, SystemMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import FunctionTool, Toolbox, ToolSpec
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode

__all__ = [
    "LedgerSigns",
    "LedgerSignsSolver",
    "RuleDiagnosis",
    "account_and_amount",
    "ledger_amount",
    "ledger_tools",
    "question",
]

_SYSTEM_PROMPT = (
    "You are the bookkeeping assistant of a small company. The tools give read-only access "
    "to its bank transaction feed and exchange rates. Report figures by the house ledger "
    "rules below, even where they differ from common practice:\n"
)
_ACCOUNT = re.compile(r"\bACC-[0-9]+\b")
# An amount: optional minus (ASCII or U+2212) and dollar sign, digits (1,234 grouping
# allowed), decimals. Not glued to a word, an id (ACC-1234) or another number.
_AMOUNT = re.compile(
    r"(?<![\w.,\-−])([-−]?)\$?([-−]?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(\.[0-9]+)?(?!\w|[.,][0-9])"
)
_MONTH_NAMES = ("", "January", "February", "March", "April", "May", "June", "July",
                "August", "September", "October", "November", "December")  # fmt: skip


def ledger_amount(text: str) -> str | None:
    """The last amount in ``text``, canonical with two decimals (``"$1,234.5"`` →
    ``"1234.50"``, a U+2212 minus sign → ``-``); an amount with more precision than cents is
    kept as written (it never equals an answer). ``None`` when there is none."""
    matches = _AMOUNT.findall(text)
    if not matches:
        return None
    sign1, sign2, digits, decimals = matches[-1]
    value = Decimal(digits.replace(",", "") + decimals)
    negative = bool(sign1 or sign2) and value != 0
    shown = money(value) if value == value.quantize(Decimal("0.01")) else f"{value:f}"
    return f"-{shown}" if negative else shown


def account_and_amount(text: str) -> str | None:
    """``"ACC-1234: -12.30"`` from the last account id and the last amount in ``text``."""
    accounts = _ACCOUNT.findall(text)
    amount = ledger_amount(text)
    if not accounts or amount is None:
        return None
    return f"{accounts[-1]}: {amount}"


def question(month: str, account: str | None, name: str | None) -> str:
    """The user's question: one account's balance, or (``account`` None) the top account."""
    year, number = month.split("-")
    when = f"{_MONTH_NAMES[int(number)]} {year} ({month})"
    if account is None:
        return (
            f"Which of our accounts is the top account for {when}, and what is its balance? "
            "Answer as '<account id>: <balance>', the balance in USD with two decimals and a "
            "leading minus sign if it is negative."
        )
    return (
        f"What is the balance of account {account} ({name}) for {when}? Answer with just the "
        "balance in USD, with two decimals and a leading minus sign if it is negative."
    )


class RuleDiagnosis:
    """Sub-scores, one per house rule: 1.0 when the answer is the one that rule mix gives
    and the rule was followed; all 0.0 when the answer matches no mix (a slip elsewhere).
    Evidence: ``conventional_answer`` and ``interpretation`` (rule → house/conventional)."""

    def __init__(
        self,
        interpretations: dict[str, dict[str, bool]],
        conventional_answer: str,
        extract: Callable[[str], str | None],
    ) -> None:
        self._interpretations = interpretations
        self._conventional = conventional_answer
        self._extract = extract
        self._rules = tuple(next(iter(interpretations.values())))

    def __call__(self, episode: CompletedEpisode) -> SubScore:
        answer = final_answer(episode.transcript)
        got = self._extract(answer.text) if answer is not None else None
        followed = self._interpretations.get(got) if got is not None else None
        return SubScore(
            scores={r: 1.0 if followed and followed[r] else 0.0 for r in self._rules},
            evidence={
                "conventional_answer": self._conventional,
                "interpretation": None
                if followed is None
                else {r: "house" if ok else "conventional" for r, ok in followed.items()},
            },
        )


def _tool(fn: Callable[..., str], description: str, **properties: dict[str, Any]) -> FunctionTool:
    parameters = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return FunctionTool(
        fn, ToolSpec(name=fn.__name__, description=description, parameters=parameters)
    )


def ledger_tools(world: LedgerWorld) -> Toolbox:
    """Read-only tools over ``world``; unknown ids, months, currencies or dates raise
    ToolInputError."""

    def list_accounts() -> str:
        return orjson.dumps(
            {"accounts": [a.model_dump() for a in world.accounts.values()]}
        ).decode()

    def list_transactions(account_id: str, month: str) -> str:
        by_month = world.transactions.get(account_id)
        if by_month is None:
            raise ToolInputError(
                f"no account {account_id!r}; account ids (like 'ACC-1234') come from list_accounts"
            )
        if month not in by_month:
            raise ToolInputError(f"no statement for {month!r}; available: {', '.join(by_month)}")
        entries = [tx.model_dump() for tx in by_month[month]]
        view = "bank statement: money in is positive, money out negative, in the entry's currency"
        return orjson.dumps(
            {"account_id": account_id, "month": month, "amounts": view, "transactions": entries}
        ).decode()

    def get_exchange_rate(currency: str, date: str) -> str:
        if currency == "USD":
            raise ToolInputError("USD amounts need no conversion")
        by_date = world.rates.get(currency)
        if by_date is None:
            known = ", ".join(world.rates) or "none: every entry is in USD"
            raise ToolInputError(f"no rates for {currency!r}; currencies: {known}")
        if date not in by_date:
            raise ToolInputError(f"no {currency} rate for {date!r}; dates look like 2024-03-14")
        rate = {"currency": currency, "date": date, "usd_per_unit": by_date[date]}
        return orjson.dumps(rate).decode()

    return Toolbox(
        [
            _tool(list_accounts, "The company's bank accounts: id and name."),
            _tool(
                list_transactions,
                "An account's transactions for a month, from the bank feed.",
                account_id={"type": "string", "description": "An id like 'ACC-1234'."},
                month={
                    "type": "string",
                    "pattern": "^[0-9]{4}-[0-9]{2}$",
                    "description": "A month, like '2024-03'.",
                },
            ),
            _tool(
                get_exchange_rate,
                "USD per unit of a currency on a date.",
                currency={"type": "string", "description": "A code, like 'EUR'."},
                date={
                    "type": "string",
                    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                    "description": "A date, like '2024-03-14'.",
                },
            ),
        ]
    )


class LedgerSigns(Environment):
    name = "ledger-signs"
    description = (
        "Report an account's monthly balance (hard: the 'top' account, defined as the LOWEST "
        "balance) under house ledger rules that invert the bank-statement sign convention "
        "(medium and hard: foreign entries rounded half down). Reward: exact match; "
        "sub-scores say which house rules the answer followed."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-step",),
        core_capabilities=("counterintuitive-instruction-following",),
        knowledge_domain="finance",
        task_type="bookkeeping",
        verification_method="exact-match",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, LedgerTask)
        extract = ledger_amount if data.account_id is not None else account_and_amount
        name = data.world.accounts[data.account_id].name if data.account_id else None
        diagnosis = RuleDiagnosis(data.interpretations, data.conventional_answer, extract)
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content=_SYSTEM_PROMPT + house_rules(data.difficulty)),
                UserMessage(
                    content=question(data.month, data.account_id, name), author="environment"
                ),
            ),
            tools=ledger_tools(data.world),
            verifier=ExactMatchVerifier(data.answer, extract=extract, sub_scorers=(diagnosis,)),
            solver=LedgerSignsSolver(),
            limits=Limits(max_turns=16),
            metadata=self.metadata.model_dump(mode="json"),
            state=data.world,
        )


_MONTH = re.compile(r"\(([0-9]{4}-[0-9]{2})\)")


class LedgerSignsSolver:
    """The reference solver: reads the house rules and the question, fetches the
    transactions (every account's for the top account) and the rates of foreign entries,
    and applies the rules. A pure function of the conversation."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        rules = next((m.text for m in conversation if isinstance(m, SystemMessage)), "")
        asked = next((m.text for m in conversation if isinstance(m, UserMessage)), "")
        month, account = _MONTH.search(asked), _ACCOUNT.search(asked)
        if month is None:
            return AssistantMessage(content="Which month do you mean?")
        calls = RecordedCalls(conversation)
        try:
            answer = self._solve(calls, rules, month.group(1), account and account.group(0))
        except CallsPendingError as pending:
            return calls.message(pending.requests)
        except CallFailedError as failed:
            return AssistantMessage(content=f"I could not work this out: {failed}")
        return AssistantMessage(content=answer)

    @staticmethod
    def _solve(calls: RecordedCalls, rules: str, month: str, account: str | None) -> str:
        if account is None:
            (listing,) = calls.need(("list_accounts", {}))
            accounts = [a["account_id"] for a in listing["accounts"]]
        else:
            accounts = [account]
        statements = calls.need(
            *[("list_transactions", {"account_id": a, "month": month}) for a in accounts]
        )
        entries = {
            s["account_id"]: tuple(Transaction.model_validate(tx) for tx in s["transactions"])
            for s in statements
        }
        foreign = sorted(
            {
                (tx.currency, tx.date)
                for txs in entries.values()
                for tx in txs
                if tx.currency != "USD"
            }
        )
        quotes = calls.need(
            *[("get_exchange_rate", {"currency": c, "date": d}) for c, d in foreign]
        )
        rates: dict[str, dict[str, str]] = {}
        for quote in quotes:
            rates.setdefault(quote["currency"], {})[quote["date"]] = quote["usd_per_unit"]
        half_down = "HALF DOWN" in rules
        balances = {
            a: balance(txs, rates, house_sign=True, half_down=half_down)
            for a, txs in entries.items()
        }
        if account is not None:
            return money(balances[account])
        lowest = "LOWEST" in rules
        top = (min if lowest else max)(balances, key=lambda a: balances[a])
        return f"{top}: {money(balances[top])}"
