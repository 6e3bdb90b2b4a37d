"""The lab-report world: samples, test protocols and batches, the seeded generator that builds
one per task, the report schema for each difficulty and the answer key.

A sample has replicate readings, each flagged ``ok`` or not (flagged readings are wild
outliers that would change the result if used), and names the protocol it was tested
under. A protocol gives the analyte, its unit, the acceptance limits, the reporting
decimals and the minimum number of valid replicates. Decoy protocols test the same analyte
with other limits, so the protocol must be looked up, not guessed.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, get_args

from gymbus.envs.base import Difficulty
from gymbus.envs.verifiers import ExpectedCall
from gymbus.envs.verifiers.schema import leaf_values
from gymbus.runtime.messages import Frozen

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)

Status = Literal["pass", "fail", "inconclusive"]
STATUSES: tuple[Status, ...] = get_args(Status)
FAILURE_REASONS = ("above_upper_limit", "below_lower_limit")
Flag = Literal["ok", "instrument_error", "contaminated", "bubble_detected"]


class Reading(Frozen):
    replicate: int
    value: float
    flag: Flag = "ok"


class Sample(Frozen):
    sample_id: str
    material: str
    collected_at: str  # ISO 8601 date-time, UTC
    analyst: str
    protocol_id: str
    readings: tuple[Reading, ...]


class Protocol(Frozen):
    protocol_id: str
    analyte: str
    unit: str
    lower_limit: float
    upper_limit: float
    report_decimals: int
    min_replicates: int
    method: str


class Batch(Frozen):
    batch_id: str
    received_on: str
    site: str
    sample_ids: tuple[str, ...]


class LabWorld(Frozen):
    samples: dict[str, Sample]
    protocols: dict[str, Protocol]
    batches: dict[str, Batch]


class LabTask(Frozen):
    """``Task.data`` of a lab-report task: the world, what to report on, the schema the
    report must match and the answer key (expected value per field path)."""

    difficulty: Difficulty
    subject_id: str  # a sample id (easy, medium) or a batch id (hard)
    world: LabWorld
    report_schema: dict[str, Any]
    expected: dict[str, Any]
    required_calls: tuple[ExpectedCall, ...]


_WATER = ("river water", "drinking water", "groundwater", "wastewater effluent", "well water")
_FOOD = ("wheat flour", "rye crispbread", "skimmed milk powder", "infant formula", "oat flakes")
# analyte, unit, lower limit, upper limit, reporting decimals, method, materials
_ANALYTES: tuple[tuple[str, str, float, float, int, str, tuple[str, ...]], ...] = (
    ("pH", "pH", 6.5, 8.5, 2, "glass electrode potentiometry", _WATER),
    ("dissolved oxygen", "mg/L", 5.0, 12.0, 1, "luminescent probe", _WATER),
    ("nitrate", "mg/L", 1.0, 50.0, 1, "ion chromatography", _WATER),
    ("lead", "ug/L", 0.5, 10.0, 2, "ICP-MS", _WATER),
    ("turbidity", "NTU", 0.1, 4.0, 2, "nephelometry", _WATER),
    ("fluoride", "mg/L", 0.5, 1.5, 3, "ion-selective electrode", _WATER),
    ("chloride", "mg/L", 10.0, 250.0, 1, "argentometric titration", _WATER),
    ("moisture", "% w/w", 10.0, 14.5, 2, "oven drying at 105 C", _FOOD),
    ("sodium", "mg/100 g", 120.0, 400.0, 1, "flame photometry", _FOOD),
    ("ash content", "% w/w", 0.4, 0.9, 3, "muffle furnace at 550 C", _FOOD),
    ("ethanol", "% v/v", 4.5, 5.5, 2, "densitometry", ("lager beer", "pale ale", "cider")),
    ("viscosity", "mPa.s", 850.0, 1150.0, 1, "rotational viscometer", ("hand cream", "shampoo")),
)  # fmt: skip
_MATERIALS = {a[0]: a[6] for a in _ANALYTES}
UNITS: tuple[str, ...] = tuple(sorted({a[1] for a in _ANALYTES}))
_ANALYSTS = ("A. Mensah", "B. Kowalski", "C. Duarte", "D. Haddad", "E. Lindqvist", "F. Okoro")
_SITES = ("North plant", "Harbour station", "Valley reservoir", "East mill", "Lakeside lab")
_BAD_FLAGS: tuple[Flag, ...] = ("instrument_error", "contaminated", "bubble_detected")


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value))


def rounded_mean(values: list[Decimal], decimals: int) -> Decimal:
    """The arithmetic mean of ``values`` rounded half away from zero to ``decimals``."""
    mean = sum(values, Decimal(0)) / len(values)
    return mean.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def status_of(protocol: Protocol, valid: list[Decimal]) -> tuple[Status, str | None]:
    """The sample's status and, when it failed, why (the rule stated in the prompt)."""
    if len(valid) < protocol.min_replicates:
        return "inconclusive", None
    mean = rounded_mean(valid, protocol.report_decimals)
    if mean > _decimal(protocol.upper_limit):
        return "fail", "above_upper_limit"
    if mean < _decimal(protocol.lower_limit):
        return "fail", "below_lower_limit"
    return "pass", None


