"""``lab-report``: look up a sample's readings and its test protocol, then report the results
as ONE JSON object that matches a given JSON Schema (capability: schema adherence).

The schema is shown in the prompt, with the rules that fill each field (which readings are
valid, how the mean is rounded, how the status is decided). Difficulty grows the schema:
easy is a flat object of four fields; medium nests ``sample`` and ``result`` objects and adds
enums (``status``, ``unit``) and a date that must be reformatted; hard reports a batch: an
array of nested sample reports (``$ref``) in batch order, a ``failure_reason`` required
exactly when ``status`` is ``"fail"`` (``if``/``then``/``else``) and a summary of counts.
The data comes only from the tools (``get_sample``, ``get_protocol``, hard: ``get_batch``).

Verification (:class:`~gymbus.envs.verifiers.schema.JsonSchemaVerifier`): the reply must be
only the JSON (or one ```` ```json ```` block), valid against the schema, with every field
equal to the answer key. Prose around the JSON, a missing required field, an extra field,
a wrong enum value, a number written as a string: reward 0. Null check: "I can't help with
that." is not JSON, so ``valid_json`` is 0 and the reward is 0.
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel

from gymbus.envs.base import Environment
from gymbus.envs.builtin.lab_data import (
    FAILURE_REASONS,
    STATUSES,
    LabTask,
    LabWorld,
    Protocol,
    generate,
    rounded_mean,
    status_of,
)
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers import RequiredCalls
from gymbus.envs.verifiers.schema import JsonSchemaVerifier
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolArgumentsError, ToolInputError
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import (
    AssistantMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import FunctionTool, Toolbox, string_tool_spec
from gymbus.runtime.transcript import Transcript

__all__ = ["LabReport", "LabReportSolver", "instructions", "lab_tools", "request"]

_SYSTEM_PROMPT = (
    "You are a laboratory data assistant. You read sample records, test protocols and "
    "batches through the tools and write machine-readable reports. Take every value from "
    "the records; never guess one."
)
_STATUS_RULE = (
    'status is "inconclusive" when the sample has fewer valid readings than the protocol\'s '
    'min_replicates; otherwise "pass" when lower_limit <= mean <= upper_limit (using the '
    'rounded mean), otherwise "fail".'
)


def instructions(difficulty: str) -> list[str]:
    """The rules that say how to fill in each field of the report."""
    rules = [
        'Valid readings are the readings whose flag is "ok"; ignore every other reading.',
        "n_valid_readings is the number of valid readings.",
        "mean is the arithmetic mean of the valid readings, rounded to the protocol's "
        "report_decimals decimal places (round half away from zero), as a JSON number.",
    ]
    if difficulty == "easy":
        return [*rules, "analyte is the protocol's analyte, exactly as written."]
    rules += [
        "protocol_id is the id of the protocol the sample was tested under; analyte and "
        "unit are that protocol's, exactly as written.",
        _STATUS_RULE,
    ]
    if difficulty == "medium":
        return [
            *rules,
            "sample.collected_on is the date part (YYYY-MM-DD) of the sample's collected_at.",
            "result.min and result.max are the smallest and largest valid readings.",
        ]
    return [
        *rules,
        "samples has one entry per sample of the batch, in the order the batch lists them.",
        f'A failed sample has a failure_reason: "{FAILURE_REASONS[0]}" or '
        f'"{FAILURE_REASONS[1]}"; a sample that did not fail has no failure_reason field.',
        "summary counts the batch's samples with each status.",
    ]


def request(subject_id: str, schema: dict[str, Any], difficulty: str) -> str:
    """The user's request: what to report on, the schema, and the rules."""
    what = f"every sample of batch {subject_id}" if difficulty == "hard" else f"sample {subject_id}"
    rules = "\n".join(f"- {rule}" for rule in instructions(difficulty))
    return (
        f"Prepare the quality-control report for {what}, using the tools to read the "
        "records.\n\n"
        "Reply with one JSON object that matches this JSON Schema (draft 2020-12): the JSON "
        "only, or a single ```json code block and nothing else. Any other text makes the "
        "report invalid.\n\n"
        f"```json\n{json.dumps(schema, indent=2)}\n```\n\n"
        f"How to fill it in:\n{rules}"
    )


def _json(record: BaseModel) -> str:
    return orjson.dumps(record.model_dump(mode="json")).decode()


