"""Fuzzing the file readers: NeMo Gym task files, rollout files, collect configs.

Contract: a bad file raises the reader's own error naming the file and the line
(:class:`NeMoGymFileError`, :class:`RolloutFileError`) or the file (:class:`ConfigError`);
a torn last line (a writer that died mid-line) is skipped, never an error.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gymbus.collect_config import CollectConfig, load_config
from gymbus.nemo_gym import NeMoGymFileError, NeMoTask, read_tasks
from gymbus.nemo_gym import read_rollouts as read_nemo_rollouts
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage
from gymbus.runtime.rollout import Rollout, Timing
from gymbus.runtime.sink import RolloutFileError, read_rollouts
from tests.fuzzing import (
    JSON,
    json_values,
    outcome,
    responses_items,
    shaped,
    short_text,
    sometimes,
    sometimes_one_of,
)

STORE = MediaStore()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example (tmp_path is per test, hypothesis runs many)."""
    return tmp_path_factory.mktemp("fuzz_files")


def _lines_of(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def _no_newline(data: bytes) -> bytes:
    return data.replace(b"\n", b" ")


# --- NeMo Gym task files ------------------------------------------------------------

SCHEMA_WORDS = ("object", "string", "integer", "array", "number")
schemas = st.one_of(
    st.just({"type": "object", "properties": {"q": {"type": "string"}}}),
    json_values(("type", "properties", "required", "items", "minimum", "enum"), SCHEMA_WORDS),
)
tool_specs = shaped(
    {"type": st.sampled_from(["function", "function", "web_search"])},
    name=st.sampled_from(["lookup", "get-order", "bad name!"]) | short_text,
    description=short_text,
    strict=st.booleans(),
    parameters=schemas,
)
create_params = shaped(
    {"input": st.one_of(short_text, st.lists(responses_items(), max_size=3))},
    tools=st.lists(tool_specs, max_size=2),
    instructions=short_text,
    temperature=st.floats(0, 2),
    max_output_tokens=st.integers(),
    model=short_text,
)
task_lines = shaped(
    {"responses_create_params": create_params},
    id=st.sampled_from(["t1", "t2", 1]),
    expected=json_values(("a",), ("x",)),
).map(lambda line: json.dumps(line).encode())
other_lines = st.one_of(
    st.sampled_from([b"", b"   ", b"[]", b'"text"', b"{"]),
    st.binary(max_size=40).map(_no_newline),
)


@st.composite
def task_files(draw: st.DrawFn) -> bytes:
    """Task lines (mostly near-valid), a blank or junk line now and then, maybe a torn
    tail."""
    any_line = st.sampled_from((True,) * 6 + (False,)).flatmap(
        lambda task: sometimes_one_of(task_lines).map(_as_line) if task else other_lines
    )
    lines = draw(st.lists(any_line, max_size=5))
    data = b"".join(line + b"\n" for line in lines)
    if draw(st.booleans()):  # a torn tail: part of a task line, no newline
        line = draw(task_lines)
        data += line[: draw(st.integers(0, max(0, len(line) - 1)))]
    return data


def _as_line(value: object) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


@settings(max_examples=250, deadline=None)
@given(task_files() | st.binary(max_size=200))
@example(b'{"responses_create_params": {"input": [{"type": "message"}]}}\n')
@example(b'{"responses_create_params": {"input": "hi", "tools": [{"type": "function"}]}}\n')
@example(b'{"responses_create_params": {"input": "hi"}, "id": true}\n{"responses_cr')
@example(b'{"responses_create_params": {"input": "hi", "frobnicate": 1}}\n')
def test_task_files_read_or_name_the_file_and_line(folder: Path, data: bytes) -> None:
    path = folder / "data" / "tasks.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    tasks = outcome(lambda: read_tasks(path, media=STORE), NeMoGymFileError)
    if isinstance(tasks, NeMoGymFileError):
        assert str(tasks).startswith(f"{path}:{tasks.line}: ")
        assert 1 <= tasks.line <= _lines_of(data)
        if not data.endswith(b"\n") and tasks.line == _lines_of(data):  # the last line:
            orjson.loads(data.rsplit(b"\n", 1)[-1])  # complete JSON, not a torn tail
    else:
        assert all(isinstance(t, NeMoTask) for t in tasks)


def test_a_torn_task_line_is_skipped(folder: Path) -> None:
    path = folder / "torn.jsonl"
    path.write_bytes(b'{"responses_create_params": {"input": "hi"}}\n{"responses_create_par')
    assert [t.line for t in read_tasks(path, media=STORE)] == [1]


token_ids = st.lists(sometimes(st.integers(0, 9)), max_size=3)
training_fields: st.SearchStrategy[dict[str, JSON]] = st.just({}) | shaped(
    {
        "prompt_token_ids": token_ids,
        "generation_token_ids": token_ids,
        "generation_log_probs": st.lists(sometimes(st.floats(-5, 0)), max_size=3),
    }
)
output_items = st.lists(
    st.tuples(responses_items(), training_fields).map(
        lambda pair: {**pair[0], **pair[1]} if isinstance(pair[0], dict) else pair[0]
    ),
    max_size=3,
)
nemo_rollout_lines = shaped(
    {
        "responses_create_params": create_params,
        "response": shaped({"output": output_items}, model=short_text),
        "reward": st.floats(0, 1),
    },
).map(lambda line: json.dumps(line).encode())


@settings(max_examples=200, deadline=None)
@given(st.lists(nemo_rollout_lines | other_lines, max_size=4).map(b"\n".join))
@example(
    b'{"responses_create_params": {"input": "hi"}, "reward": 1, "response": {"output": ['
    b'{"type": "message", "role": "assistant", "content": "ok", "prompt_token_ids": [],'
    b' "generation_token_ids": [null], "generation_log_probs": []}]}}'
)
def test_nemo_rollout_files_read_or_name_the_file_and_line(folder: Path, data: bytes) -> None:
    path = folder / "nemo_rollouts.jsonl"
    path.write_bytes(data)
    rollouts = outcome(lambda: list(read_nemo_rollouts(path, media=STORE)), NeMoGymFileError)
    if isinstance(rollouts, NeMoGymFileError):
        assert str(rollouts).startswith(f"{path}:{rollouts.line}: ")
        assert 1 <= rollouts.line <= _lines_of(data)


def test_training_fields_that_are_not_numbers_name_the_line(folder: Path) -> None:
    """Regression: ``generation_token_ids: [null]`` (or a list in it) in a NeMo Gym
    rollout line raised TypeError from ``int()`` instead of a NeMoGymFileError."""
    path = folder / "training_fields.jsonl"
    for bad in ("null", "[1]", '{"a": 1}'):
        item = (
            '{"type": "message", "role": "assistant", "content": "ok", "prompt_token_ids": [],'
            f' "generation_token_ids": [{bad}], "generation_log_probs": []}}'
        )
        path.write_text(
            '{"responses_create_params": {"input": "hi"}, "reward": 1, '
            f'"response": {{"output": [{item}]}}}}\n'
        )
        with pytest.raises(NeMoGymFileError, match=r":1: response\.output\[0\]: bad training"):
            list(read_nemo_rollouts(path, media=STORE))


# --- rollout files ------------------------------------------------------------------


def _rollout(seed: int) -> bytes:
    call = ToolCall(id=f"c{seed}", name="lookup", arguments='{"q": "x"}')
    return Rollout(
        episode_id=f"env/{seed}#0",
        env="env",
        task_id=f"env/{seed}",
        seed=seed,
        status="scored",
        reward=1.0,
        turns=2,
        messages=(
            UserMessage(content="find x", author="environment"),
            AssistantMessage(content="", tool_calls=(call,)),
            ToolMessage(tool_call_id=call.id, content="found", name="lookup"),
            AssistantMessage(content="done"),
        ),
        timing=Timing(started_at=1.0, wall_s=0.5),
    ).to_json_line()


GOOD = tuple(_rollout(seed) for seed in range(4))


@st.composite
def damaged_line(draw: st.DrawFn, line: bytes) -> bytes:
    body = line[:-1]
    how = draw(st.sampled_from(["flip", "cut", "insert", "replace"]))
    at = draw(st.integers(0, len(body)))
    if how == "flip":
        at = min(at, len(body) - 1)
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    elif how == "cut":
        body = body[:at]
    elif how == "insert":
        body = body[:at] + draw(st.binary(min_size=1, max_size=4)) + body[at:]
    else:
        body = draw(st.binary(max_size=40) | json_values(("env",), ("x",)).map(str).map(str.encode))
    return _no_newline(body) + b"\n"


@st.composite
def rollout_files(draw: st.DrawFn) -> tuple[bytes, dict[int, bytes], set[int], bool]:
    """The file, its intact lines by number, the numbers of damaged lines, torn tail?"""
    data, intact, damaged = b"", {}, set()
    for number in range(1, draw(st.integers(0, 5)) + 1):
        line = draw(st.sampled_from(GOOD))
        kind = draw(st.sampled_from(["intact", "intact", "blank", "damaged"]))
        if kind == "blank":
            line = b" \n"
        elif kind == "damaged":
            line = draw(damaged_line(line))
            damaged.add(number)
        else:
            intact[number] = line
        data += line
    torn = draw(st.booleans())
    if torn:
        tail = draw(st.sampled_from(GOOD))
        data += tail[: draw(st.integers(1, len(tail) - 1))]
    return data, intact, damaged, torn


@settings(max_examples=250, deadline=None)
@given(rollout_files())
def test_rollout_files_read_every_intact_line_or_name_a_damaged_one(
    folder: Path, case: tuple[bytes, dict[int, bytes], set[int], bool]
) -> None:
    data, intact, damaged, _ = case
    path = folder / "rollouts.jsonl"
    path.write_bytes(data)
    read: dict[int, Rollout] = {}

    def read_all() -> None:
        for number, rollout in read_rollouts(path):
            read[number] = rollout

    error = outcome(read_all, RolloutFileError)
    if isinstance(error, RolloutFileError):
        assert error.line in damaged  # never an intact line, a blank one or the torn tail
        assert str(error).startswith(f"{path}:{error.line}: ")
        assert {n for n in intact if n < error.line} <= set(read)
    else:
        assert set(intact) <= set(read) <= set(intact) | damaged
    for number, rollout in read.items():
        if number in intact:
            assert rollout.to_json_line() == intact[number]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
@example(b"\xff\xfe\n")
@example(b'{"schema_version": 1, "episode_id": "\xff"}\n')
def test_random_bytes_are_a_rollout_file_error_naming_file_and_line(
    folder: Path, data: bytes
) -> None:
    path = folder / "random.jsonl"
    path.write_bytes(data)
    error = outcome(lambda: list(read_rollouts(path)), RolloutFileError)
    if isinstance(error, RolloutFileError):
        assert str(error).startswith(f"{path}:{error.line}: ")
        assert 1 <= error.line <= _lines_of(data)


# --- collect configs ----------------------------------------------------------------

CONFIG_KEYS = (
    *CollectConfig.model_fields, "group_sise", "weight", "difficulty", "concurrency",
    "temperature", "max_turns", "context_tokens",
)  # fmt: skip
toml_scalars = st.one_of(
    st.integers().map(str),
    st.floats().map(repr),
    st.booleans().map(lambda b: str(b).lower()),
    st.text(max_size=10).map(lambda text: json.dumps(text, ensure_ascii=False)),
    st.sampled_from(['"oracle"', '"chat"', '"x.jsonl"', "1979-05-27", "[]", "{}", '"a\\u0000b"']),
)
toml_values = st.recursive(
    toml_scalars,
    lambda kids: st.lists(kids, max_size=3).map(lambda v: "[" + ", ".join(v) + "]"),
    max_leaves=6,
)
toml_keys = sometimes_one_of(st.sampled_from(CONFIG_KEYS)).map(
    lambda key: key if key in CONFIG_KEYS else json.dumps(str(key), ensure_ascii=False)
)
assignments = st.dictionaries(toml_keys, toml_values, max_size=4).map(
    lambda table: [f"{key} = {value}" for key, value in table.items()]
)
SECTIONS = ("sampling", "limits", "envs", "envs.retail-orders", "envs.records-needle", 'envs."a b"')


@st.composite
def toml_texts(draw: st.DrawFn) -> bytes:
    """A config: top-level keys, then sections, each key once (mostly valid TOML)."""
    lines = draw(assignments)
    for section in draw(st.lists(st.sampled_from(SECTIONS), unique=True, max_size=3)):
        lines += [f"[{section}]", *draw(assignments)]
    if lines and draw(st.integers(0, 5)) == 0:  # a broken line somewhere
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=12)))
    return "\n".join(lines).encode()


