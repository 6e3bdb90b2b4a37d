"""What a :class:`~gymbus.adapters.testing.FaultyModelServer` injects: the fault kinds,
a plan of per-request probabilities, and the counts of what the server did."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from gymbus.runtime.errors import ConfigError

__all__ = ["FAULT_KINDS", "FaultCounts", "FaultKind", "FaultPlan", "Outcome"]

FaultKind = Literal[
    "status_429",
    "status_500",
    "status_502",
    "status_503",
    "reset",
    "hang",
    "truncated",
    "invalid_json",
    "missing_choices",
    "no_message",
    "bad_tool_args",
    "oversize",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
Outcome = Literal["text", "tool_calls", "fault", "bad_request", "policy_error"]


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Per-request probability of each :data:`FaultKind` (together at most 1; a request
    suffers at most one). ``retry_after`` is what a 429 asks the client to wait, in
    seconds; ``oversize_chars`` is the length of an oversize answer's content."""

    status_429: float = 0.0
    status_500: float = 0.0
    status_502: float = 0.0
    status_503: float = 0.0
    reset: float = 0.0
    hang: float = 0.0
    truncated: float = 0.0
    invalid_json: float = 0.0
    missing_choices: float = 0.0
    no_message: float = 0.0
    bad_tool_args: float = 0.0
    oversize: float = 0.0
    retry_after: float = 0.005
    oversize_chars: int = 1 << 20

    def __post_init__(self) -> None:
        for kind in FAULT_KINDS:
            if not 0.0 <= getattr(self, kind) <= 1.0:
                raise ConfigError(f"fault rate {kind} must be in [0, 1], got {getattr(self, kind)}")
        if self.rate > 1.0 + 1e-9:
            raise ConfigError(f"fault rates add up to {self.rate:.3f}, more than 1")
        if self.retry_after < 0 or self.oversize_chars < 1:
            raise ConfigError("retry_after must not be negative; oversize_chars must be >= 1")

    @classmethod
    def uniform(
        cls,
        rate: float,
        kinds: tuple[FaultKind, ...] = FAULT_KINDS,
        *,
        retry_after: float = 0.005,
        oversize_chars: int = 1 << 20,
    ) -> FaultPlan:
        """``rate`` spread evenly over ``kinds`` (default: all of them)."""
        if not kinds:
            raise ConfigError("a uniform fault plan needs at least one kind")
        rates: dict[str, Any] = {kind: rate / len(kinds) for kind in kinds}
        return cls(**rates, retry_after=retry_after, oversize_chars=oversize_chars)

    @property
    def rate(self) -> float:
        """The probability that a request suffers some fault."""
        return math.fsum(getattr(self, kind) for kind in FAULT_KINDS)

    def draw(self, rng: random.Random) -> FaultKind | None:
        """The fault for one request (one ``rng.random()`` draw), or None."""
        x = rng.random()
        total = 0.0
        for kind in FAULT_KINDS:
            total += getattr(self, kind)
            if x < total:
                return kind
        return None


@dataclass(slots=True)
class FaultCounts:
    """What the server did. Every request has one outcome: a normal answer (``text`` or
    ``tool_calls``), ``fault`` (then also counted by kind in ``faults``),
    ``bad_request`` (not a request this server reads: 400) or ``policy_error``."""

    requests: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    faults: Counter[FaultKind] = field(default_factory=Counter)
