from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gymbus.runtime.messages import AssistantMessage, UserMessage
from gymbus.runtime.transcript import Transcript


def _m(i: int) -> UserMessage:
    return UserMessage(content=str(i))


def test_append_returns_a_new_view_and_leaves_the_old_one_alone() -> None:
    a = Transcript([_m(0)])
    b = a.append(_m(1))
    c = b.append(_m(2), _m(3))
    assert [m.text for m in a] == ["0"]
    assert [m.text for m in b] == ["0", "1"]
    assert [m.text for m in c] == ["0", "1", "2", "3"]
    assert c.last is not None
    assert c.last.text == "3"
    assert Transcript().last is None


def test_appending_to_the_newest_view_shares_storage_no_copy() -> None:
    t = Transcript([_m(0)])
    storage = t._items
    for i in range(1, 1000):
        t = t.append(_m(i))
    assert t._items is storage  # O(new messages) per turn: the history is never copied
    assert len(t) == 1000


def test_appending_to_an_old_view_forks_it() -> None:
    base = Transcript([_m(0)]).append(_m(1))
    left = base.append(_m(2))
    right = base.append(AssistantMessage(content="r"))
    assert [m.text for m in left] == ["0", "1", "2"]
    assert [m.text for m in right] == ["0", "1", "r"]
    assert [m.text for m in base] == ["0", "1"]


def test_indexing_respects_the_view_length() -> None:
    short = Transcript([_m(0)])
    short.append(_m(1))  # extends the shared list beyond `short`
    assert len(short) == 1
    assert short[-1].text == "0"
    with pytest.raises(IndexError):
        short[1]
    assert [m.text for m in short[0:5]] == ["0"]


@given(st.lists(st.lists(st.integers(0, 9), max_size=4), max_size=12), st.data())
def test_every_view_sees_exactly_what_was_appended_to_it(
    batches: list[list[int]], data: st.DataObject
) -> None:
    views: list[tuple[Transcript, list[str]]] = [(Transcript(), [])]
    for batch in batches:
        base, expected = views[data.draw(st.integers(0, len(views) - 1))]
        messages = [_m(i) for i in batch]
        views.append((base.append(*messages), expected + [str(i) for i in batch]))
    for view, expected in views:
        assert [m.text for m in view] == expected
