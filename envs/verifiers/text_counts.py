"""How a reply's text is measured: words, sentences, paragraphs, bullet points, markdown
headings and placeholders — and the rule sentences (:data:`RULES`) that tell a model the
same thing, so what a prompt promises is what a check counts.

- a *word* is a run of letters and digits; an apostrophe or hyphen between two of them,
  or a period or comma between two digits, keeps it together (``don't``, ``follow-up``,
  ``3.5``, ``1,200`` are one word each);
- a *sentence* ends wherever ``.``, ``!`` or ``?`` (one or more, optionally followed by
  closing quotes or brackets) is followed by whitespace or the end of the reply;
- a *paragraph* is a block of non-blank lines between blank lines;
- a *bullet point* is a line starting (after indentation) with ``- `` or ``* ``;
- a *markdown heading* is a line starting with 1 to 6 ``#`` then a space and text;
- a *placeholder* is text in square brackets on one line, like ``[name]``;
- keywords and banned words match whole words, ignoring capitalization.
"""

from __future__ import annotations

import re

__all__ = [
    "RULES",
    "count_bullets",
    "count_headings",
    "count_paragraphs",
    "count_placeholders",
    "count_sentences",
    "count_words",
    "title_case",
    "words",
]

_WORD = re.compile(r"[^\W_]+(?:(?:['’-]|(?<=[0-9])[.,](?=[0-9]))[^\W_]+)*")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|\Z)")
_BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*(?:\n[ \t\r\f\v]*)+")
_BULLET = re.compile(r"^[ \t]*[-*][ \t]+\S", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}[ \t]+\S", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\[[^\[\]\n]*[^\[\]\s][^\[\]\n]*\]")

RULES: dict[str, str] = {
    "words": "Words: a word is a run of letters and digits; an apostrophe or hyphen between "
    "two of them, or a period or comma between two digits, keeps the word together (don't, "
    "follow-up, 3.5 and 1,200 are one word each). Punctuation, markdown symbols and bullet "
    "markers are not words.",
    "sentences": "Sentences: a sentence ends wherever one or more of . ! ? (optionally "
    "followed by closing quotes or brackets) is followed by whitespace or the end of the "
    "reply. Text without such an ending (a heading, a greeting line, a bullet point "
    "without final punctuation) is not a sentence; abbreviations like e.g. do end one.",
    "paragraphs": "Paragraphs: blocks of non-blank lines separated by one or more blank "
    "lines. A heading or a list belongs to the paragraph it is not separated from by a "
    "blank line.",
    "bullets": 'Bullet points: lines that start, after optional indentation, with "- " or "* ".',
    "headings": 'Markdown headings: lines that start with 1 to 6 "#" characters followed by '
    "a space and text.",
    "placeholders": "Placeholders: text in square brackets on one line, such as [name] or "
    "[start date]; each pair of brackets counts once.",
    "matching": 'Word matching: words match whole words, ignoring capitalization, so "plan" '
    'matches "Plan" but not "plans" or "planet".',
    "phrases": "Phrases: ignoring surrounding whitespace, the reply must begin or end with "
    "the phrase exactly, with the same capitalization and punctuation.",
}


def words(text: str) -> list[str]:
    """The words of ``text`` (see the module docstring for the rule)."""
    return _WORD.findall(text)


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def count_sentences(text: str) -> int:
    return len(_SENTENCE_END.findall(text))


def count_paragraphs(text: str) -> int:
    return sum(1 for block in _BLANK_LINES.split(text.strip()) if block.strip())


def count_bullets(text: str) -> int:
    return len(_BULLET.findall(text))


def count_headings(text: str) -> int:
    return len(_HEADING.findall(text))


def count_placeholders(text: str) -> int:
    return len(_PLACEHOLDER.findall(text))


def title_case(text: str) -> str:
    """``text`` with the first character of every word upper-cased (the rest unchanged)."""
    return _WORD.sub(lambda m: m[0][0].upper() + m[0][1:], text)