def lab_tools(world: LabWorld) -> Toolbox:
    """The read-only record tools over ``world``. Unknown ids raise ToolInputError."""

    def get_sample(sample_id: str) -> str:
        sample = world.samples.get(sample_id)
        if sample is None:
            hint = "; that is a batch id: use get_batch" if sample_id in world.batches else ""
            raise ToolInputError(f"no sample {sample_id!r}{hint}; sample ids look like 'S-12345'")
        return _json(sample)

    def get_protocol(protocol_id: str) -> str:
        protocol = world.protocols.get(protocol_id)
        if protocol is None:
            raise ToolInputError(
                f"no protocol {protocol_id!r}; protocol ids (like 'QC-NIT-12') are on the "
                "sample records"
            )
        return _json(protocol)

    def get_batch(batch_id: str) -> str:
        batch = world.batches.get(batch_id)
        if batch is None:
            raise ToolInputError(f"no batch {batch_id!r}; batch ids look like 'B-1234'")
        return _json(batch)

    tools = [
        FunctionTool(
            get_sample,
            string_tool_spec(
                "get_sample",
                "Read a sample record: material, collection time, protocol id and the "
                "replicate readings with their flags.",
                sample_id="The sample id, like 'S-12345'.",
            ),
        ),
        FunctionTool(
            get_protocol,
            string_tool_spec(
                "get_protocol",
                "Read a test protocol: analyte, unit, acceptance limits, reporting decimals "
                "and minimum number of valid replicates.",
                protocol_id="The protocol id, like 'QC-NIT-12'.",
            ),
        ),
    ]
    if world.batches:
        tools.insert(
            0,
            FunctionTool(
                get_batch,
                string_tool_spec(
                    "get_batch",
                    "Read a batch record: site, date received and its sample ids in order.",
                    batch_id="The batch id, like 'B-1234'.",
                ),
            ),
        )
    return Toolbox(tools)


class LabReport(Environment):
    name = "lab-report"
    description = (
        "Look up lab samples, their test protocols (and, hard, a batch) with tools and report "
        "the results as one JSON object matching a given JSON Schema: flat (easy), nested with "
        "enums (medium), an array of nested reports with a conditional field (hard). Reward: "
        "schema-valid JSON whose every field equals the answer key."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-step",),
        core_capabilities=("schema-adherence",),
        knowledge_domain="science",
        task_type="structured-report",
        verification_method="schema",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        # a fresh world per episode: parallel episodes never share state
        data = self.task_data(task, LabTask)
        prompt = request(data.subject_id, data.report_schema, data.difficulty)
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content=_SYSTEM_PROMPT),
                UserMessage(content=prompt, author="environment"),
            ),
            tools=lab_tools(data.world),
            verifier=JsonSchemaVerifier(
                data.report_schema,
                expected=data.expected,
                sub_scorers=(RequiredCalls(data.required_calls),),
            ),
            solver=LabReportSolver(),
            limits=Limits(max_turns=16),
            metadata=self.metadata.model_dump(mode="json"),
            state=data.world,
        )


_SUBJECT = re.compile(r"\b(?:sample (S-[0-9]{5})|batch (B-[0-9]{4}))\b")
_SCHEMA_BLOCK = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


class _LookupsPendingError(Exception):
    """Records still to be read: ``calls`` reads them (control flow)."""

    def __init__(self, calls: list[ToolCall]) -> None:
        super().__init__(calls)
        self.calls = calls


class _CannotReportError(Exception):
    """A lookup failed or the request is unreadable: the solver gives up."""


class _Records:
    """The record lookups made so far in a conversation, their results, and the ones the
    solver wants next (issued together, as parallel tool calls)."""

    def __init__(self, conversation: Transcript) -> None:
        self._calls: dict[tuple[str, str], str] = {}  # (name, id argument) → call id
        self._results: dict[str, ToolMessage] = {}
        self._n_calls = 0
        self.pending: list[ToolCall] = []
        for message in conversation:
            if isinstance(message, AssistantMessage):
                for call in message.tool_calls:
                    self._n_calls += 1
                    with suppress(ToolArgumentsError):
                        arguments = call.parsed_arguments()
                        self._calls[(call.name, str(next(iter(arguments.values()), "")))] = call.id
            elif isinstance(message, ToolMessage):
                self._results[message.tool_call_id] = message

    def get(self, tool: str, argument: str, value: str) -> dict[str, Any] | None:
        """The record ``tool(argument=value)`` returned, or ``None`` (then it is pending)."""
        call_id = self._calls.get((tool, value))
        result = self._results.get(call_id) if call_id is not None else None
        if result is None:
            call_id = f"call_{self._n_calls + len(self.pending) + 1}"
            arguments = orjson.dumps({argument: value}).decode()
            self.pending.append(ToolCall(id=call_id, name=tool, arguments=arguments))
            return None
        if result.is_error:
            raise _CannotReportError(f"{tool}({value!r}) failed: {result.text}")
        record = json.loads(result.text, parse_float=Decimal)
        if not isinstance(record, dict):
            raise _CannotReportError(f"{tool}({value!r}) returned {result.text!r}")
        return record

    def flush(self) -> None:
        if self.pending:
            raise _LookupsPendingError(self.pending)


