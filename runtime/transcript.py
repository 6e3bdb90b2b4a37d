"""Append-only, immutable conversation history.

A :class:`Transcript` is a view of the first ``n`` items of a list that may be shared
with longer transcripts. Appending to the newest view extends the shared list in place
(amortized O(new messages)); appending to an older view copies its prefix once, so every
view stays immutable. A turn therefore never copies the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from gymbus.runtime.messages import AnyMessage


class Transcript(Sequence[AnyMessage]):
    __slots__ = ("_items", "_n")

    def __init__(self, messages: Iterable[AnyMessage] = ()) -> None:
        self._items: list[AnyMessage] = list(messages)
        self._n = len(self._items)

    @classmethod
    def _view(cls, items: list[AnyMessage], n: int) -> Transcript:
        view = cls.__new__(cls)
        view._items = items
        view._n = n
        return view

    def append(self, *messages: AnyMessage) -> Transcript:
        """A new transcript with ``messages`` added; ``self`` is unchanged."""
        items = self._items
        if len(items) != self._n:  # someone already appended to this view: fork
            items = items[: self._n]
        items.extend(messages)
        return Transcript._view(items, len(items))

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> AnyMessage: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[AnyMessage]: ...
    def __getitem__(self, index: int | slice) -> AnyMessage | Sequence[AnyMessage]:
        if isinstance(index, slice):
            return self._items[: self._n][index]
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("transcript index out of range")
        return self._items[index]

    def __iter__(self) -> Iterator[AnyMessage]:
        items = self._items
        for i in range(self._n):
            yield items[i]

    @property
    def last(self) -> AnyMessage | None:
        return self._items[self._n - 1] if self._n else None

    def __repr__(self) -> str:
        return f"Transcript({self._n} messages)"
