from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gymbus.envs.verifiers.constraint_parsing import parse_constraint
from gymbus.envs.verifiers.constraints import (
    CONSTRAINT_ADAPTER,
    BulletCount,
    Constraint,
    ConstraintVerifier,
    EndsWith,
    ExcludeWords,
    ForbiddenCharacters,
    HeadingCount,
    IncludeKeywords,
    JsonFormat,
    LetterCase,
    ParagraphCount,
    PlaceholderCount,
    SentenceCount,
    StartsWith,
    WordCount,
    counting_rules,
)
from gymbus.envs.verifiers.text_counts import (
    RULES,
    count_bullets,
    count_headings,
    count_paragraphs,
    count_placeholders,
    count_sentences,
    count_words,
    title_case,
    words,
)
from gymbus.runtime.messages import AnyMessage, AssistantMessage, ToolCall, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode

# --- counting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, world!", ["Hello", "world"]),
        ("Don't use follow-up e-mail.", ["Don't", "follow-up", "e-mail", "use"]),
        ("It costs 3.5 or 1,200 dollars.", ["It", "costs", "3.5", "or", "1,200", "dollars"]),
        ("a,b 1, 2 end.", ["a", "b", "1", "2", "end"]),
        ("- item one\n## Heading", ["item", "one", "Heading"]),
        ("[contact name] -- x_y", ["contact", "name", "x", "y"]),
        ("U.S. rules: 10:30", ["U", "S", "rules", "10", "30"]),
        ("naïve café 2025", ["naïve", "café", "2025"]),
        ("  ", []),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert sorted(words(text)) == sorted(expected)
    assert count_words(text) == len(expected)


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("One. Two! Three?", 3),
        ("Wait... what?!", 2),
        ('He said "stop." Then left.', 2),
        ("(Quietly.) Done.", 2),
        ("Pi is 3.14 today.", 1),
        ("See e.g. this.", 2),
        ("No ending here", 0),
        ("## Heading\n- bullet without stop\nA sentence.", 1),
        ("Line one.\nLine two.", 2),
        ("", 0),
    ],
)
def test_sentences(text: str, n: int) -> None:
    assert count_sentences(text) == n


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("one", 1),
        ("one\ntwo", 1),
        ("one\n\ntwo", 2),
        ("one\n  \n\t\n\ntwo\n\n\nthree\n\n", 3),
        ("\n\n# Title\ntext\n\n- a\n- b", 2),
        ("   \n ", 0),
    ],
)
def test_paragraphs(text: str, n: int) -> None:
    assert count_paragraphs(text) == n


def test_bullets_headings_and_placeholders() -> None:
    text = (
        "# Title\n##No space\n####### seven\n  ## indented\n- one\n* two\n  - nested\n"
        "-no space\n*emphasis*\n- \nDear [name], see [ ] and [start date] or [a\nb]."
    )
    assert count_headings(text) == 1
    assert count_bullets(text) == 3
    assert count_placeholders(text) == 2


@given(st.text(), st.text())
def test_words_never_cross_whitespace(a: str, b: str) -> None:
    assert count_words(f"{a} {b}") == count_words(a) + count_words(b)


blocks = st.lists(
    st.text(alphabet="abc .\n", min_size=1).filter(lambda t: t.strip() and "\n\n" not in t),
    min_size=1,
    max_size=5,
).map(lambda bs: [b.strip() for b in bs if b.strip() and count_paragraphs(b) == 1])


@given(blocks)
def test_paragraphs_are_blocks_between_blank_lines(parts: list[str]) -> None:
    assert count_paragraphs("\n\n".join(parts)) == len(parts)


ascii_text = st.text(alphabet="abcXYZ 'é-.,!?[]#\n0123456789", max_size=60)


@given(ascii_text)
def test_title_case_satisfies_the_title_case_check(text: str) -> None:
    titled = title_case(text)
    assert LetterCase(case="title").check(titled)[0]
    assert count_words(titled) == count_words(text)
    assert LetterCase(case="lowercase").check(text.lower())[0]
    assert LetterCase(case="uppercase").check(text.upper())[0]


