import copy
import hashlib
import json
import re
from collections.abc import Callable
from statistics import fmean
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

import gymbus
from gymbus.envs.builtin.lab_data import (
    DIFFICULTIES,
    LabTask,
    LabWorld,
    expected_report,
    valid_values,
)
from gymbus.envs.builtin.lab_report import LabReport, LabReportSolver
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers.schema import leaf_values
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError, ToolArgumentsError, ToolInputError
from gymbus.runtime.messages import AssistantMessage, ToolMessage, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from tests.envs.scoring import play, score_reply

pytestmark = pytest.mark.anyio

# sha256 of LabReport(difficulty=d).task(7).model_dump_json(): changes only on purpose.
GOLDEN = {
    "easy": "3d47fbce9fe7cb7b302ddc4f6c595c91d168d12e87837c76ba42403d5b099b3e",
    "medium": "36228342c121c11143c970075da22ccb7a6236499101bfa1b9ef30f3dfdb5385",
    "hard": "23b04d0ee2db0b0c6a8ab6592dcd4eb5fc096e2239ae4436a8000216229e31cd",
}


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = LabReport(difficulty=difficulty)  # type: ignore[arg-type]
    return env.episode(env.task(seed))


def data_of(spec: EpisodeSpec) -> LabTask:
    return LabTask.model_validate(spec.task.data)


async def oracle_report(spec: EpisodeSpec) -> dict[str, Any]:
    done = await play(spec)
    last = done.transcript[-1]
    assert isinstance(last, AssistantMessage)
    report: dict[str, Any] = json.loads(last.text)
    return report


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_is_deterministic(difficulty: str) -> None:
    first = LabReport(difficulty=difficulty).task(7)  # type: ignore[arg-type]
    second = LabReport(difficulty=difficulty).task(7)  # type: ignore[arg-type]
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"lab-report/{difficulty}/7"
    digest = hashlib.sha256(first.model_dump_json().encode()).hexdigest()
    assert digest == GOLDEN[difficulty]


def test_seeds_give_different_tasks() -> None:
    env = LabReport(difficulty="hard")
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


def test_difficulty_grows_the_schema() -> None:
    easy, medium, hard = (data_of(spec_for(d)).report_schema for d in DIFFICULTIES)
    assert list(easy["properties"]) == ["sample_id", "analyte", "n_valid_readings", "mean"]
    assert all("properties" not in p for p in easy["properties"].values())  # flat
    assert medium["properties"]["status"] == {"enum": ["pass", "fail", "inconclusive"]}
    assert medium["properties"]["result"]["additionalProperties"] is False
    report = hard["$defs"]["sample_report"]
    assert hard["properties"]["samples"]["items"] == {"$ref": "#/$defs/sample_report"}
    assert report["then"] == {"required": ["failure_reason"]}
    assert "failure_reason" not in report["required"]


def mean_by_hand(values: list[float], decimals: int) -> float:
    return round(fmean(values), decimals)  # no ties in generated data, so round() is fine


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(40))
def test_answer_key(difficulty: str, seed: int) -> None:
    data = LabTask.model_validate(LabReport(difficulty=difficulty).task(seed).data)  # type: ignore[arg-type]
    world = data.world
    report = expected_report(world, data.subject_id, data.difficulty)
    assert leaf_values(report) == data.expected
    assert list(Draft202012Validator(data.report_schema).iter_errors(report)) == []
    sample_ids = (
        world.batches[data.subject_id].sample_ids if difficulty == "hard" else [data.subject_id]
    )
    means = [report["mean"]] if difficulty == "easy" else []
    if difficulty == "medium":
        means = [report["result"]["mean"]]
    if difficulty == "hard":
        means = [s["result"]["mean"] for s in report["samples"]]
    for sample_id, mean in zip(sample_ids, means, strict=True):
        sample = world.samples[sample_id]
        protocol = world.protocols[sample.protocol_id]
        ok = [r.value for r in sample.readings if r.flag == "ok"]
        assert mean == pytest.approx(mean_by_hand(ok, protocol.report_decimals))
        flagged = [r.value for r in sample.readings if r.flag != "ok"]
        if difficulty == "easy":
            assert not flagged
        else:  # flagged readings are outliers: using them gives another mean
            assert flagged
            assert mean_by_hand(ok + flagged, protocol.report_decimals) != mean
        twins = [p for p in world.protocols.values() if p.analyte == protocol.analyte]
        assert len(twins) == 2  # a decoy protocol for the same analyte, other limits
        assert twins[0].lower_limit != twins[1].lower_limit
    if difficulty == "hard":
        statuses = [s["status"] for s in report["samples"]]
        assert {"pass", "fail"} <= set(statuses)
        assert len({world.samples[s].protocol_id for s in sample_ids}) == 2
        for entry in report["samples"]:
            assert ("failure_reason" in entry) == (entry["status"] == "fail")


