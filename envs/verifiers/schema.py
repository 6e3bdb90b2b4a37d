"""A JSON Schema verifier: the final answer must be one JSON value that validates against a
schema (Draft 2020-12) and, optionally, carries expected values at given paths.

Extraction rule (:func:`extract_json`), strict but fair: after stripping surrounding
whitespace, the final answer must be *either* the JSON text itself *or* exactly one fenced
code block (opening fence ```` ``` ```` or ```` ```json ````, any capitalization, on its own
line; closing fence at the very end) whose body is the JSON. Any other text — a sentence
before the JSON, a note after it, two blocks — makes the answer invalid. Parsing is strict
JSON: duplicate object keys, ``NaN`` and ``Infinity`` are rejected.

Field paths (the ``expected`` keys) are dotted names with list indices: ``status``,
``result.mean``, ``samples[2].failure_reason``. Expected values compare as JSON: numbers
by value within 1e-9 (``2`` equals ``2.0``, ``true`` never equals ``1``), strings exactly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from gymbus.envs.verifiers.exact import SubScorer, final_answer
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.verification import CompletedEpisode, Score

__all__ = [
    "JsonExtraction",
    "JsonSchemaVerifier",
    "extract_json",
    "json_equal",
    "leaf_values",
    "lookup_path",
    "schema_errors",
]

_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL | re.IGNORECASE)
_PATH_PART = re.compile(r"(?P<key>[^.\[\]]+)|\[(?P<index>[0-9]+)\]|(?P<dot>\.)")
_PATH_KEY = re.compile(r"[^.\[\]]+")


@dataclass(frozen=True, slots=True)
class JsonExtraction:
    """The JSON read from a reply: ``value`` when ``ok``, else ``error`` says why not.
    ``source`` is ``"whole-reply"`` or ``"fenced-block"`` (where the JSON was found)."""

    ok: bool
    value: Any = None
    source: Literal["whole-reply", "fenced-block"] | None = None
    error: str | None = None


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def extract_json(text: str) -> JsonExtraction:
    """The JSON value of a reply under the module's extraction rule (never raises)."""
    stripped = text.strip()
    if not stripped:
        return JsonExtraction(ok=False, error="the reply is empty")
    source: Literal["whole-reply", "fenced-block"] = "whole-reply"
    body = stripped
    if stripped.startswith("```"):
        fence = _FENCE.match(stripped)
        if fence is None or "```" in fence["body"]:
            return JsonExtraction(
                ok=False,
                error="a fenced block must be the whole reply: one ```json block, "
                "with no text before or after it",
            )
        source, body = "fenced-block", fence["body"]
    try:
        value = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except ValueError as exc:  # JSONDecodeError, duplicate keys, NaN/Infinity
        hint = ""
        if source == "whole-reply" and ("{" in stripped or "```" in stripped):
            hint = " (the reply must be only the JSON, or one ```json block: no other text)"
        return JsonExtraction(ok=False, source=source, error=f"not valid JSON: {exc}{hint}")
    return JsonExtraction(ok=True, value=value, source=source)


def schema_errors(validator: Draft202012Validator, instance: Any) -> list[dict[str, str]]:
    """Every validation error of ``instance`` as ``{path, message, keyword}`` (``path`` is a
    JSON path like ``$.samples[0].status``), sorted by path then message."""
    errors = [
        {"path": error.json_path, "message": error.message, "keyword": str(error.validator)}
        for error in validator.iter_errors(instance)
    ]
    return sorted(errors, key=lambda e: (e["path"], e["message"]))


def _parse_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    position, expect_key = 0, True
    for match in _PATH_PART.finditer(path):
        if match.start() != position:
            break
        if match["dot"]:
            if expect_key:
                break
            expect_key = True
        elif match["index"] is not None:
            if not parts:
                break
            parts.append(int(match["index"]))
            expect_key = False
        else:
            if not expect_key:
                break
            parts.append(match["key"])
            expect_key = False
        position = match.end()
    if position != len(path) or expect_key:
        raise ConfigError(f"bad field path {path!r}: use names and indices like 'a.b[0].c'")
    return parts


def lookup_path(value: Any, path: str) -> tuple[bool, Any]:
    """``(True, v)`` when ``value`` has something at ``path`` (``'a.b[0].c'``), else
    ``(False, None)``."""
    current = value
    for part in _parse_path(path):
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                return False, None
            current = current[part]
        else:
            if not isinstance(current, dict) or part not in current:
                return False, None
            current = current[part]
    return True, current