# --- each constraint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "text", "ok", "evidence"),
    [
        (WordCount(at_least=3), "one two three", True, {"counted": 3}),
        (WordCount(at_most=2), "one two three", False, {"counted": 3, "at_most": 2}),
        (WordCount(at_least=2, at_most=2), "one two", True, {"counted": 2}),
        (SentenceCount(at_least=2, at_most=3), "One. Two. Three. Four.", False, {"counted": 4}),
        (ParagraphCount(at_least=2, at_most=2), "a\n\nb", True, {"counted": 2}),
        (BulletCount(at_least=3, at_most=3), "- a\n- b", False, {"counted": 2}),
        (HeadingCount(at_least=1), "# Title\ntext", True, {"counted": 1}),
        (PlaceholderCount(at_least=2), "Hi [name], from [team].", True, {"counted": 2}),
        (LetterCase(case="lowercase"), "all lower 1 2 3.", True, {"offending_words": []}),
        (LetterCase(case="lowercase"), "Not lower, iPhone", False, {"n_offending": 2}),
        (LetterCase(case="uppercase"), "ALL UPPER, OK? 3.5", True, {"n_offending": 0}),
        (LetterCase(case="uppercase"), "MOSTLY Upper", False, {"offending_words": ["Upper"]}),
        (LetterCase(case="title"), "Every Word Counts, Even Don't 2nd", True, {}),
        (LetterCase(case="title"), "Every word", False, {"offending_words": ["word"]}),
        (ForbiddenCharacters(characters=",;"), "a, b, c; d", False, {"found": {",": 2, ";": 1}}),
        (ForbiddenCharacters(characters="!"), "Calm text.", True, {"found": {}}),
        (StartsWith(phrase="Dear team"), "\n  Dear team\nHello", True, {"got": "Dear team"}),
        (StartsWith(phrase="Dear team"), "Dear Team,", False, {"got": "Dear Team"}),
        (EndsWith(phrase="Best regards."), "Text.\nBest regards.\n", True, {}),
        (EndsWith(phrase="Best regards."), "Best regards. PS", False, {"got": "t regards. PS"}),
        (EndsWith(phrase="Longer than the text"), "short", False, {"got": "short"}),
        (IncludeKeywords(keywords=("plan",)), "Plans and a planet", False, {"counts": {"plan": 0}}),
        (IncludeKeywords(keywords=("plan", "Beta"), at_least=2), "PLAN beta plan BETA.", True, {}),
        (ExcludeWords(banned=("very", "just")), "Very good, just so.", False, {}),
        (ExcludeWords(banned=("very",)), "Everything is veryish.", True, {"found": {}}),
        (JsonFormat(), '```json\n{"a": 1}\n```', True, {"source": "fenced-block"}),
        (JsonFormat(), 'Here: {"a": 1}', False, {"source": "whole-reply"}),
    ],
)
def test_checks(constraint: Constraint, text: str, ok: bool, evidence: dict[str, Any]) -> None:
    got_ok, got_evidence = constraint.check(text)
    assert got_ok is ok
    assert got_evidence.items() >= evidence.items()


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("word_count", {}, "set at_least, at_most or both"),
        ("word_count", {"at_least": 5, "at_most": 4}, "at_least must not exceed at_most"),
        ("sentence_count", {"at_least": -1}, "greater than or equal to 0"),
        ("include_keywords", {"keywords": ["two words"]}, "is not a single word"),
        ("include_keywords", {"keywords": []}, "at least 1 item"),
        ("exclude_words", {"banned": ["don't!"]}, "is not a single word"),
        ("forbidden_characters", {"characters": "x"}, "characters must be distinct"),
        ("forbidden_characters", {"characters": ",,"}, "characters must be distinct"),
        ("starts_with", {"phrase": 'say "hi"'}, "should match pattern"),
        ("ends_with", {"phrase": " padded"}, "should match pattern"),
        ("letter_case", {"case": "camel"}, "Input should be"),
    ],
)
def test_invalid_constraints_are_rejected(kind: str, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CONSTRAINT_ADAPTER.validate_python({"kind": kind, **data})


# --- descriptions ---------------------------------------------------------------------------


def bounds() -> st.SearchStrategy[dict[str, int | None]]:
    n = st.integers(min_value=0, max_value=500)
    return st.one_of(
        st.builds(lambda a: {"at_least": a, "at_most": None}, n),
        st.builds(lambda b: {"at_least": None, "at_most": b}, n),
        st.builds(lambda a: {"at_least": a, "at_most": a}, n),
        st.builds(lambda a, d: {"at_least": a, "at_most": a + d}, n, n),
    )


single_words = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}(?:['-][a-z]{1,4})?", fullmatch=True)
phrases = st.from_regex(r"[A-Za-z][A-Za-z0-9 ,.!?'-]{0,30}[A-Za-z.!?]", fullmatch=True)
counted = st.sampled_from(
    [WordCount, SentenceCount, ParagraphCount, BulletCount, HeadingCount, PlaceholderCount]
)
constraints: st.SearchStrategy[Constraint] = st.one_of(
    st.builds(lambda cls, b: cls(**b), counted, bounds()),
    st.builds(LetterCase, case=st.sampled_from(["lowercase", "uppercase", "title"])),
    st.builds(
        ForbiddenCharacters,
        characters=st.lists(st.sampled_from(",;:!?&()/"), min_size=1, unique=True).map("".join),
    ),
    st.builds(StartsWith, phrase=phrases),
    st.builds(EndsWith, phrase=phrases),
    st.builds(
        IncludeKeywords,
        keywords=st.lists(single_words, min_size=1, max_size=4).map(tuple),
        at_least=st.integers(min_value=1, max_value=9),
    ),
    st.builds(ExcludeWords, banned=st.lists(single_words, min_size=1, max_size=4).map(tuple)),
    st.just(JsonFormat()),
)


@given(constraints)
def test_parse_inverts_describe(constraint: Constraint) -> None:
    description = constraint.describe()
    assert "\n" not in description
    assert parse_constraint(description) == constraint


@pytest.mark.parametrize(
    ("constraint", "description"),
    [
        (WordCount(at_least=50, at_most=80), "Use between 50 and 80 words."),
        (SentenceCount(at_most=1), "Write at most 1 sentence."),
        (BulletCount(at_least=3, at_most=3), "Include exactly 3 bullet points."),
        (PlaceholderCount(at_least=2), "Include at least 2 placeholders."),
        (
            IncludeKeywords(keywords=("Lumen",), at_least=3),
            'Include the word "Lumen" at least 3 times.',
        ),
        (
            IncludeKeywords(keywords=("a", "b")),
            'Include each of these words at least once: "a", "b".',
        ),
        (ExcludeWords(banned=("very",)), 'Do not use the word "very".'),
        (
            ForbiddenCharacters(characters=",!"),
            'Do not use these characters anywhere in the reply: "," (comma), "!" '
            "(exclamation mark).",
        ),
        (EndsWith(phrase="Best regards."), 'End the reply with the exact phrase "Best regards.".'),
    ],
)
def test_descriptions_read_naturally(constraint: Constraint, description: str) -> None:
    assert constraint.describe() == description


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Use at least many words.",
        "Use at least 3 sentences.",  # the verb does not go with the noun
        "Write exactly 3 bullets.",
        "Write the entire reply in lowercase.",
        'Include the word "a" at least 1 times.',  # describe says "once"
        'Include each of these words at least once: "two words".',
        'Do not use these characters anywhere in the reply: "x" (letter x).',
        "Be nice.",
    ],
)
def test_parse_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="not a constraint description"):
        parse_constraint(text)


