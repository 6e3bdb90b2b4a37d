import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gymbus.envs.verifiers import ExpectedCall, RequiredCalls
from gymbus.envs.verifiers.schema import (
    JsonSchemaVerifier,
    extract_json,
    json_equal,
    leaf_values,
    lookup_path,
)
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.messages import AnyMessage, AssistantMessage, ToolCall, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "status": {"enum": ["pass", "fail"]},
        "scores": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"value": {"type": "number"}},
                "required": ["value"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["name", "status"],
    "additionalProperties": False,
}
GOOD = {"name": "x", "status": "pass", "scores": [{"value": 1.25}, {"value": 2}]}


def episode(*messages: AnyMessage) -> CompletedEpisode:
    return CompletedEpisode(
        episode_id="e1",
        task=Task(env="test", task_id="test/0", seed=0),
        transcript=Transcript([UserMessage(content="Report."), *messages]),
        stop_reason="test",
    )


def reply(text: str) -> CompletedEpisode:
    return episode(AssistantMessage(content=text))


# --- extraction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ('{"a": 1}', "whole-reply"),
        ('  \n{"a": 1}\n\n', "whole-reply"),
        ('```json\n{"a": 1}\n```', "fenced-block"),
        ('```JSON\n{"a": 1}```', "fenced-block"),
        ('```\n{"a": 1}\n```', "fenced-block"),
        ('\n```json  \n{\n  "a": 1\n}\n```\n', "fenced-block"),
    ],
)
def test_json_is_the_whole_reply_or_one_fenced_block(text: str, source: str) -> None:
    extraction = extract_json(text)
    assert extraction.ok, extraction.error
    assert (extraction.value, extraction.source) == ({"a": 1}, source)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "the reply is empty"),
        ("I can't help with that.", "not valid JSON"),
        ('Here is the report: {"a": 1}', "must be only the JSON"),
        ('{"a": 1}\nLet me know if you need more.', "must be only the JSON"),
        ('Report:\n```json\n{"a": 1}\n```', "must be only the JSON"),
        ('```json\n{"a": 1}\n```\nDone.', "a fenced block must be the whole reply"),
        ('```json\n{"a": 1}\n```\n```json\n{"b": 2}\n```', "a fenced block must be the whole"),
        ('```python\n{"a": 1}\n```', "a fenced block must be the whole reply"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": Infinity}', "Infinity is not valid JSON"),
        ("{'a': 1}", "not valid JSON"),
    ],
)
def test_anything_else_is_not_json(text: str, error: str) -> None:
    extraction = extract_json(text)
    assert not extraction.ok
    assert extraction.value is None
    assert extraction.error is not None
    assert error in extraction.error


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values, st.booleans(), st.booleans())
def test_any_json_value_round_trips(value: Any, fenced: bool, indent: bool) -> None:
    text = json.dumps(value, indent=2 if indent else None)
    if fenced and "```" not in text:  # a fence cannot hold a fence
        text = f"```json\n{text}\n```"
    extraction = extract_json(text)
    assert extraction.ok, extraction.error
    assert json_equal(extraction.value, value)


# --- paths and equality ---------------------------------------------------------------------


path_keys = st.from_regex(r"[a-z_ -]{1,6}", fullmatch=True)
path_safe_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(path_keys, children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(path_keys, path_safe_values, min_size=1))
def test_every_leaf_path_leads_back_to_its_value(value: dict[str, Any]) -> None:
    for path, leaf in leaf_values(value).items():
        assert lookup_path(value, path) == (True, leaf)


def test_paths_name_keys_and_indices() -> None:
    assert leaf_values(GOOD) == {
        "name": "x",
        "status": "pass",
        "scores[0].value": 1.25,
        "scores[1].value": 2,
    }
    assert lookup_path(GOOD, "scores[1]") == (True, {"value": 2})
    assert lookup_path(GOOD, "scores[2].value") == (False, None)
    assert lookup_path(GOOD, "name.first") == (False, None)
    assert lookup_path(GOOD, "missing") == (False, None)
    assert lookup_path([1], "x") == (False, None)


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a.", "[0]", "a[x]", "a]b", "a[0]b"])
def test_malformed_paths_are_config_errors(path: str) -> None:
    with pytest.raises(ConfigError, match="bad field path"):
        lookup_path({}, path)


def test_leaf_values_needs_an_object_with_path_safe_keys() -> None:
    with pytest.raises(ConfigError, match="non-empty JSON object"):
        leaf_values([1, 2])
    with pytest.raises(ConfigError, match=r"key 'a\.b' cannot be part of a field path"):
        leaf_values({"x": {"a.b": 1}})
    with pytest.raises(ConfigError, match="key '' cannot be part of a field path"):
        leaf_values({"": 1})