def leaf_values(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf (scalar, empty array or empty object) of a JSON object by its field path:
    ``{"a": {"b": [1]}}`` → ``{"a.b[0]": 1}``. Feeds ``expected`` from a whole answer.
    Keys must be non-empty and free of ``.``, ``[`` and ``]``."""
    if isinstance(value, dict) and value:
        leaves: dict[str, Any] = {}
        for key, item in value.items():
            if not _PATH_KEY.fullmatch(key):
                raise ConfigError(f"key {key!r} cannot be part of a field path")
            leaves |= leaf_values(item, f"{prefix}.{key}" if prefix else key)
        return leaves
    if isinstance(value, list) and value and prefix:
        leaves = {}
        for i, item in enumerate(value):
            leaves |= leaf_values(item, f"{prefix}[{i}]")
        return leaves
    if not prefix:
        raise ConfigError("leaf_values needs a non-empty JSON object at the top level")
    return {prefix: value}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(got: Any, expected: Any) -> bool:
    """Equality of JSON values: numbers by value (within 1e-9), booleans only equal
    booleans, arrays element-wise, objects key by key, everything else exactly."""
    if _is_number(got) and _is_number(expected):
        return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(map(json_equal, got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(json_equal(got[k], expected[k]) for k in got)
    return type(got) is type(expected) and bool(got == expected)


class JsonSchemaVerifier:
    """Reward 1.0 when the final answer holds valid JSON (see :func:`extract_json`) that
    validates against ``schema`` and matches every value in ``expected``; else 0.0.

    Sub-scores: ``valid_json``, ``schema_valid`` and one ``field:<path>`` per expected
    value (1.0 or 0.0 each; the reward is their conjunction); ``sub_scorers`` add evidence
    only. Evidence: ``has_final_answer``, ``extraction`` (where the JSON was found),
    ``json_error``, ``schema_errors`` (all of them, with JSON paths) and ``fields``
    (expected vs got per path).
    """

    __slots__ = ("_expected", "_schema", "_sub_scorers", "_validator")

    def __init__(
        self,
        schema: Mapping[str, Any],
        *,
        expected: Mapping[str, Any] | None = None,
        sub_scorers: Sequence[SubScorer] = (),
    ) -> None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ConfigError(f"invalid JSON Schema: {exc.message}") from None
        self._schema = dict(schema)
        self._validator = Draft202012Validator(self._schema, format_checker=FormatChecker())
        self._expected = dict(expected or {})
        for path in self._expected:
            _parse_path(path)  # fail early on a malformed path
        self._sub_scorers = tuple(sub_scorers)

    @property
    def schema(self) -> dict[str, Any]:
        return self._schema

    @property
    def expected(self) -> dict[str, Any]:
        return self._expected

    def score(self, episode: CompletedEpisode) -> Score:
        """The verdict, computed synchronously (it is cheap and pure)."""
        answer = final_answer(episode.transcript)
        extraction = (
            extract_json(answer.text)
            if answer is not None
            else JsonExtraction(ok=False, error="no final answer")
        )
        errors = schema_errors(self._validator, extraction.value) if extraction.ok else []
        scores: dict[str, float] = {
            "valid_json": float(extraction.ok),
            "schema_valid": float(extraction.ok and not errors),
        }
        fields: dict[str, dict[str, Any]] = {}
        for path, expected in self._expected.items():
            found, got = lookup_path(extraction.value, path) if extraction.ok else (False, None)
            match = found and json_equal(got, expected)
            scores[f"field:{path}"] = float(match)
            fields[path] = {"expected": expected, "got": got, "present": found, "match": match}
        reward = 1.0 if all(v == 1.0 for v in scores.values()) else 0.0
        evidence: dict[str, Any] = {
            "has_final_answer": answer is not None,
            "extraction": extraction.source,
            "json_error": extraction.error,
            "schema_errors": errors,
            "fields": fields,
        }
        for sub_scorer in self._sub_scorers:
            part = sub_scorer(episode)
            scores.update(part.scores)
            evidence.update(part.evidence)
        return Score(reward=reward, scores=scores, evidence=evidence)

    async def verify(self, episode: CompletedEpisode) -> Score:
        return self.score(episode)
