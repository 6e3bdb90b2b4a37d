"""Filters of the viewer's episode table and plots, parsed from a query string.

Within one key, a row matches any of the values given (``env=a&env=b``); across keys, all
must match. ``reward_min``/``reward_max`` are inclusive and exclude rows without a reward.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gymbus.viewer_index import FACETS, SORT_KEYS, Row, facet_values

MAX_LIMIT = 500


class QueryError(ValueError):
    """A query parameter that cannot be used (the message names it)."""


@dataclass(frozen=True, slots=True)
class Filters:
    values: tuple[tuple[str, frozenset[str]], ...] = ()
    """(facet, accepted values) for each facet filtered on."""
    reward_min: float | None = None
    reward_max: float | None = None
    group: str | None = None
    q: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, Sequence[str]]) -> Filters:
        values = tuple(
            (facet, frozenset(v for v in query[facet] if v))
            for facet in FACETS
            if any(query.get(facet, ()))
        )
        return cls(
            values=values,
            reward_min=_number(query, "reward_min"),
            reward_max=_number(query, "reward_max"),
            group=_last(query, "group"),
            q=(_last(query, "q") or "").casefold() or None,
        )

    def matches(self, row: Row) -> bool:
        for facet, accepted in self.values:
            if accepted.isdisjoint(facet_values(row, facet)):
                return False
        if self.reward_min is not None or self.reward_max is not None:
            if row.reward is None:
                return False
            if self.reward_min is not None and row.reward < self.reward_min:
                return False
            if self.reward_max is not None and row.reward > self.reward_max:
                return False
        if self.group is not None and row.group_id != self.group:
            return False
        if self.q is not None:
            haystack = (row.episode_id, row.task_id, row.env, row.failure_message or "")
            return any(self.q in text.casefold() for text in haystack)
        return True


@dataclass(frozen=True, slots=True)
class Page:
    sort: str = "id"
    descending: bool = False
    offset: int = 0
    limit: int = 50

    @classmethod
    def parse(cls, query: Mapping[str, Sequence[str]]) -> Page:
        sort = _last(query, "sort") or "id"
        if sort not in SORT_KEYS:
            raise QueryError(f"sort: unknown field {sort!r} (one of {', '.join(SORT_KEYS)})")
        order = _last(query, "order") or "asc"
        if order not in ("asc", "desc"):
            raise QueryError(f"order: expected 'asc' or 'desc', got {order!r}")
        offset = whole_number(query, "offset", 0)
        limit = whole_number(query, "limit", 50)
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit: must be between 1 and {MAX_LIMIT}, got {limit}")
        return cls(sort=sort, descending=order == "desc", offset=offset, limit=limit)


def _last(query: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = query.get(key, ())
    return values[-1] if values and values[-1] != "" else None


def _number(query: Mapping[str, Sequence[str]], key: str) -> float | None:
    text = _last(query, key)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise QueryError(f"{key}: not a number: {text!r}") from None
    if math.isnan(value):
        raise QueryError(f"{key}: not a number: {text!r}")
    return value


def whole_number(query: Mapping[str, Sequence[str]], key: str, default: int) -> int:
    """The last value of ``key`` as a whole number ≥ 0, or ``default`` when absent."""
    text = _last(query, key)
    if text is None:
        return default
    if not text.isdigit():
        raise QueryError(f"{key}: expected a whole number ≥ 0, got {text!r}")
    return int(text)