@pytest.mark.parametrize(
    ("got", "expected", "equal"),
    [
        (2, 2.0, True),
        (0.1 + 0.2, 0.3, True),
        (12.35, 12.349, False),
        (True, 1, False),
        (1, True, False),
        (False, False, True),
        ("pass", "pass", True),
        ("Pass", "pass", False),
        ("1", 1, False),
        (None, None, True),
        ([1, 2], [1, 2.0], True),
        ([1, 2], [2, 1], False),
        ({"a": 1}, {"a": 1.0}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
    ],
)
def test_json_equality(got: Any, expected: Any, equal: bool) -> None:
    assert json_equal(got, expected) is equal


# --- the verifier ---------------------------------------------------------------------------


def test_valid_json_with_the_expected_values_scores_one() -> None:
    verifier = JsonSchemaVerifier(SCHEMA, expected={"status": "pass", "scores[0].value": 1.25})
    score = verifier.score(reply(json.dumps(GOOD)))
    assert score.reward == 1.0
    assert score.scores == {
        "valid_json": 1.0,
        "schema_valid": 1.0,
        "field:status": 1.0,
        "field:scores[0].value": 1.0,
    }
    assert score.evidence["extraction"] == "whole-reply"
    assert score.evidence["schema_errors"] == []
    assert score.evidence["fields"]["status"] == {
        "expected": "pass",
        "got": "pass",
        "present": True,
        "match": True,
    }


def test_every_schema_error_is_reported_with_its_path() -> None:
    bad = {"status": "PASS", "scores": [{"value": "1.25"}, {"value": 2, "note": "x"}]}
    score = JsonSchemaVerifier(SCHEMA).score(reply(json.dumps(bad)))
    assert score.reward == 0.0
    assert score.scores == {"valid_json": 1.0, "schema_valid": 0.0}
    errors = score.evidence["schema_errors"]
    assert [(e["path"], e["keyword"]) for e in errors] == [
        ("$", "required"),
        ("$.scores[0].value", "type"),
        ("$.scores[1]", "additionalProperties"),
        ("$.status", "enum"),
    ]
    assert "'name' is a required property" in errors[0]["message"]


def test_a_wrong_value_fails_its_field_only() -> None:
    verifier = JsonSchemaVerifier(SCHEMA, expected={"name": "x", "status": "fail", "extra": 1})
    score = verifier.score(reply(json.dumps(GOOD)))
    assert score.reward == 0.0
    assert score.scores["schema_valid"] == 1.0
    assert score.scores["field:name"] == 1.0
    assert score.scores["field:status"] == 0.0
    assert score.scores["field:extra"] == 0.0
    assert score.evidence["fields"]["status"]["got"] == "pass"
    assert score.evidence["fields"]["extra"]["present"] is False


def test_schema_invalid_json_scores_zero_even_when_the_values_match() -> None:
    verifier = JsonSchemaVerifier(SCHEMA, expected={"name": "x"})
    score = verifier.score(reply(json.dumps({**GOOD, "comment": "all good"})))
    assert score.reward == 0.0
    assert score.scores == {"valid_json": 1.0, "schema_valid": 0.0, "field:name": 1.0}


@pytest.mark.parametrize(
    "text", [f"Here you go:\n{json.dumps(GOOD)}", "I can't help with that.", ""]
)
def test_no_json_scores_zero_on_everything(text: str) -> None:
    score = JsonSchemaVerifier(SCHEMA, expected={"name": "x"}).score(reply(text))
    assert score.reward == 0.0
    assert score.scores == {"valid_json": 0.0, "schema_valid": 0.0, "field:name": 0.0}
    assert score.evidence["json_error"]


@pytest.mark.anyio
async def test_no_final_answer_scores_zero() -> None:
    call = ToolCall(id="c1", name="get_sample", arguments="{}")
    done = episode(AssistantMessage(content=json.dumps(GOOD), tool_calls=(call,)))
    score = await JsonSchemaVerifier(SCHEMA).verify(done)
    assert score.reward == 0.0
    assert score.evidence["has_final_answer"] is False
    assert score.evidence["json_error"] == "no final answer"


def test_sub_scorers_add_evidence_but_not_reward() -> None:
    required = RequiredCalls([ExpectedCall(name="get_sample", arguments={"sample_id": "S-1"})])
    score = JsonSchemaVerifier(SCHEMA, sub_scorers=(required,)).score(reply(json.dumps(GOOD)))
    assert score.reward == 1.0
    assert score.scores["used_tools"] == 0.0
    assert score.evidence["missing_calls"] == [
        {"name": "get_sample", "arguments": {"sample_id": "S-1"}}
    ]


def test_bad_configuration_is_rejected_early() -> None:
    with pytest.raises(ConfigError, match="invalid JSON Schema"):
        JsonSchemaVerifier({"type": "no-such-type"})
    with pytest.raises(ConfigError, match=r"bad field path 'a\.\.b'"):
        JsonSchemaVerifier(SCHEMA, expected={"a..b": 1})