@settings(max_examples=250, deadline=None)
@given(toml_texts() | st.binary(max_size=60))
@example(b"n = \xff\n")
@example(b"n = " + b"[" * 2000 + b"]" * 2000)
@example(b'[envs.retail-orders]\nweight = "heavy"\n')
@example(b'out = "a\\u0000b"\n')
def test_configs_load_or_raise_config_error_naming_the_file(folder: Path, text: bytes) -> None:
    path = folder / "mix.toml"
    path.write_bytes(text)
    config = outcome(lambda: load_config(path), ConfigError)
    if isinstance(config, ConfigError):
        assert str(config).startswith(f"{path}: ")
    else:
        assert isinstance(config, CollectConfig)
        if config.out is not None:  # a bad path fails here, not after the run started
            with contextlib.suppress(OSError):
                os.stat(config.out)


def test_a_config_whose_out_path_holds_a_nul_is_a_config_error(folder: Path) -> None:
    """Regression: ``out = "a\\u0000b"`` loaded, and ``gymbus collect`` then died with
    a traceback (ValueError: embedded null byte) when it opened the file."""
    path = folder / "nul.toml"
    path.write_text('out = "a\\u0000b"\n')
    with pytest.raises(ConfigError, match="field out"):
        load_config(path)


def test_a_config_that_is_not_utf8_or_nests_too_deeply_is_a_config_error(folder: Path) -> None:
    """Regression: ``load_config`` let UnicodeDecodeError (a file that is not UTF-8)
    and RecursionError (deeply nested arrays) escape instead of a ConfigError."""
    path = folder / "bad.toml"
    for text, problem in ((b"n = \xff\n", "not UTF-8"), (b"n = " + b"[" * 2000, "nested")):
        path.write_bytes(text)
        with pytest.raises(ConfigError, match=problem) as info:
            load_config(path)
        assert str(info.value).startswith(f"{path}: ")
