"""A verifier made of named parts: each part is a verifier of its own, scored on the same
episode, and the reward combines theirs (a weighted mean, or all-or-nothing).

Sub-scores: each part's reward under its name, and each of its sub-scores prefixed by the
name (part ``move`` with sub-score ``right_day`` gives ``move`` and ``move.right_day``).
Evidence: ``mode``, and per part its ``reward``, ``weight`` and its own ``evidence``.

A part that raises is not caught: the exception propagates, so the runtime records a
verifier failure for the episode (never a reward of 0). A part whose reward is not a
number in [0, 1] is a broken verifier too and raises :class:`ValueError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from gymbus.runtime.errors import ConfigError
from gymbus.runtime.verification import CompletedEpisode, Score, Verifier

__all__ = ["CompositeMode", "CompositeVerifier", "Part"]

CompositeMode = Literal["weighted", "all"]
"""``weighted``: the weighted mean of the parts' rewards. ``all``: 1.0 when every part's
reward is 1.0, else 0.0 (weights must be left at 1.0: they would have no effect)."""

_MODES: tuple[str, ...] = get_args(CompositeMode)


@dataclass(frozen=True, slots=True)
class Part:
    """One named part of a :class:`CompositeVerifier`. ``name`` must not contain a dot
    (it prefixes the part's sub-scores as ``name.sub_score``)."""

    name: str
    verifier: Verifier
    weight: float = 1.0


class CompositeVerifier:
    """Scores an episode with every part, in order, and combines the parts' rewards
    according to ``mode`` (which must be given: there is no silent default)."""

    __slots__ = ("_mode", "_parts")

    def __init__(self, parts: Iterable[Part], *, mode: CompositeMode) -> None:
        self._parts = tuple(parts)
        if mode not in _MODES:
            raise ConfigError(f"composite mode must be one of {', '.join(_MODES)}, got {mode!r}")
        self._mode: CompositeMode = mode
        if not self._parts:
            raise ConfigError("a composite verifier needs at least one part")
        names = [part.name for part in self._parts]
        for part in self._parts:
            if not part.name or "." in part.name:
                raise ConfigError(f"part name must be non-empty and dot-free, got {part.name!r}")
            if names.count(part.name) > 1:
                raise ConfigError(f"part name {part.name!r} is used twice")
            if not (math.isfinite(part.weight) and part.weight > 0):
                raise ConfigError(
                    f"part {part.name!r}: weight must be a finite number > 0, got {part.weight!r}"
                )
            if mode == "all" and part.weight != 1.0:
                raise ConfigError(
                    f"part {part.name!r} has weight {part.weight!r}, but weights have no "
                    "effect in mode 'all'"
                )

    @property
    def mode(self) -> CompositeMode:
        return self._mode

    @property
    def parts(self) -> tuple[Part, ...]:
        return self._parts

    async def verify(self, episode: CompletedEpisode) -> Score:
        scores: dict[str, float] = {}
        by_part: dict[str, Any] = {}
        rewards: list[float] = []
        for part in self._parts:
            score = await part.verifier.verify(episode)
            if not (math.isfinite(score.reward) and 0.0 <= score.reward <= 1.0):
                raise ValueError(
                    f"part {part.name!r} ({type(part.verifier).__name__}) returned reward "
                    f"{score.reward!r}, not a number in [0, 1]"
                )
            rewards.append(score.reward)
            scores[part.name] = score.reward
            scores.update({f"{part.name}.{key}": value for key, value in score.scores.items()})
            by_part[part.name] = {
                "reward": score.reward,
                "weight": part.weight,
                "evidence": score.evidence,
            }
        return Score(
            reward=self._combine(rewards),
            scores=scores,
            evidence={"mode": self._mode, "parts": by_part},
        )

    def _combine(self, rewards: list[float]) -> float:
        if self._mode == "all":
            return 1.0 if all(r == 1.0 for r in rewards) else 0.0
        total = sum(part.weight for part in self._parts)
        mean = sum(p.weight * r for p, r in zip(self._parts, rewards, strict=True)) / total
        return min(1.0, max(0.0, mean))  # float rounding must not leave [0, 1]
