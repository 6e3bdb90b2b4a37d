"""The ledger-signs world, the house rules and the seeded generator.

A world has 3-4 accounts with two months of transactions each, as a bank feed shows them
(money in positive, money out negative, in the transaction's currency), and daily USD
exchange rates. The house rules go against convention: debits are positive and credits
negative (balance = debits minus credits); medium adds foreign-currency entries rounded to
cents half DOWN; hard adds a ranking where the "top" account has the LOWEST balance.

Every rule changes the answer by construction: balances are far from zero, every account
(medium, hard) has foreign debits that convert to an exact half cent with an odd cent digit
(half down differs from half up and from half-to-even), and the answers under every mix of
house and conventional rules are distinct, so an answer tells which rules were followed.
"""

from __future__ import annotations

import calendar
import itertools
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal
from typing import get_args

from gymbus.envs.base import Difficulty
from gymbus.runtime.messages import Frozen

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)
CENT = Decimal("0.01")
RULES: dict[Difficulty, tuple[str, ...]] = {
    "easy": ("sign_convention",),
    "medium": ("sign_convention", "rounding"),
    "hard": ("sign_convention", "rounding", "ranking"),
}
"""The house rules each difficulty adds (also the diagnostic sub-score names)."""


class Transaction(Frozen):
    transaction_id: str
    date: str  # YYYY-MM-DD
    description: str
    amount: str  # bank-statement view: money in positive, money out negative
    currency: str


class Account(Frozen):
    account_id: str
    name: str


class LedgerWorld(Frozen):
    accounts: dict[str, Account]
    transactions: dict[str, dict[str, tuple[Transaction, ...]]]  # account → month → entries
    rates: dict[str, dict[str, str]]  # currency → date → USD per unit


class LedgerTask(Frozen):
    """``Task.data`` of a ledger-signs task: the world, the question, the answer key, and
    the answer under every mix of house (True) and conventional (False) rules."""

    difficulty: Difficulty
    world: LedgerWorld
    month: str  # YYYY-MM
    account_id: str | None  # the asked account (easy, medium); None: find the top one
    answer: str
    conventional_answer: str
    interpretations: dict[str, dict[str, bool]]  # answer → rule → followed the house rule


def usd(tx: Transaction, rates: dict[str, dict[str, str]], *, half_down: bool) -> Decimal:
    """``tx`` in USD, bank-statement sign; a foreign amount's magnitude is rounded to cents
    half down (house) or half up (convention)."""
    amount = Decimal(tx.amount)
    if tx.currency == "USD":
        return amount
    converted = abs(amount) * Decimal(rates[tx.currency][tx.date])
    rounded = converted.quantize(CENT, rounding=ROUND_HALF_DOWN if half_down else ROUND_HALF_UP)
    return rounded if amount > 0 else -rounded


def balance(
    entries: tuple[Transaction, ...],
    rates: dict[str, dict[str, str]],
    *,
    house_sign: bool,
    half_down: bool,
) -> Decimal:
    """The month's balance: debits minus credits (house sign) or credits minus debits."""
    total = sum((usd(tx, rates, half_down=half_down) for tx in entries), Decimal("0.00"))
    return -total if house_sign else total


def money(value: Decimal) -> str:
    return f"{value.quantize(CENT):f}"


def house_rules(difficulty: Difficulty) -> str:
    """The house rules as the system prompt states them."""
    rules = [
        "Signs: in this ledger a debit (money leaving the account: purchases, fees, payroll, "
        "withdrawals, transfers out) is POSITIVE and a credit (money coming in: customer "
        "payments, refunds, interest, transfers in) is NEGATIVE. That is the opposite of "
        "the bank-statement view the transaction feed uses.",
        "Balance: an account's balance for a month is the sum of its signed entries for "
        "that month, that is debits minus credits.",
    ]
    if difficulty != "easy":
        rules.append(
            "Foreign currency: convert each non-USD entry to USD with get_exchange_rate "
            "(USD per unit, for the entry's currency and date) and round the converted amount "
            "to cents HALF DOWN: an exact half cent goes down (13.475 becomes 13.47), "
            "anything above half goes up (13.4751 becomes 13.48). Round each entry on its "
            "own, before applying its sign and summing."
        )
    if difficulty == "hard":
        rules.append(
            "Ranking: the 'top' account for a month is the one with the LOWEST balance "
            "under these rules."
        )
    return "\n".join(f"{i}. {rule}" for i, rule in enumerate(rules, start=1))