def test_status_follows_the_stated_rule() -> None:
    seen = set()
    for seed in range(60):
        data = LabTask.model_validate(LabReport(difficulty="medium").task(seed).data)
        sample = data.world.samples[data.subject_id]
        protocol = data.world.protocols[sample.protocol_id]
        valid = [float(v) for v in valid_values(sample)]
        mean = mean_by_hand(valid, protocol.report_decimals)
        if len(valid) < protocol.min_replicates:
            status = "inconclusive"
        else:
            status = "pass" if protocol.lower_limit <= mean <= protocol.upper_limit else "fail"
        assert data.expected["status"] == status
        seen.add(status)
    assert seen == {"pass", "fail", "inconclusive"}


def test_options_are_checked() -> None:
    with pytest.raises(gymbus.InputError, match="difficulty must be one of"):
        LabReport(difficulty="extreme")  # type: ignore[arg-type]


# --- episodes -------------------------------------------------------------------------------


def test_episode_spec() -> None:
    spec = spec_for("hard", 3)
    data = data_of(spec)
    system, user = spec.messages
    assert system.role == "system"
    assert isinstance(user, UserMessage)
    assert user.author == "environment"
    assert f"batch {data.subject_id}" in user.text
    shown = re.search(r"```json\n(.*?)\n```", user.text, re.DOTALL)
    assert shown is not None
    assert json.loads(shown[1]) == data.report_schema
    assert "round half away from zero" in user.text
    assert list(spec.tools) == ["get_batch", "get_sample", "get_protocol"]
    assert list(spec_for("easy").tools) == ["get_sample", "get_protocol"]
    assert EnvMetadata.model_validate(spec.metadata) == LabReport.metadata
    assert isinstance(spec.state, LabWorld)
    easy = spec_for("easy", 3)
    assert f"sample {data_of(easy).subject_id}" in easy.messages[1].text


def test_each_episode_gets_fresh_state() -> None:
    env = LabReport()
    task = env.task(1)
    first, second = env.episode(task), env.episode(task)
    assert first.state == second.state
    assert first.state is not second.state


def test_bad_tasks_are_rejected() -> None:
    env = LabReport()
    with pytest.raises(BadTaskError, match="belongs to 'other'"):
        env.episode(env.task(0).model_copy(update={"env": "other"}))
    with pytest.raises(BadTaskError, match="invalid data"):
        env.episode(Task(env="lab-report", task_id="lab-report/x/0", seed=0, data={}))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_oracle_scores_one_through_the_runtime(difficulty: str) -> None:
    env = LabReport(difficulty=difficulty)  # type: ignore[arg-type]
    rollouts = await gymbus.run(env, gymbus.OracleModel(), n=30)
    assert len(rollouts) == 30
    for r in rollouts:
        assert r.status == "scored", r.failure
        assert r.reward == 1.0, (r.seed, r.evidence)
        assert r.scores["used_tools"] == 1.0


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_null_model_scores_zero(difficulty: str) -> None:
    env = LabReport(difficulty=difficulty)  # type: ignore[arg-type]
    rollouts = await gymbus.run(env, gymbus.NullModel(), n=10)
    for r in rollouts:
        assert r.status == "scored"
        assert r.reward == 0.0
        assert r.scores["valid_json"] == 0.0


