"""Code-execution verification: run the policy's Python against hidden tests in a subprocess.

Code is read from the final answer: the last fenced block tagged ``python`` or ``py``
(```` ```python ````), else the last untagged fenced block; an answer without one has no
code and scores 0. The code runs in a :class:`~gymbus.envs.sandbox.Sandbox` (standard
library only, a fresh temporary directory, rlimits, no network where the platform allows,
a wall-clock timeout that kills every process it started — see docs/sandbox.md), as a
module named ``solution`` (so an ``if __name__ == "__main__"`` block does not run), loaded
by a small harness that calls the tested functions. Its ``print`` output is kept up to
``output_limit`` characters and the rest dropped (counted in the evidence). Expected
outputs never enter the subprocess: it receives only the function names and arguments,
and reports each call's return value (or the exception's class name) as JSON; the
comparison happens here.

Whose fault: anything the code does — a syntax error, an exception, a timeout, a crash, a
refused operation — is the policy's failure (reward 0, evidence says what happened). A
sandbox that cannot start (no interpreter, the harness never reported in) raises
:class:`~gymbus.runtime.errors.VerifierError`, so the episode fails with kind ``verifier``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from gymbus.envs.sandbox import Sandbox, SandboxError, SandboxLimits, SandboxResult
from gymbus.envs.verifiers.exact import SubScorer, final_answer
from gymbus.runtime.errors import VerifierError
from gymbus.runtime.messages import Frozen
from gymbus.runtime.verification import CompletedEpisode, Score

__all__ = ["CodeExecutionVerifier", "CodeTest", "extract_python", "same_value"]

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S)
_EVIDENCE_CHARS = 2000


def extract_python(text: str) -> str | None:
    """The code of ``text``: the last ```` ```python ```` (or ```` ```py ````) fenced block,
    else the last untagged fenced block, else ``None``."""
    tagged: str | None = None
    untagged: str | None = None
    for match in _FENCE.finditer(text):
        tag, body = match.group(1).lower(), match.group(2)
        if tag in ("python", "py", "python3"):
            tagged = body
        elif not tag:
            untagged = body
    return tagged if tagged is not None else untagged


class CodeTest(Frozen):
    """One hidden test: ``function(*args)`` must return ``expected`` (compared as JSON, see
    :func:`same_value`) or, when ``raises`` is set, raise an exception of that class name."""

    function: str
    args: tuple[Any, ...] = ()
    expected: Any = None
    raises: str | None = None


def same_value(expected: Any, got: Any) -> bool:
    """JSON values equal, strictly: ``True`` is not ``1``, ``1`` is not ``"1"``; a float
    expected matches a number within 1e-9 (relative or absolute); lists match tuples."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, float) and isinstance(got, int | float):
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, int) and isinstance(got, int):
        return expected == got
    if isinstance(expected, list | tuple) and isinstance(got, list | tuple):
        return len(expected) == len(got) and all(map(same_value, expected, got))
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(
            same_value(v, got[k]) for k, v in expected.items()
        )
    return type(expected) is type(got) and expected == got


# Runs in the subprocess. Writes "ready" before touching the candidate's code (so a missing
# line means the sandbox itself failed), then one JSON line per test, flushed as it goes.
_HARNESS = r"""
import io, json, sys
out = open("results.jsonl", "w", buffering=1)
out.write('{"ready": true}\n')

class Capped(io.TextIOBase):
    def __init__(self, stream, limit):
        self.stream, self.left, self.dropped = stream, limit, 0
    def writable(self):
        return True
    def write(self, text):
        kept = text[: max(self.left, 0)]
        self.left -= len(kept)
        self.dropped += len(text) - len(kept)
        if kept:
            self.stream.write(kept)
        return len(text)
    def flush(self):
        self.stream.flush()

limit = int(sys.argv[1])
sys.stdout = Capped(sys.__stdout__, limit)
sys.stderr = Capped(sys.__stderr__, limit)

def describe(exc):
    try:
        message = str(exc)[:300]
    except BaseException:
        message = "(unprintable)"
    return {"raised": type(exc).__name__, "message": message}

def emit(record):
    try:
        line = json.dumps(record, allow_nan=False)
    except Exception as exc:
        line = json.dumps({"index": record.get("index"), "unserializable": type(exc).__name__})
    if len(line) > 20000:
        line = json.dumps({"index": record.get("index"), "unserializable": "too large"})
    out.write(line + "\n")

tests = json.load(open("tests.json"))
namespace = {"__name__": "solution", "__builtins__": __builtins__}
try:
    exec(compile(open("solution.py").read(), "solution.py", "exec"), namespace)
except BaseException as exc:
    emit({"load_error": describe(exc)})
else:
    for i, (name, args) in enumerate(tests):
        fn = namespace.get(name)
        if not callable(fn):
            emit({"index": i, "missing": name})
            continue
        try:
            emit({"index": i, "value": fn(*args)})
        except BaseException as exc:
            emit({"index": i, **describe(exc)})
emit({"done": True, "dropped": [sys.stdout.dropped, sys.stderr.dropped]})
"""