def _is_tie(values: list[Decimal], decimals: int) -> bool:
    scaled = sum(values, Decimal(0)) / len(values) * Decimal(10) ** decimals
    return scaled % 1 == Decimal("0.5")


def _readings(
    rng: random.Random, protocol: Protocol, status: Status, flagged: int
) -> list[Reading]:
    low, high = protocol.lower_limit, protocol.upper_limit
    if status == "fail" and rng.random() < 0.5:
        center = low * rng.uniform(0.5, 0.85)
    elif status == "fail":
        center = high * rng.uniform(1.1, 1.4)
    else:
        center = low + (high - low) * rng.uniform(0.2, 0.8)
    n_valid = protocol.min_replicates - 1 if status == "inconclusive" else rng.randint(3, 5)
    places = protocol.report_decimals + 1
    step = Decimal(1).scaleb(-places)
    valid = [
        Decimal(center * rng.uniform(0.98, 1.02)).quantize(step) for _ in range(max(1, n_valid))
    ]
    while _is_tie(valid, protocol.report_decimals):  # no rounding tie: fair to floats
        valid[-1] += step
    outliers = [
        Decimal(center * rng.choice((0.2, 3.0)) * rng.uniform(0.9, 1.1)).quantize(step)
        for _ in range(flagged + max(0, protocol.min_replicates - len(valid) - flagged))
    ]
    values = [(v, "ok") for v in valid] + [(v, rng.choice(_BAD_FLAGS)) for v in outliers]
    rng.shuffle(values)
    return [
        Reading(replicate=i, value=float(v), flag=flag)
        for i, (v, flag) in enumerate(values, start=1)
    ]


def _protocols(rng: random.Random, difficulty: Difficulty) -> dict[str, Protocol]:
    """Three protocols for three analytes, then a decoy for each: same analyte, other
    limits and id."""
    analytes = rng.sample(_ANALYTES, 3)
    factors = [rng.choice((0.9, 1.0, 1.1)) for _ in analytes]
    factors += [f * rng.choice((0.8, 1.25)) for f in factors]
    ids = rng.sample(range(10, 100), 6)
    protocols: dict[str, Protocol] = {}
    for k, (analyte, unit, low, high, decimals, method, _) in enumerate(analytes * 2):
        code = "".join(c for c in analyte.upper() if c.isalpha())[:3]
        protocol = Protocol(
            protocol_id=f"QC-{code}-{ids[k]}",
            analyte=analyte,
            unit=unit,
            lower_limit=round(low * factors[k], decimals),
            upper_limit=round(high * factors[k], decimals),
            report_decimals=decimals,
            min_replicates=rng.choice((2, 3)) if difficulty == "easy" else 3,
            method=method,
        )
        protocols[protocol.protocol_id] = protocol
    return protocols