def _properties(schema: Any, name: str) -> list[str]:
    """The property names of the object schema called ``name``, wherever it is nested."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == name and isinstance(value, dict) and "properties" in value:
                return list(value["properties"])
            if found := _properties(value, name):
                return found
    return []


def _assess(sample: dict[str, Any], protocol_record: dict[str, Any]) -> dict[str, Any]:
    """Everything the rules say about one sample: its result fields, status and reason."""
    protocol = Protocol.model_validate(protocol_record)
    valid = [Decimal(str(r["value"])) for r in sample["readings"] if r["flag"] == "ok"]
    if not valid:
        raise _CannotReportError(f"sample {sample['sample_id']} has no valid reading")
    status, reason = status_of(protocol, valid)
    return {
        "analyte": protocol.analyte,
        "unit": protocol.unit,
        "n_valid_readings": len(valid),
        "mean": float(rounded_mean(valid, protocol.report_decimals)),
        "min": float(min(valid)),
        "max": float(max(valid)),
        "status": status,
        "failure_reason": reason,
    }


class LabReportSolver:
    """The reference solver: reads the request (subject id and schema) and the records the
    tools return — never the answer key — then writes the report. Lookups that can be made
    together are made in one turn. A pure function of the conversation."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        try:
            report = self._report(conversation)
        except _LookupsPendingError as pending:
            return AssistantMessage(tool_calls=tuple(pending.calls))
        except _CannotReportError as failed:
            return AssistantMessage(content=f"I could not prepare the report: {failed}")
        return AssistantMessage(content=json.dumps(report, indent=2))

    @staticmethod
    def _report(conversation: Transcript) -> dict[str, Any]:
        prompt = next((m.text for m in conversation if isinstance(m, UserMessage)), "")
        subject, block = _SUBJECT.search(prompt), _SCHEMA_BLOCK.search(prompt)
        if subject is None or block is None:
            raise _CannotReportError("the request names no sample or batch, or no schema")
        schema = json.loads(block[1])
        records = _Records(conversation)
        if subject[2] is not None:  # a batch: an array of sample reports
            batch = records.get("get_batch", "batch_id", subject[2])
            records.flush()
            assert batch is not None
            sample_ids: list[str] = batch["sample_ids"]
        else:
            sample_ids = [subject[1]]
        samples = [records.get("get_sample", "sample_id", s) for s in sample_ids]
        records.flush()
        protocol_ids = dict.fromkeys(s["protocol_id"] for s in samples if s is not None)
        protocols = {p: records.get("get_protocol", "protocol_id", p) for p in protocol_ids}
        records.flush()
        result_keys = _properties(schema, "result")
        reports = []
        for sample in samples:
            assert sample is not None
            protocol = protocols[sample["protocol_id"]]
            assert protocol is not None
            facts = _assess(sample, protocol)
            report = {
                "sample_id": sample["sample_id"],
                "protocol_id": sample["protocol_id"],
                "result": {k: facts[k] for k in result_keys},
                "status": facts["status"],
            }
            if facts["failure_reason"] is not None:
                report["failure_reason"] = facts["failure_reason"]
            reports.append((sample, facts, report))
        if subject[2] is not None:
            entries = [report for _, _, report in reports]
            summary = {s: sum(e["status"] == s for e in entries) for s in STATUSES}
            return {"batch_id": subject[2], "samples": entries, "summary": summary}
        sample, facts, report = reports[0]
        if not result_keys:  # the flat report
            keys = ("analyte", "n_valid_readings", "mean")
            return {"sample_id": sample["sample_id"]} | {k: facts[k] for k in keys}
        return {
            "sample": {
                "id": sample["sample_id"],
                "material": sample["material"],
                "collected_on": sample["collected_at"][:10],
            },
            "protocol_id": report["protocol_id"],
            "result": report["result"],
            "status": report["status"],
        }