class CodeExecutionVerifier:
    """Reward 1.0 when the final answer's code passes every hidden test, else 0.0.

    Sub-scores: ``all_passed`` (the reward) and ``tests_passed`` (the fraction passed).
    Evidence: ``code_found``, ``load_error``, ``timed_out``, ``exit_code``, ``stdout`` and
    ``stderr`` (first 2,000 characters), ``output_dropped`` (characters past
    ``output_limit``), ``refused`` (what the sandbox's audit hook refused) and, per test,
    the call, what was expected and what came back.
    ``sub_scorers`` add evidence only.
    """

    __slots__ = ("_output_limit", "_sandbox", "_sub_scorers", "_tests")

    def __init__(
        self,
        tests: Sequence[CodeTest],
        *,
        timeout: float = 10.0,
        memory_bytes: int = 512 * 2**20,
        output_limit: int = 64 * 2**10,
        file_bytes: int = 16 * 2**20,
        python: str = sys.executable,
        sub_scorers: Sequence[SubScorer] = (),
    ) -> None:
        if not tests:
            raise ValueError("CodeExecutionVerifier needs at least one test")
        self._tests = tuple(tests)
        self._output_limit = output_limit
        limits = SandboxLimits(
            timeout=timeout,
            cpu_seconds=math.ceil(timeout) + 1,
            memory_bytes=memory_bytes,
            file_bytes=file_bytes,
            output_limit=_EVIDENCE_CHARS * 4,  # bytes, for 2,000 characters of evidence
        )
        self._sandbox = Sandbox(limits, python=python)
        self._sub_scorers = tuple(sub_scorers)

    @property
    def tests(self) -> tuple[CodeTest, ...]:
        return self._tests

    async def verify(self, episode: CompletedEpisode) -> Score:
        answer = final_answer(episode.transcript)
        code = extract_python(answer.text) if answer is not None else None
        evidence: dict[str, Any] = {"code_found": code is not None}
        results: list[dict[str, Any]] | None = None
        if code is not None:
            run = await self._run(code)
            results = _read_results(run.files.get("results.jsonl", b""))
            if not results or not results[0].get("ready"):
                raise VerifierError(
                    f"code sandbox failed before running the code (exit code "
                    f"{run.exit_code}): {run.stderr[:_EVIDENCE_CHARS]!r}"
                )
            results = results[1:]
            load_error = next((r["load_error"] for r in results if "load_error" in r), None)
            done = next((r for r in results if r.get("done")), {})
            evidence |= {
                "load_error": load_error,
                "timed_out": run.timed_out,
                "exit_code": run.exit_code,
                "stdout": run.stdout[:_EVIDENCE_CHARS],
                "stderr": run.stderr[:_EVIDENCE_CHARS],
                "output_dropped": sum(done.get("dropped", [0, 0])),
                "refused": list(run.refused),
            }
        outcomes = self._judge(results)
        passed = sum(1 for o in outcomes if o["passed"])
        all_passed = 1.0 if passed == len(self._tests) else 0.0
        scores = {"all_passed": all_passed, "tests_passed": passed / len(self._tests)}
        evidence["tests"] = outcomes
        for sub_scorer in self._sub_scorers:
            part = sub_scorer(episode)
            scores.update(part.scores)
            evidence.update(part.evidence)
        return Score(reward=all_passed, scores=scores, evidence=evidence)

    async def _run(self, code: str) -> SandboxResult:
        calls = [[t.function, list(t.args)] for t in self._tests]
        try:
            return await self._sandbox.run(
                _HARNESS,
                args=[str(self._output_limit)],
                files={"solution.py": code, "tests.json": orjson.dumps(calls)},
                collect=["results.jsonl"],
                filename="harness.py",
            )
        except SandboxError as exc:
            raise VerifierError(f"code sandbox {exc}") from exc

    def _judge(self, results: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        by_index = {r["index"]: r for r in results or () if "index" in r}
        outcomes = []
        for i, test in enumerate(self._tests):
            result = by_index.get(i)
            outcome: dict[str, Any] = {"function": test.function, "args": list(test.args)}
            if test.raises is not None:
                outcome["expected_raises"] = test.raises
            else:
                outcome["expected"] = test.expected
            if result is None:
                outcome |= {"passed": False, "got": None, "note": "not run"}
            elif "missing" in result:
                outcome |= {"passed": False, "got": None, "note": "function not defined"}
            elif "raised" in result:
                outcome |= {
                    "passed": result["raised"] == test.raises,
                    "raised": result["raised"],
                    "message": result["message"],
                }
            elif "unserializable" in result:
                reason = result["unserializable"]
                outcome |= {"passed": False, "got": None, "note": f"unusable return ({reason})"}
            else:
                passed = test.raises is None and same_value(test.expected, result["value"])
                outcome |= {"passed": passed, "got": result["value"]}
            outcomes.append(outcome)
        return outcomes


def _read_results(data: bytes) -> list[dict[str, Any]]:
    results = []
    for line in data.splitlines():
        try:
            value = json.loads(line)  # not orjson: integers may exceed 64 bits
        except ValueError:
            break  # a line cut short by a kill or a size limit: the rest did not happen
        if isinstance(value, dict):
            results.append(value)
    return results