def _date(rng: random.Random) -> str:
    return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _world(rng: random.Random, difficulty: Difficulty) -> tuple[LabWorld, str]:
    """The world and the subject of the report: the first sample, or (hard) the batch of
    the first 3 or 4 samples. Two more samples are unrelated decoys."""
    protocols = _protocols(rng, difficulty)
    used = list(protocols)[: 2 if difficulty == "hard" else 1]
    statuses: list[Status] = ["pass"]
    if difficulty == "medium":
        statuses = [rng.choice(STATUSES)]
    elif difficulty == "hard":
        statuses = ["pass", "fail", *rng.choices(STATUSES, k=rng.randint(1, 2))]
        rng.shuffle(statuses)
    n_subject = len(statuses)
    statuses += rng.choices(STATUSES, k=2)
    numbers = rng.sample(range(10000, 100000), len(statuses))
    samples: dict[str, Sample] = {}
    assigned = [used[i % len(used)] for i in range(n_subject)]  # hard: both protocols
    rng.shuffle(assigned)
    assigned += rng.choices(list(protocols), k=len(statuses) - n_subject)
    for status, number, protocol_id in zip(statuses, numbers, assigned, strict=True):
        protocol = protocols[protocol_id]
        flagged = 0 if difficulty == "easy" else rng.randint(1, 2)
        time = f"{rng.randint(6, 17):02d}:{rng.choice((0, 15, 30, 45)):02d}:00Z"
        sample = Sample(
            sample_id=f"S-{number}",
            material=rng.choice(_MATERIALS[protocol.analyte]),
            collected_at=f"{_date(rng)}T{time}",
            analyst=rng.choice(_ANALYSTS),
            protocol_id=protocol.protocol_id,
            readings=tuple(_readings(rng, protocol, status, flagged)),
        )
        samples[sample.sample_id] = sample
    batches: dict[str, Batch] = {}
    subject = next(iter(samples))
    if difficulty == "hard":
        batch = Batch(
            batch_id=f"B-{rng.randint(1000, 9999)}",
            received_on=_date(rng),
            site=rng.choice(_SITES),
            sample_ids=tuple(list(samples)[:n_subject]),
        )
        batches[batch.batch_id] = batch
        subject = batch.batch_id
    return LabWorld(samples=samples, protocols=protocols, batches=batches), subject