@dataclass(frozen=True, slots=True)
class _Size:
    accounts: int
    entries: tuple[int, int]  # per account and month
    foreign: tuple[int, int]  # foreign-currency entries per account and month
    ties: tuple[int, int]  # of which debits converting to an exact half cent


_SIZES: dict[Difficulty, _Size] = {
    "easy": _Size(accounts=3, entries=(6, 9), foreign=(0, 0), ties=(0, 0)),
    "medium": _Size(accounts=3, entries=(8, 11), foreign=(2, 4), ties=(1, 2)),
    "hard": _Size(accounts=4, entries=(6, 9), foreign=(2, 3), ties=(1, 2)),
}

_ACCOUNT_NAMES = ("Operating checking", "Payroll account", "Travel card", "Marketing card",
                  "Reserve savings", "Vendor payments")  # fmt: skip
_MERCHANTS = ("Office Depot", "Staples", "Lufthansa", "Hilton", "AWS", "Figma", "Uber",
              "Deutsche Bahn", "Zoom", "WeWork", "FedEx", "Adobe")  # fmt: skip
_DEBITS = (("Card purchase: {m}", 5, 900), ("Payroll run", 2000, 9000),
           ("Monthly service fee", 5, 40), ("Wire transfer out: {m}", 200, 5000),
           ("ATM withdrawal", 20, 400))  # fmt: skip
_CREDITS = (("Customer payment: INV-{n}", 100, 6000), ("Refund: {m}", 5, 300),
            ("Interest earned", 1, 30), ("Transfer in from savings", 200, 3000))  # fmt: skip
# currency → range of its USD rate, in 1/10000 USD per unit
_CURRENCIES = {"EUR": (10600, 11200), "GBP": (12400, 13000), "CHF": (10900, 11500),
               "CAD": (7200, 7600)}  # fmt: skip


def _dates(month: str) -> list[str]:
    year, number = (int(part) for part in month.split("-"))
    days = calendar.monthrange(year, number)[1]
    return [f"{month}-{day:02d}" for day in range(1, days + 1)]


def _rate(units: int) -> str:
    return str(Decimal(units).scaleb(-4))  # 10875 → "1.0875"