def test_counting_rules_cover_exactly_the_kinds_present() -> None:
    assert counting_rules([ForbiddenCharacters(characters=","), JsonFormat()]) == []
    assert counting_rules([SentenceCount(at_least=2)]) == [RULES["sentences"]]
    both = counting_rules([ExcludeWords(banned=("x",)), WordCount(at_most=9)])
    assert both == [RULES["words"], RULES["matching"]]
    everything = counting_rules(
        [
            StartsWith(phrase="Hi"),
            PlaceholderCount(at_least=1),
            HeadingCount(at_least=1),
            BulletCount(at_least=1),
            ParagraphCount(at_least=1),
            SentenceCount(at_least=1),
            LetterCase(case="title"),
        ]
    )
    assert everything == [v for k, v in RULES.items() if k != "matching"]


# --- the verifier ---------------------------------------------------------------------------


def episode(*messages: AnyMessage) -> CompletedEpisode:
    return CompletedEpisode(
        episode_id="e1",
        task=Task(env="test", task_id="test/0", seed=0),
        transcript=Transcript([UserMessage(content="Write."), *messages]),
        stop_reason="test",
    )


VERIFIER = ConstraintVerifier(
    [
        StartsWith(phrase="Dear team"),
        WordCount(at_least=5, at_most=20),
        ForbiddenCharacters(characters=","),
        IncludeKeywords(keywords=("launch",)),
        IncludeKeywords(keywords=("Lumen",), at_least=2),
    ]
)


def test_all_constraints_met_scores_one() -> None:
    score = VERIFIER.score(
        episode(AssistantMessage(content="Dear team\nLumen Lumen launch today."))
    )
    assert score.reward == 1.0
    assert score.scores == {
        "constraint:starts_with": 1.0,
        "constraint:word_count": 1.0,
        "constraint:forbidden_characters": 1.0,
        "constraint:include_keywords": 1.0,
        "constraint:include_keywords#2": 1.0,
        "fraction_satisfied": 1.0,
    }
    first = score.evidence["constraints"][0]
    assert first == {
        "name": "constraint:starts_with",
        "description": 'Begin the reply with the exact phrase "Dear team".',
        "satisfied": True,
        "expected": "Dear team",
        "got": "Dear team",
    }


@pytest.mark.anyio
async def test_one_missed_constraint_scores_zero() -> None:
    text = "Dear team, Lumen launches today and Lumen is ready."
    score = await VERIFIER.verify(episode(AssistantMessage(content=text)))
    assert score.reward == 0.0
    assert score.scores["constraint:forbidden_characters"] == 0.0
    assert score.scores["constraint:include_keywords"] == 0.0  # "launches" is not "launch"
    assert score.scores["fraction_satisfied"] == pytest.approx(3 / 5)
    assert score.evidence["constraints"][2]["found"] == {",": 1}


def test_no_final_answer_fails_every_constraint() -> None:
    call = ToolCall(id="c1", name="search", arguments="{}")
    pending = AssistantMessage(content="Dear team Lumen Lumen launch", tool_calls=(call,))
    score = VERIFIER.score(episode(pending))
    assert score.reward == 0.0
    assert score.scores["fraction_satisfied"] == 0.0
    assert score.evidence["has_final_answer"] is False
    assert all(c["error"] == "no final answer" for c in score.evidence["constraints"])


def test_a_verifier_needs_constraints() -> None:
    with pytest.raises(ValueError, match="at least one constraint"):
        ConstraintVerifier([])