def _object(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


def report_schema(difficulty: Difficulty) -> dict[str, Any]:
    """The JSON Schema the report must match: flat (easy), nested with enums (medium), an
    array of nested sample reports with a conditional ``failure_reason`` (hard)."""
    number, integer = {"type": "number"}, {"type": "integer", "minimum": 0}
    sample_id = {"type": "string", "pattern": "^S-[0-9]{5}$"}
    protocol_id = {"type": "string", "pattern": "^QC-[A-Z]{2,3}-[0-9]{2}$"}
    unit = {"enum": list(UNITS)}
    header = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    if difficulty == "easy":
        properties = {
            "sample_id": sample_id,
            "analyte": {"type": "string"},
            "n_valid_readings": integer,
            "mean": number,
        }
        return header | _object(properties)
    status = {"enum": list(STATUSES)}
    if difficulty == "medium":
        sample = {
            "id": sample_id,
            "material": {"type": "string"},
            "collected_on": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        }
        result = {
            "analyte": {"type": "string"},
            "unit": unit,
            "n_valid_readings": integer,
            "mean": number,
            "min": number,
            "max": number,
        }
        properties = {
            "sample": _object(sample),
            "protocol_id": protocol_id,
            "result": _object(result),
            "status": status,
        }
        return header | _object(properties)
    result = {
        "analyte": {"type": "string"},
        "unit": unit,
        "n_valid_readings": integer,
        "mean": number,
    }
    sample_report = _object(
        {
            "sample_id": sample_id,
            "protocol_id": protocol_id,
            "result": _object(result),
            "status": status,
            "failure_reason": {"enum": list(FAILURE_REASONS)},
        },
        required=["sample_id", "protocol_id", "result", "status"],
    ) | {
        "if": {"properties": {"status": {"const": "fail"}}, "required": ["status"]},
        "then": {"required": ["failure_reason"]},
        "else": {"not": {"required": ["failure_reason"]}},
    }
    counts = {"pass": integer, "fail": integer, "inconclusive": integer}
    properties = {
        "batch_id": {"type": "string", "pattern": "^B-[0-9]{4}$"},
        "samples": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/sample_report"}},
        "summary": _object(counts),
    }
    return header | _object(properties) | {"$defs": {"sample_report": sample_report}}


def valid_values(sample: Sample) -> list[Decimal]:
    """The values of the readings flagged ``ok``, exactly as reported."""
    return [_decimal(r.value) for r in sample.readings if r.flag == "ok"]


def _result(sample: Sample, protocol: Protocol, *, extremes: bool) -> dict[str, Any]:
    valid = valid_values(sample)
    result: dict[str, Any] = {
        "analyte": protocol.analyte,
        "unit": protocol.unit,
        "n_valid_readings": len(valid),
        "mean": float(rounded_mean(valid, protocol.report_decimals)),
    }
    if extremes:
        result |= {"min": float(min(valid)), "max": float(max(valid))}
    return result


def expected_report(world: LabWorld, subject_id: str, difficulty: Difficulty) -> dict[str, Any]:
    """The one correct report (the answer key), built from the world."""
    if difficulty == "hard":
        reports: list[dict[str, Any]] = []
        for sample_id in world.batches[subject_id].sample_ids:
            sample = world.samples[sample_id]
            protocol = world.protocols[sample.protocol_id]
            status, reason = status_of(protocol, valid_values(sample))
            report: dict[str, Any] = {
                "sample_id": sample_id,
                "protocol_id": protocol.protocol_id,
                "result": _result(sample, protocol, extremes=False),
                "status": status,
            }
            if reason is not None:
                report["failure_reason"] = reason
            reports.append(report)
        summary = {s: sum(r["status"] == s for r in reports) for s in STATUSES}
        return {"batch_id": subject_id, "samples": reports, "summary": summary}
    sample = world.samples[subject_id]
    protocol = world.protocols[sample.protocol_id]
    result = _result(sample, protocol, extremes=True)
    if difficulty == "easy":
        keys = ("analyte", "n_valid_readings", "mean")
        return {"sample_id": subject_id} | {k: result[k] for k in keys}
    return {
        "sample": {
            "id": subject_id,
            "material": sample.material,
            "collected_on": sample.collected_at[:10],
        },
        "protocol_id": protocol.protocol_id,
        "result": result,
        "status": status_of(protocol, valid_values(sample))[0],
    }


def _required_calls(world: LabWorld, subject_id: str) -> tuple[ExpectedCall, ...]:
    calls: list[ExpectedCall] = []
    sample_ids: tuple[str, ...] = (subject_id,)
    if subject_id in world.batches:
        calls.append(ExpectedCall(name="get_batch", arguments={"batch_id": subject_id}))
        sample_ids = world.batches[subject_id].sample_ids
    calls += [ExpectedCall(name="get_sample", arguments={"sample_id": s}) for s in sample_ids]
    protocol_ids = dict.fromkeys(world.samples[s].protocol_id for s in sample_ids)
    calls += [ExpectedCall(name="get_protocol", arguments={"protocol_id": p}) for p in protocol_ids]
    return tuple(calls)


def generate(seed: int, difficulty: Difficulty) -> LabTask:
    """The task for ``seed`` at ``difficulty``; draws only from ``random.Random(seed)``."""
    rng = random.Random(seed)
    world, subject_id = _world(rng, difficulty)
    return LabTask(
        difficulty=difficulty,
        subject_id=subject_id,
        world=world,
        report_schema=report_schema(difficulty),
        expected=leaf_values(expected_report(world, subject_id, difficulty)),
        required_calls=_required_calls(world, subject_id),
    )