async def test_solver_is_a_pure_function_of_the_conversation() -> None:
    spec = spec_for("hard", 5)
    data = data_of(spec)
    done = await play(spec)
    calls = [len(m.tool_calls) for m in done.transcript if isinstance(m, AssistantMessage)]
    n_samples = len(data.world.batches[data.subject_id].sample_ids)
    assert calls[:2] == [1, n_samples]  # the batch, then all its samples at once
    solver = LabReportSolver()
    for i, message in enumerate(done.transcript):
        if isinstance(message, AssistantMessage):
            assert solver.next_message(Transcript(done.transcript[:i])) == message


async def test_solver_gives_up_on_a_tool_error() -> None:
    spec = spec_for("easy", 0)
    first = LabReportSolver().next_message(Transcript(spec.messages))
    (call,) = first.tool_calls
    failed = ToolMessage(tool_call_id=call.id, content="no sample", is_error=True)
    reply = LabReportSolver().next_message(Transcript([*spec.messages, first, failed]))
    assert not reply.tool_calls
    assert reply.text.startswith("I could not prepare the report")


# --- the capability: schema adherence --------------------------------------------------------


def with_prose(report: dict[str, Any]) -> str:
    return f"Here is the report:\n{json.dumps(report)}"


async def test_prose_around_the_json_scores_zero_through_the_runtime() -> None:
    """The usual failure: a correct report wrapped in a friendly sentence."""
    env = LabReport(difficulty="medium")

    def chatty(request: ModelRequest) -> AssistantMessage:
        message = LabReportSolver().next_message(request.conversation)
        if message.tool_calls:
            return message
        return AssistantMessage(content=with_prose(json.loads(message.text)))

    rollouts = await gymbus.run(env, gymbus.FunctionModel(chatty), n=5)
    for r in rollouts:
        assert r.status == "scored"
        assert r.reward == 0.0
        assert r.scores["valid_json"] == 0.0
        assert r.scores["used_tools"] == 1.0
        assert "must be only the JSON" in r.evidence["json_error"]


