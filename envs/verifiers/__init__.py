"""Reusable verifiers: exact match, JSON Schema, programmatic constraints, state checks,
weighted composites. Each returns a :class:`~gymbus.runtime.verification.Score` with
named sub-scores and the evidence behind them."""

from gymbus.envs.verifiers.code import CodeExecutionVerifier, CodeTest, extract_python
from gymbus.envs.verifiers.composite import CompositeMode, CompositeVerifier, Part
from gymbus.envs.verifiers.constraints import Constraint, ConstraintVerifier
from gymbus.envs.verifiers.exact import (
    ExactMatchVerifier,
    ExpectedCall,
    RequiredCalls,
    SubScore,
    SubScorer,
    final_answer,
    last_integer,
    stripped_text,
)
from gymbus.envs.verifiers.schema import JsonSchemaVerifier, extract_json
from gymbus.envs.verifiers.state import (
    CheckResult,
    StateCheck,
    StateCheckVerifier,
    TranscriptCheck,
)

__all__ = [
    "CheckResult",
    "CodeExecutionVerifier",
    "CodeTest",
    "CompositeMode",
    "CompositeVerifier",
    "Constraint",
    "ConstraintVerifier",
    "ExactMatchVerifier",
    "ExpectedCall",
    "JsonSchemaVerifier",
    "Part",
    "RequiredCalls",
    "StateCheck",
    "StateCheckVerifier",
    "SubScore",
    "SubScorer",
    "TranscriptCheck",
    "extract_json",
    "extract_python",
    "final_answer",
    "last_integer",
    "stripped_text",
]