def _tie(rng: random.Random, currency: str) -> tuple[str, int]:
    """A rate and the cents ``c`` of a foreign amount whose USD value ``c * rate`` ends in
    exactly half a cent after an odd cent digit (so half down ≠ half up = half to even)."""
    low, high = _CURRENCIES[currency]
    while True:
        rate = rng.randrange(low // 125 + 1, high // 125) * 125  # …125, …250: ties exist
        start = rng.randint(1000, 60000)
        for c in range(start, start + 2000):
            if (c * rate) % 10000 == 5000 and (c * rate // 10000) % 2 == 1:
                return _rate(rate), c


def _entries(
    rng: random.Random, size: _Size, month: str, rates: dict[str, dict[str, str]], ids: list[int]
) -> tuple[Transaction, ...]:
    dates, currencies = _dates(month), list(rates)
    n = rng.randint(*size.entries)
    n_foreign = rng.randint(*size.foreign)
    n_ties = rng.randint(*size.ties)
    entries = []
    for i in range(n):
        date = rng.choice(dates)
        currency = rng.choice(currencies) if i < n_foreign else "USD"
        if i < n_ties:  # a foreign card purchase landing on an exact half cent
            rates[currency][date], cents = _tie(rng, currency)
            cents = -cents
            text = f"Card purchase: {rng.choice(_MERCHANTS)}"
        else:
            debit = rng.random() < 0.6
            template, low, high = rng.choice(_DEBITS if debit else _CREDITS)
            cents = rng.randint(low * 100, high * 100) * (-1 if debit else 1)
            text = template.format(m=rng.choice(_MERCHANTS), n=rng.randint(1000, 9999))
        entries.append(
            Transaction(
                transaction_id=f"TXN-{ids.pop()}",
                date=date,
                description=text,
                amount=money(Decimal(cents) / 100),
                currency=currency,
            )
        )
    return tuple(sorted(entries, key=lambda tx: (tx.date, tx.transaction_id)))


def generate(seed: int, difficulty: Difficulty) -> LedgerTask:
    """The task for ``seed`` at ``difficulty``; draws only from ``random.Random(seed)``.
    A world whose answers are not all distinct is redrawn from the same generator."""
    rng = random.Random(seed)
    while True:
        task = _attempt(rng, difficulty)
        if task is not None:
            return task


def _attempt(rng: random.Random, difficulty: Difficulty) -> LedgerTask | None:
    size = _SIZES[difficulty]
    number = rng.randint(2, 12)
    month, previous = f"2024-{number:02d}", f"2024-{number - 1:02d}"
    rates: dict[str, dict[str, str]] = {}
    if size.foreign[1]:
        for currency in sorted(rng.sample(sorted(_CURRENCIES), 2)):
            low, high = _CURRENCIES[currency]
            rates[currency] = {d: _rate(rng.randint(low, high))
                               for d in _dates(previous) + _dates(month)}  # fmt: skip
    ids = rng.sample(range(10000, 100000), 200)
    accounts: dict[str, Account] = {}
    transactions: dict[str, dict[str, tuple[Transaction, ...]]] = {}
    for number, name in zip(rng.sample(range(1000, 10000), size.accounts),
                            rng.sample(_ACCOUNT_NAMES, size.accounts), strict=True):  # fmt: skip
        account = Account(account_id=f"ACC-{number}", name=name)
        accounts[account.account_id] = account
        transactions[account.account_id] = {
            m: _entries(rng, size, m, rates, ids) for m in (previous, month)
        }
    world = LedgerWorld(accounts=accounts, transactions=transactions, rates=rates)
    asked = None if difficulty == "hard" else rng.choice(list(accounts))
    rules = RULES[difficulty]
    interpretations: dict[str, dict[str, bool]] = {}
    for followed in itertools.product((True, False), repeat=len(rules)):
        house = dict(zip(rules, followed, strict=True))
        answer = _answer(world, month, asked, house)
        if answer is None or answer in interpretations:
            return None  # ambiguous: some answer would not tell which rules were followed
        interpretations[answer] = house
    answers = list(interpretations)  # all house rules first, all conventional last
    correct, conventional = answers[0], answers[-1]
    return LedgerTask(difficulty=difficulty, world=world, month=month, account_id=asked,
                      answer=correct, conventional_answer=conventional,
                      interpretations=interpretations)  # fmt: skip


def _answer(
    world: LedgerWorld, month: str, asked: str | None, house: dict[str, bool]
) -> str | None:
    """The answer under the ``house`` (True) / conventional (False) choice of each rule;
    ``None`` when a balance is within a dollar of zero or the ranking has a tie."""
    balances = {
        account_id: balance(
            by_month[month],
            world.rates,
            house_sign=house["sign_convention"],
            half_down=house.get("rounding", True),
        )
        for account_id, by_month in world.transactions.items()
    }
    if any(abs(b) < 1 for b in balances.values()):
        return None
    if asked is not None:
        return money(balances[asked])
    ordered = sorted(balances.items(), key=lambda kv: kv[1])
    if len({b for _, b in ordered}) < len(ordered):
        return None
    top, value = ordered[0] if house["ranking"] else ordered[-1]
    return f"{top}: {money(value)}"
