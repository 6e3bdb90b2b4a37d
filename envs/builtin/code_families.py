"""The four families of functions behind ``code-spec``: seeded constants, the prose of
their specs, reference implementations and hidden-test inputs.

``check-digit`` (weighted digit sum, seeded weights and modulus), ``run-length`` (seeded
token layout, run cap and separator), ``step-rounding`` (seeded step and tie rules) and
``calendar`` (a made-up calendar with seeded month lengths). A spec's prose names its
constants; their values are listed beside it.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

__all__ = [
    "FAMILIES",
    "Args",
    "Calendar",
    "CheckDigit",
    "Family",
    "FamilyName",
    "RunLength",
    "StepRounding",
]

FamilyName = Literal["check-digit", "run-length", "step-rounding", "calendar"]
Args = tuple[Any, ...]


class Family(ABC):
    """A family of functions: constants drawn per seed, prose, reference code, inputs."""

    name: ClassVar[FamilyName]
    purpose: ClassVar[str]  # completes "a function that …"
    names: ClassVar[tuple[str, ...]]
    helper_names: ClassVar[tuple[str, ...]]
    signature: ClassVar[str]  # with {name}
    helper_signature: ClassVar[str]
    helper_summary: ClassVar[str]  # with {name}
    helper_keys: ClassVar[frozenset[str]]  # constants that live in the helper's spec
    split_only: ClassVar[frozenset[str]] = frozenset()  # constants only hard specs show
    unsplit_only: ClassVar[frozenset[str]] = frozenset()  # constants hard specs drop
    easy_rule: ClassVar[str]  # the input contract when there is no edge-case rule

    @abstractmethod
    def constants(self, rng: random.Random, edge: bool) -> dict[str, Any]: ...

    def partition(self, c: dict[str, Any], split: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """The constants of the function's spec and of its helper's spec (empty unless
        ``split``)."""
        if not split:
            return {k: v for k, v in c.items() if k not in self.split_only}, {}
        main = {
            k: v for k, v in c.items() if k not in self.helper_keys and k not in self.unsplit_only
        }
        return main, {k: v for k, v in c.items() if k in self.helper_keys}

    # The spec's prose: the main rules (calling ``helper`` where one exists), the edge-case
    # rules (medium and hard), the helper's rules (hard).
    @abstractmethod
    def describe(self, helper: str | None) -> str: ...
    @abstractmethod
    def edge_rules(self, helper: str | None) -> tuple[str, ...]: ...
    @abstractmethod
    def describe_helper(self) -> str: ...

    # Reference implementations over the constants of the function and its helper merged;
    # ``run`` raises ValueError where the spec says so.
    @abstractmethod
    def run(self, c: dict[str, Any], *args: Any) -> Any: ...
    @abstractmethod
    def run_helper(self, c: dict[str, Any], *args: Any) -> Any: ...

    # Test inputs: one call's arguments (``edge``: exercising the edge-case rule), and a
    # handful of calls for the helper.
    @abstractmethod
    def inputs(self, rng: random.Random, c: dict[str, Any], edge: bool) -> Args: ...
    @abstractmethod
    def helper_inputs(self, rng: random.Random, c: dict[str, Any]) -> list[Args]: ...


class CheckDigit(Family):
    name = "check-digit"
    purpose = "computes the check digit of an account number"
    names = ("check_digit", "control_digit", "account_check", "checksum_digit")
    helper_names = ("digit_weight", "position_weight")
    signature = "{name}(number: str) -> int"
    helper_signature = "{name}(position: int) -> int"
    helper_summary = "Weight of a digit position, used by {name}."
    helper_keys = frozenset({"WEIGHTS"})
    easy_rule = "`number` consists of ASCII digits only, at least one."

    def constants(self, rng: random.Random, edge: bool) -> dict[str, Any]:
        weights = [rng.randint(1, 9) for _ in range(rng.randint(2, 4))]
        weights[0] = rng.choice([w for w in range(2, 10) if w != weights[-1]])
        c: dict[str, Any] = {
            "WEIGHTS": weights,
            "MODULUS": rng.choice((7, 10, 11, 13)),
            "COMPLEMENT": rng.random() < 0.5,
        }
        if edge:
            c["SEPARATORS"] = "".join(rng.sample(" -./", 2))
        return c

    def describe(self, helper: str | None) -> str:
        weight = f"`{helper}(i)`" if helper else "WEIGHTS[i % len(WEIGHTS)]"
        return (
            "Returns the check digit of `number` as an int. Read the decimal digits of "
            "`number` from right to left; the digit at position i (i = 0 for the rightmost "
            f"digit) is multiplied by {weight}. Let r be the sum of these products modulo "
            "MODULUS. If COMPLEMENT is true the result is (MODULUS - r) % MODULUS, "
            "otherwise it is r."
        )

    def edge_rules(self, helper: str | None) -> tuple[str, ...]:
        return (
            "Characters that appear in SEPARATORS are skipped.",
            "Any other character that is not an ASCII digit raises ValueError, and so does "
            "a `number` without any digit.",
        )

    def describe_helper(self) -> str:
        return (
            "Returns the weight of the digit at `position` (0 = the rightmost digit): "
            "WEIGHTS[position % len(WEIGHTS)]."
        )

    def run(self, c: dict[str, Any], *args: Any) -> Any:
        digits = []
        for char in args[0]:
            if char in "0123456789":
                digits.append(int(char))
            elif char not in c.get("SEPARATORS", ""):
                raise ValueError(char)
        if not digits:
            raise ValueError("no digits")
        total = sum(d * self.run_helper(c, i) for i, d in enumerate(reversed(digits)))
        r = total % c["MODULUS"]
        return (c["MODULUS"] - r) % c["MODULUS"] if c["COMPLEMENT"] else r

    def run_helper(self, c: dict[str, Any], *args: Any) -> Any:
        weights: list[int] = c["WEIGHTS"]
        return weights[args[0] % len(weights)]

    def inputs(self, rng: random.Random, c: dict[str, Any], edge: bool) -> Args:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
        if not edge:
            return (digits,)
        kind = rng.randrange(4)
        if kind == 0:  # a character that is neither a digit nor a separator
            bad = rng.choice("xX#_")
            i = rng.randint(0, len(digits))
            return (digits[:i] + bad + digits[i:],)
        if kind == 1:  # separators only
            return ("".join(rng.choice(c["SEPARATORS"]) for _ in range(rng.randint(0, 3))),)
        chars = list(digits)
        for _ in range(rng.randint(1, 3)):
            chars.insert(rng.randint(0, len(chars)), rng.choice(c["SEPARATORS"]))
        return ("".join(chars),)

    def helper_inputs(self, rng: random.Random, c: dict[str, Any]) -> list[Args]:
        return [(p,) for p in rng.sample(range(12), 5)]


class RunLength(Family):
    name = "run-length"
    purpose = "compresses a string with run-length encoding"
    names = ("rle_encode", "pack_runs", "compress_runs", "encode_runs")
    helper_names = ("encode_piece", "format_run")
    signature = "{name}(text: str) -> str"
    helper_signature = "{name}(char: str, count: int) -> str"
    helper_summary = "One token of the run-length encoding of {name}."
    helper_keys = frozenset({"COUNT_FIRST", "OMIT_ONE"})
    easy_rule = "`text` contains lowercase ASCII letters only."

    def constants(self, rng: random.Random, edge: bool) -> dict[str, Any]:
        c: dict[str, Any] = {
            "COUNT_FIRST": rng.random() < 0.5,
            "OMIT_ONE": rng.random() < 0.5,
            "MAX_RUN": rng.randint(3, 9),
            "SEPARATOR": rng.choice(("", ".", "|", ",", ";", "/")),
        }
        if edge:
            c["CASE_INSENSITIVE"] = True
        return c

    def describe(self, helper: str | None) -> str:
        token = (
            f"`{helper}(char, count)`, where char is the piece's first character and count "
            "its length"
            if helper
            else "its length in decimal and its character, the length first if COUNT_FIRST "
            "is true and after the character otherwise; when OMIT_ONE is true a piece of "
            "length 1 is written as the character alone"
        )
        return (
            "Returns `text` run-length encoded. Split `text` into runs of equal consecutive "
            "characters. A run longer than MAX_RUN characters is cut from the left into "
            "pieces of MAX_RUN characters, the last piece holding the rest. Each piece "
            f"becomes one token: {token}. The tokens are joined with SEPARATOR. An empty "
            "`text` gives an empty string."
        )

    def edge_rules(self, helper: str | None) -> tuple[str, ...]:
        return (
            "When CASE_INSENSITIVE is true, letters are compared ignoring case when forming "
            "runs ('aAa' is one run of 3), and each piece is written with its first "
            "character as it appears in `text`.",
        )

    def describe_helper(self) -> str:
        return (
            "Returns the token for `count` copies of `char`: the count in decimal and the "
            "character, the count first if COUNT_FIRST is true and after the character "
            "otherwise; when OMIT_ONE is true and count is 1 the token is the character alone."
        )

    def run(self, c: dict[str, Any], *args: Any) -> Any:
        text: str = args[0]
        fold = c.get("CASE_INSENSITIVE", False)
        tokens = []
        i = 0
        while i < len(text):
            j = i
            while (
                j < len(text)
                and j - i < c["MAX_RUN"]
                and (text[j].lower() == text[i].lower() if fold else text[j] == text[i])
            ):
                j += 1
            tokens.append(self.run_helper(c, text[i], j - i))
            i = j
        return str(c["SEPARATOR"]).join(tokens)

    def run_helper(self, c: dict[str, Any], *args: Any) -> Any:
        char, count = args
        if count == 1 and c["OMIT_ONE"]:
            return char
        return f"{count}{char}" if c["COUNT_FIRST"] else f"{char}{count}"

    def inputs(self, rng: random.Random, c: dict[str, Any], edge: bool) -> Args:
        letters = rng.sample("abcdefghjkmnpqrstuvwxyz", rng.randint(2, 3))
        text = "".join(
            rng.choice(letters) * rng.randint(1, 2 * c["MAX_RUN"] + 1)
            for _ in range(rng.randint(1, 5))
        )
        if edge:
            text = "".join(ch.upper() if rng.random() < 0.3 else ch for ch in text)
        return (text,)

    def helper_inputs(self, rng: random.Random, c: dict[str, Any]) -> list[Args]:
        return [("a", 1), *((rng.choice("bcxyz"), rng.randint(2, 12)) for _ in range(4))]


class StepRounding(Family):
    name = "step-rounding"
    purpose = "rounds an amount to the nearest step"
    names = ("round_to_step", "snap_amount", "round_amount", "quantize_amount")
    helper_names = ("step_for", "rounding_step")
    signature = "{name}(value: int) -> int"
    helper_signature = "{name}(value: int) -> int"
    helper_summary = "The rounding step that {name} uses for a value."
    helper_keys = frozenset({"STEPS", "LIMITS"})
    split_only = frozenset({"STEPS", "LIMITS"})
    unsplit_only = frozenset({"STEP"})
    easy_rule = "`value` is a non-negative integer."

    def constants(self, rng: random.Random, edge: bool) -> dict[str, Any]:
        steps = sorted(rng.sample((4, 10, 20, 50, 100, 250), 3))
        c: dict[str, Any] = {
            "STEP": steps[1],
            "STEPS": steps,
            "LIMITS": sorted(rng.sample(range(100, 2000, 10), 2)),
            "TIES": rng.choice(("up", "down", "even")),
        }
        if edge:
            c["NEGATIVE_TIES"] = rng.choice([t for t in ("up", "down", "even") if t != c["TIES"]])
        return c

    def describe(self, helper: str | None) -> str:
        step = f"`{helper}(value)`" if helper else "STEP"
        return (
            f"Returns the multiple of {step} nearest to `value`. When `value` lies exactly "
            "halfway between two multiples, TIES decides: 'up' picks the larger multiple, "
            f"'down' the smaller one, 'even' the multiple k * {step} whose k is even."
        )

    def edge_rules(self, helper: str | None) -> tuple[str, ...]:
        return (
            "When `value` is negative, a tie is broken by NEGATIVE_TIES instead of TIES (with "
            "the same meanings: 'up' still picks the larger multiple).",
        )

    def describe_helper(self) -> str:
        return (
            "Returns the rounding step for `value`: STEPS[0] when abs(value) < LIMITS[0], "
            "STEPS[1] when abs(value) < LIMITS[1], and STEPS[2] otherwise."
        )

    def run(self, c: dict[str, Any], *args: Any) -> Any:
        value: int = args[0]
        step = self.run_helper(c, value)
        low = value // step * step
        twice = 2 * (value - low)
        if twice < step:
            return low
        if twice > step:
            return low + step
        ties = c["NEGATIVE_TIES"] if value < 0 and "NEGATIVE_TIES" in c else c["TIES"]
        if ties == "up":
            return low + step
        if ties == "down":
            return low
        return low if (low // step) % 2 == 0 else low + step

    def run_helper(self, c: dict[str, Any], *args: Any) -> Any:
        if "STEP" in c:
            return c["STEP"]
        magnitude = abs(args[0])
        for limit, step in zip(c["LIMITS"], c["STEPS"], strict=False):
            if magnitude < limit:
                return step
        return c["STEPS"][2]

    def inputs(self, rng: random.Random, c: dict[str, Any], edge: bool) -> Args:
        value = rng.randrange(0, 3000)
        if edge or rng.random() < 0.5:  # make it a tie (if it stays in the same step tier)
            step = self.run_helper(c, value)
            tie = value // step * step + step // 2
            if self.run_helper(c, tie) == step:
                value = tie
        return (-value if edge else value,)

    def helper_inputs(self, rng: random.Random, c: dict[str, Any]) -> list[Args]:
        low, high = c["LIMITS"]
        return [(low - 1,), (low,), (high - 1,), (high,), (-rng.randrange(0, 3000),)]


class Calendar(Family):
    name = "calendar"
    purpose = "moves a date on the company calendar by a number of days"
    names = ("shift_date", "advance_date", "move_date", "add_days")
    helper_names = ("month_length", "days_in_month")
    signature = "{name}(month: int, day: int, days: int) -> list[int]"
    helper_signature = "{name}(month: int) -> int"
    helper_summary = "Number of days in a month of the calendar used by {name}."
    helper_keys = frozenset({"MONTH_LENGTHS", "FESTIVAL_DAYS"})
    split_only = frozenset({"MONTHS"})
    easy_rule = "`days` is non-negative and (`month`, `day`) is a valid date."

    def constants(self, rng: random.Random, edge: bool) -> dict[str, Any]:
        lengths = [rng.randint(18, 40) for _ in range(rng.randint(4, 7))]
        c: dict[str, Any] = {"MONTHS": len(lengths), "MONTH_LENGTHS": lengths}
        if edge:
            c["FESTIVAL_DAYS"] = rng.randint(1, 5)
        return c

    def describe(self, helper: str | None) -> str:
        months = (
            f"MONTHS months numbered from 1; month m has `{helper}(m)` days"
            if helper
            else "len(MONTH_LENGTHS) months numbered from 1; month m has MONTH_LENGTHS[m - 1] days"
        )
        return (
            "Returns [month, day]: the date `days` days after the date (`month`, `day`) on "
            f"the company calendar. The year has {months}, numbered from 1. After the last "
            "day of the last month comes day 1 of month 1 again (years are not counted)."
        )

    def edge_rules(self, helper: str | None) -> tuple[str, ...]:
        festival = f"`{helper}(0)`" if helper else "FESTIVAL_DAYS"
        return (
            "After the last day of the last month and before day 1 of month 1 come the "
            f"festival days, written as month 0 with days 1 to {festival}; they are valid "
            "dates for input and output.",
            "A negative `days` moves backwards.",
        )

    def describe_helper(self) -> str:
        return (
            "Returns the number of days in `month`: MONTH_LENGTHS[month - 1] for months 1 to "
            "len(MONTH_LENGTHS), and FESTIVAL_DAYS for month 0 (the festival days)."
        )

    def _year(self, c: dict[str, Any]) -> list[tuple[int, int]]:
        """(month, length) in calendar order."""
        year = [(m, n) for m, n in enumerate(c["MONTH_LENGTHS"], start=1)]
        return [*year, (0, c["FESTIVAL_DAYS"])] if c.get("FESTIVAL_DAYS") else year

    def run(self, c: dict[str, Any], *args: Any) -> Any:
        month, day, days = args
        year = self._year(c)
        start = 0
        for m, length in year:
            if m == month:
                break
            start += length
        total = sum(length for _, length in year)
        ordinal = (start + day - 1 + days) % total
        for m, length in year:
            if ordinal < length:
                return [m, ordinal + 1]
            ordinal -= length
        raise AssertionError("unreachable")

    def run_helper(self, c: dict[str, Any], *args: Any) -> Any:
        month: int = args[0]
        return c["FESTIVAL_DAYS"] if month == 0 else c["MONTH_LENGTHS"][month - 1]

    def inputs(self, rng: random.Random, c: dict[str, Any], edge: bool) -> Args:
        year = self._year(c) if edge else self._year({**c, "FESTIVAL_DAYS": 0})
        month, length = rng.choice(year)
        total = sum(n for _, n in year)
        days = rng.randint(-3 * total, 3 * total) if edge else rng.randint(0, 3 * total)
        return (month, rng.randint(1, length), days)

    def helper_inputs(self, rng: random.Random, c: dict[str, Any]) -> list[Args]:
        return [(0,), *((m,) for m in rng.sample(range(1, c["MONTHS"] + 1), 4))]


FAMILIES: dict[FamilyName, Family] = {
    f.name: f for f in (CheckDigit(), RunLength(), StepRounding(), Calendar())
}
