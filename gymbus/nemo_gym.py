"""NeMo Gym's JSONL files as gymbus tasks and rollouts, and back.

Formats, as NeMo Gym 0.4.0 defines them (``nemo_gym/base_resources_server.py``,
``nemo_gym/openai_utils.py``, ``responses_api_agents/simple_agent/app.py``):

- **task line**: ``responses_create_params`` — an OpenAI Responses API request body
  (``input`` items or a string, ``tools``, maybe ``instructions``, sampling settings) —
  plus the resources server's own verifier fields (``expected_count``, ``id``, …).
- **rollout line**: what the server's ``/verify`` answered: ``responses_create_params``
  (every field, :func:`~gymbus.nemo_gym_wire.create_params`), ``response`` (a Responses API
  response whose ``output`` holds the items the episode added after its input), ``reward``,
  then whatever else the verifier returned.

:func:`read_tasks` maps task lines to gymbus :class:`Task`\\ s (seed = 0-based line index,
data = the whole line) with their prompt messages and :class:`ToolSpec`\\ s;
:func:`rollout_line` / :func:`export_rollouts` write gymbus rollouts as NeMo Gym rollout
lines; :func:`read_rollouts` reads NeMo Gym rollout lines. A bad line raises
:class:`NeMoGymFileError` naming file, line and field; an unreadable, unterminated last
line (a writer that died mid-line) is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError

from gymbus.nemo_gym_wire import (
    CREATE_PARAMS_DEFAULTS,
    create_params,
    response_object,
    training_generation,
)
from gymbus.runtime.errors import InputError, WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    Generation,
    SystemMessage,
    UserMessage,
)
from gymbus.runtime.model import SamplingParams
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.sink import read_rollouts as read_gymbus_rollouts
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import ToolSpec
from gymbus.runtime.wire_responses import from_responses

__all__ = [
    "ExportResult",
    "NeMoGymFileError",
    "NeMoRollout",
    "NeMoTask",
    "env_name_for",
    "export_rollouts",
    "read_rollouts",
    "read_tasks",
    "rollout_line",
]

PARAMS = "responses_create_params"
VERIFY_EVIDENCE = "nemo_gym"
"""``Score.evidence`` key under which the resources-server verifier keeps the extra
fields ``/verify`` returned (they are written back into the rollout line)."""


class NeMoGymFileError(InputError):
    """A line of a NeMo Gym task or rollout file that cannot be used."""

    def __init__(self, path: Path, line: int, field: str, problem: str) -> None:
        super().__init__(f"{path}:{line}: {field}: {problem}")
        self.path = path
        self.line = line
        self.field = field


class _BadFieldError(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line; an unterminated last line that does
    not parse is a torn tail and is skipped."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                if not raw.endswith(b"\n"):
                    return  # torn tail: the writer died mid-line
                raise NeMoGymFileError(path, number, "(line)", f"not JSON: {exc}") from None
            if not isinstance(value, dict):
                raise NeMoGymFileError(
                    path, number, "(line)", f"expected a JSON object, got {_kind(value)}"
                )
            yield number, value


# --- tasks -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NeMoTask:
    """One NeMo Gym task: the gymbus :class:`Task` (``data`` is the whole line), the
    prompt messages and tools from its ``responses_create_params``, its 1-based line."""

    task: Task
    messages: tuple[AnyMessage, ...]
    tools: tuple[ToolSpec, ...]
    line: int
    key: str
    """The task's own ``id`` if it has one, else its seed: ``task_id`` is ``env/key``."""

    @property
    def data(self) -> dict[str, Any]:
        return self.task.data

    @property
    def params(self) -> dict[str, Any]:
        value: dict[str, Any] = self.task.data[PARAMS]
        return value

    def sampling(self) -> SamplingParams | None:
        """The sampling settings the task's request asks for (only those it sets)."""
        params = self.params
        chosen = {
            "temperature": params.get("temperature"),
            "top_p": params.get("top_p"),
            "max_tokens": params.get("max_output_tokens"),
        }
        chosen = {k: v for k, v in chosen.items() if v is not None}
        return SamplingParams(**chosen) if chosen else None


def env_name_for(path: Path) -> str:
    """The environment a NeMo Gym file belongs to: its folder, or the folder above a
    ``data`` folder (``resources_servers/NAME/data/example.jsonl`` → ``NAME``)."""
    folder = path.resolve().parent
    if folder.name == "data" and folder.parent.name:
        folder = folder.parent
    return folder.name or path.stem


