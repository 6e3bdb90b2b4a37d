"""State-check verifiers: score an episode by what it left behind in the environment.

A :class:`StateCheckVerifier` runs named checks over the episode's environment-side state
(``CompletedEpisode.state``: the object the tools acted on) and, where a check needs it,
over the transcript. Each check gives a sub-score (1.0 pass / 0.0 fail) and evidence; the
reward is 1.0 when every check that counts passes, else 0.0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gymbus.runtime.errors import VerifierError
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Score

__all__ = ["CheckResult", "StateCheck", "StateCheckVerifier", "TranscriptCheck"]

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check's verdict and the (JSON-able) evidence behind it: expected, got, …"""

    passed: bool
    evidence: Mapping[str, Any] = field(default_factory=dict)


Outcome = bool | CheckResult


@dataclass(frozen=True, slots=True)
class StateCheck(Generic[S]):
    """A named predicate over the state after the episode. ``counts=False`` makes it
    evidence only (its sub-score is reported but does not change the reward)."""

    name: str
    predicate: Callable[[S], Outcome]
    description: str = ""
    counts: bool = True


@dataclass(frozen=True, slots=True)
class TranscriptCheck:
    """A named predicate over the transcript, for what the state cannot show (whether the
    policy asked before acting, what it told the user)."""

    name: str
    predicate: Callable[[Transcript], Outcome]
    description: str = ""
    counts: bool = True


class StateCheckVerifier(Generic[S]):
    """Reward 1.0 when every counting check passes, else 0.0. Sub-scores: one per check,
    by name. Evidence: per check ``{"passed": …, "description": …, **its evidence}``, and
    ``failed_checks``. A state that is not a ``state_type`` is a wiring bug of the
    environment: :class:`~gymbus.runtime.errors.VerifierError`, never a reward of 0."""

    __slots__ = ("_checks", "_state_type")

    def __init__(
        self, state_type: type[S], checks: Sequence[StateCheck[S] | TranscriptCheck]
    ) -> None:
        names = [c.name for c in checks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"check names must be unique; repeated: {', '.join(duplicates)}")
        if "failed_checks" in names:
            raise ValueError("'failed_checks' is reserved for the evidence; rename the check")
        if not any(c.counts for c in checks):
            raise ValueError("a StateCheckVerifier needs at least one check that counts")
        self._state_type = state_type
        self._checks = tuple(checks)

    @property
    def checks(self) -> tuple[StateCheck[S] | TranscriptCheck, ...]:
        return self._checks

    def score(self, episode: CompletedEpisode) -> Score:
        """The verdict, computed synchronously (checks are cheap and pure)."""
        state = episode.state
        if not isinstance(state, self._state_type):
            raise VerifierError(
                f"episode {episode.episode_id!r}: expected state of type "
                f"{self._state_type.__name__}, got {type(state).__name__}"
            )
        scores: dict[str, float] = {}
        evidence: dict[str, Any] = {}
        failed: list[str] = []
        for check in self._checks:
            outcome = (
                check.predicate(episode.transcript)
                if isinstance(check, TranscriptCheck)
                else check.predicate(state)
            )
            result = outcome if isinstance(outcome, CheckResult) else CheckResult(bool(outcome))
            scores[check.name] = 1.0 if result.passed else 0.0
            evidence[check.name] = {
                "passed": result.passed,
                **({"description": check.description} if check.description else {}),
                **result.evidence,
            }
            if check.counts and not result.passed:
                failed.append(check.name)
        evidence["failed_checks"] = failed
        return Score(reward=0.0 if failed else 1.0, scores=scores, evidence=evidence)

    async def verify(self, episode: CompletedEpisode) -> Score:
        return self.score(episode)