def drop(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(report: dict[str, Any]) -> None:
        node = report
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(report: dict[str, Any]) -> None:
        node = report
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


@pytest.mark.parametrize(
    ("name", "mutate", "scores"),
    [
        ("missing required field", drop("result.unit"), {"schema_valid": 0.0}),
        ("missing nested object", drop("sample"), {"schema_valid": 0.0}),
        ("wrong enum case", put("status", "PASS"), {"schema_valid": 0.0}),
        ("enum synonym", put("status", "passed"), {"schema_valid": 0.0}),
        ("extra field", put("result.comment", "looks fine"), {"schema_valid": 0.0}),
        ("number as string", put("result.n_valid_readings", "3"), {"schema_valid": 0.0}),
        (
            "datetime for a date",
            put("sample.collected_on", "2024-01-02T10:00:00Z"),
            {"schema_valid": 0.0},
        ),
        ("unit not in enum", put("result.unit", "milligrams per litre"), {"schema_valid": 0.0}),
        ("wrong value", put("result.mean", -1.0), {"schema_valid": 1.0, "field:result.mean": 0.0}),
    ],
)
async def test_schema_violations_score_zero(
    name: str, mutate: Callable[[dict[str, Any]], None], scores: dict[str, float]
) -> None:
    spec = spec_for("medium", 2)
    report = await oracle_report(spec)
    assert (await score_reply(spec, json.dumps(report))).reward == 1.0
    broken = copy.deepcopy(report)
    mutate(broken)
    score = await score_reply(spec, json.dumps(broken))
    assert score.reward == 0.0, name
    assert score.scores.items() >= scores.items()
    if score.scores["schema_valid"] == 0.0:
        assert score.evidence["schema_errors"], name


async def test_a_fenced_block_is_accepted_and_so_is_any_layout() -> None:
    spec = spec_for("medium", 4)
    report = await oracle_report(spec)
    assert (await score_reply(spec, f"```json\n{json.dumps(report)}\n```")).reward == 1.0
    assert (await score_reply(spec, json.dumps(report, indent=None))).reward == 1.0
    reordered = dict(reversed(list(report.items())))
    assert (await score_reply(spec, json.dumps(reordered))).reward == 1.0
    two_blocks = f"```json\n{json.dumps(report)}\n```\n```json\n{{}}\n```"
    assert (await score_reply(spec, two_blocks)).scores["valid_json"] == 0.0


def failed_index(report: dict[str, Any]) -> int:
    return next(i for i, s in enumerate(report["samples"]) if s["status"] == "fail")


async def test_hard_requires_failure_reason_exactly_when_failed() -> None:
    spec = spec_for("hard", 6)
    report = await oracle_report(spec)
    i = failed_index(report)
    no_reason = copy.deepcopy(report)
    del no_reason["samples"][i]["failure_reason"]
    score = await score_reply(spec, json.dumps(no_reason))
    assert score.reward == 0.0
    assert [e["path"] for e in score.evidence["schema_errors"]] == [f"$.samples[{i}]"]
    assert (
        "'failure_reason' is a required property" in score.evidence["schema_errors"][0]["message"]
    )
    j = next(k for k, s in enumerate(report["samples"]) if s["status"] == "pass")
    extra_reason = copy.deepcopy(report)
    extra_reason["samples"][j]["failure_reason"] = "below_lower_limit"
    score = await score_reply(spec, json.dumps(extra_reason))
    assert score.reward == 0.0
    assert [e["path"] for e in score.evidence["schema_errors"]] == [f"$.samples[{j}]"]


async def test_hard_samples_must_follow_batch_order() -> None:
    spec = spec_for("hard", 8)
    report = await oracle_report(spec)
    report["samples"].reverse()
    score = await score_reply(spec, json.dumps(report))
    assert score.reward == 0.0
    assert score.scores["schema_valid"] == 1.0
    assert score.scores["field:samples[0].sample_id"] == 0.0


async def test_using_flagged_readings_gives_a_wrong_mean() -> None:
    spec = spec_for("medium", 9)
    data = data_of(spec)
    sample = data.world.samples[data.subject_id]
    protocol = data.world.protocols[sample.protocol_id]
    report = await oracle_report(spec)
    everything = [r.value for r in sample.readings]
    report["result"]["mean"] = mean_by_hand(everything, protocol.report_decimals)
    report["result"]["n_valid_readings"] = len(everything)
    score = await score_reply(spec, json.dumps(report))
    assert score.reward == 0.0
    assert score.scores["field:result.mean"] == 0.0


# --- tools ----------------------------------------------------------------------------------


async def call_tool(spec: EpisodeSpec, name: str, **arguments: Any) -> dict[str, Any]:
    result = await spec.tools[name](arguments)
    assert isinstance(result, str)
    value: dict[str, Any] = orjson.loads(result)
    return value


async def test_tools_return_records_as_json() -> None:
    spec = spec_for("hard", 1)
    data = data_of(spec)
    batch = await call_tool(spec, "get_batch", batch_id=data.subject_id)
    sample = await call_tool(spec, "get_sample", sample_id=batch["sample_ids"][0])
    protocol = await call_tool(spec, "get_protocol", protocol_id=sample["protocol_id"])
    assert sample["readings"][0].keys() == {"replicate", "value", "flag"}
    assert protocol.keys() >= {"analyte", "unit", "lower_limit", "upper_limit", "report_decimals"}
    assert data.expected["samples[0].result.analyte"] == protocol["analyte"]


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("get_sample", {"sample_id": "S-00000"}, "no sample 'S-00000'"),
        ("get_protocol", {"protocol_id": "QC-XX-00"}, "no protocol 'QC-XX-00'"),
        ("get_batch", {"batch_id": "B-0000"}, "no batch 'B-0000'"),
    ],
)
async def test_unknown_ids_are_tool_input_errors(
    name: str, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolInputError, match=message):
        await spec_for("hard", 0).tools[name](arguments)


async def test_a_batch_id_given_as_sample_id_gets_a_hint() -> None:
    spec = spec_for("hard", 0)
    with pytest.raises(ToolInputError, match="that is a batch id: use get_batch"):
        await spec.tools["get_sample"]({"sample_id": data_of(spec).subject_id})


@pytest.mark.parametrize("arguments", [{}, {"sample_id": 12345}, {"sample_id": "S-1", "x": "y"}])
async def test_bad_arguments_are_rejected_by_the_schema(arguments: dict[str, Any]) -> None:
    with pytest.raises(ToolArgumentsError, match="invalid arguments for 'get_sample'"):
        await spec_for("easy", 0).tools["get_sample"](arguments)