def _tool_spec(tool: Any, where: str) -> ToolSpec:
    if not isinstance(tool, Mapping):
        raise _BadFieldError(where, f"expected a tool object, got {_kind(tool)}")
    if tool.get("type") != "function":
        raise _BadFieldError(
            f"{where}.type", f"only function tools can be played, got {tool.get('type')!r}"
        )
    parameters = tool.get("parameters")
    if parameters is not None:
        try:
            Draft202012Validator.check_schema(parameters)
        except SchemaError as exc:
            raise _BadFieldError(
                f"{where}.parameters", f"not a JSON Schema: {exc.message}"
            ) from None
    try:
        return ToolSpec.model_validate(
            {
                "name": tool.get("name"),
                "description": tool.get("description") or "",
                "strict": bool(tool.get("strict")),
                **({"parameters": parameters} if parameters is not None else {}),
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise _BadFieldError(f"{where}.{field}", first["msg"]) from None


def _prompt(params: Mapping[str, Any], media: MediaStore) -> list[AnyMessage]:
    raw = params.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    try:
        messages = from_responses(items, media, where=f"{PARAMS}.input")  # type: ignore[arg-type]
    except WireFormatError as exc:
        field, _, problem = str(exc).partition(": ")
        raise _BadFieldError(field, problem) from None
    if not messages:
        raise _BadFieldError(f"{PARAMS}.input", "no input messages")
    instructions = params.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _BadFieldError(
            f"{PARAMS}.instructions", f"expected a string, got {_kind(instructions)}"
        )
    prompt: list[AnyMessage] = [SystemMessage(content=instructions)] if instructions else []
    for message in messages:  # the task's user turns are the environment speaking
        if isinstance(message, UserMessage):
            message = UserMessage(content=message.content, author="environment")
        prompt.append(message)
    return prompt


def _parse_task(data: dict[str, Any], *, env: str, seed: int, media: MediaStore) -> NeMoTask:
    params = data.get(PARAMS)
    if not isinstance(params, dict):
        raise _BadFieldError(PARAMS, f"expected an object, got {_kind(params)}")
    for key in params:
        if key not in CREATE_PARAMS_DEFAULTS:
            raise _BadFieldError(f"{PARAMS}.{key}", "unknown field (NeMo Gym forbids it)")
    tools = params.get("tools") or []
    if not isinstance(tools, list):
        raise _BadFieldError(f"{PARAMS}.tools", f"expected a list, got {_kind(tools)}")
    specs = tuple(_tool_spec(t, f"{PARAMS}.tools[{i}]") for i, t in enumerate(tools))
    messages = _prompt(params, media)
    ident = data.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int | str)):
        raise _BadFieldError("id", f"expected a string or an integer, got {_kind(ident)}")
    key = str(ident) if ident is not None else str(seed)
    task = Task(env=env, task_id=f"{env}/{key}", seed=seed, data=data)
    return NeMoTask(task, tuple(messages), specs, seed + 1, key)


def read_tasks(
    path: Path, *, env: str | None = None, media: MediaStore | None = None
) -> list[NeMoTask]:
    """The tasks of a NeMo Gym task file. ``env`` defaults to :func:`env_name_for`."""
    name = env or env_name_for(path)
    store = media or MediaStore.shared()
    tasks: list[NeMoTask] = []
    seen: dict[str, int] = {}
    for number, data in _json_lines(path):
        try:
            task = _parse_task(data, env=name, seed=number - 1, media=store)
        except _BadFieldError as bad:
            raise NeMoGymFileError(path, number, bad.field, bad.problem) from None
        if task.key in seen:
            raise NeMoGymFileError(
                path, number, "id", f"duplicate task id {task.key!r} (also line {seen[task.key]})"
            )
        seen[task.key] = number
        tasks.append(task)
    return tasks


# --- writing rollouts --------------------------------------------------------------


def rollout_line(
    rollout: Rollout, task: NeMoTask, media: MediaStore | None = None
) -> dict[str, Any]:
    """A scored gymbus rollout of ``task`` as a NeMo Gym rollout line. The fields after
    ``reward`` are the ones ``/verify`` returned (kept by the resources-server verifier),
    else the task's own fields."""
    if rollout.reward is None:
        raise ValueError(f"rollout {rollout.episode_id!r} has no reward (status failed)")
    output = rollout.messages[len(task.messages) :]
    evidence = rollout.evidence.get(VERIFY_EVIDENCE)
    extra = evidence if isinstance(evidence, dict) else task.data
    line: dict[str, Any] = {
        PARAMS: create_params(task.params),
        "response": response_object(
            output,
            task.params,
            response_id=rollout.episode_id,
            created_at=rollout.timing.started_at,
            stop_reason=rollout.stop_reason,
            media=media,
        ),
        "reward": rollout.reward,
    }
    for key, value in extra.items():
        line.setdefault(key, value)
    return line


@dataclass(frozen=True, slots=True)
class ExportResult:
    written: int
    skipped_failed: int


def _mismatch(rollout: Rollout, task: NeMoTask | None, tasks: Path) -> tuple[str, str] | None:
    """Why ``rollout`` was not played on ``task`` (field, problem), if it was not."""
    if task is None:
        return "seed", f"{tasks} has no task on line {rollout.seed + 1}"
    if rollout.task_id != f"{rollout.env}/{task.key}":
        return "task_id", f"{rollout.task_id!r} is not task {task.key!r} of {tasks}:{task.line}"
    if tuple(rollout.messages[: len(task.messages)]) != task.messages:
        return "messages", f"the prompt is not the one of {tasks}:{task.line}"
    return None


def export_rollouts(rollouts: Path, tasks: Path, out: Path) -> ExportResult:
    """Write the scored rollouts of a gymbus rollout file as NeMo Gym rollout lines.
    Failed episodes have no reward and are skipped (NeMo Gym keeps failures apart too)."""
    by_seed = {t.task.seed: t for t in read_tasks(tasks)}
    written = skipped = 0
    with out.open("wb") as f:
        for number, rollout in read_gymbus_rollouts(rollouts):
            if rollout.status != "scored":
                skipped += 1
                continue
            task = by_seed.get(rollout.seed)
            mismatch = _mismatch(rollout, task, tasks)
            if mismatch is not None:
                field, problem = mismatch
                raise NeMoGymFileError(
                    rollouts, number, field, f"{problem}; were the rollouts played on these tasks?"
                )
            assert task is not None
            f.write(orjson.dumps(rollout_line(rollout, task)) + b"\n")
            written += 1
    return ExportResult(written, skipped)


# --- reading rollouts --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NeMoRollout:
    """One NeMo Gym rollout line: the request's input then the response's output as
    messages (policy turns keep NeMo Gym's token ids as their ``generation``)."""

    line: int
    messages: tuple[AnyMessage, ...]
    prompt_length: int
    reward: float
    data: dict[str, Any]

    @property
    def output(self) -> tuple[AnyMessage, ...]:
        return self.messages[self.prompt_length :]

    @property
    def extra(self) -> dict[str, Any]:
        """What the verifier returned besides the request, response and reward."""
        return {k: v for k, v in self.data.items() if k not in (PARAMS, "response", "reward")}


def _output_messages(
    items: list[Any], model: str, media: MediaStore, where: str
) -> list[AnyMessage]:
    """Output items as messages; an item with training fields ends a policy turn, whose
    message gets them as its generation."""
    messages = from_responses(items, media, where=where)  # validates, naming the item
    ends: dict[int, Generation] = {}
    for index, item in enumerate(items):
        try:
            generation = training_generation(item, model) if isinstance(item, dict) else None
        except (TypeError, ValueError) as exc:  # int() of a null or a list is a TypeError
            raise _BadFieldError(f"{where}[{index}]", f"bad training fields: {exc}") from None
        if generation is not None:
            ends[index] = generation
    if not ends:
        return messages
    messages, start = [], 0
    for end in sorted({*ends, len(items) - 1}):
        turn = from_responses(items[start : end + 1], media, where=where)
        if end in ends and turn and isinstance(turn[-1], AssistantMessage):
            turn[-1] = turn[-1].model_copy(update={"generation": ends[end]})
        messages.extend(turn)
        start = end + 1
    return messages


def read_rollouts(path: Path, media: MediaStore | None = None) -> Iterator[NeMoRollout]:
    """The rollouts of a NeMo Gym rollout file (``example_rollouts.jsonl``)."""
    store = media or MediaStore.shared()
    for number, data in _json_lines(path):
        try:
            reward = data.get("reward")
            if isinstance(reward, bool) or not isinstance(reward, int | float):
                raise _BadFieldError("reward", f"expected a number, got {_kind(reward)}")
            if not math.isfinite(reward):
                raise _BadFieldError("reward", f"not a finite number: {reward}")
            params, response = data.get(PARAMS), data.get("response")
            if not isinstance(params, dict):
                raise _BadFieldError(PARAMS, f"expected an object, got {_kind(params)}")
            if not isinstance(response, dict) or not isinstance(response.get("output"), list):
                raise _BadFieldError("response.output", "expected a response with an output list")
            prompt = _prompt(params, store)
            model = response.get("model")
            output = _output_messages(
                response["output"],
                model if isinstance(model, str) else "",
                store,
                "response.output",
            )
        except WireFormatError as exc:
            field, _, problem = str(exc).partition(": ")
            raise NeMoGymFileError(path, number, field, problem) from None
        except _BadFieldError as bad:
            raise NeMoGymFileError(path, number, bad.field, bad.problem) from None
        yield NeMoRollout(number, (*prompt, *output), len(prompt), float(reward), data)
