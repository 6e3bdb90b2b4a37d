"""Code-execution verification: run the policy's Python against hidden tests in a subprocess.

Code is read from the final answer: the last fenced block tagged ``python`` or ``py``
(```` ```python ````), else the last untagged fenced block; an answer without one has no
code and scores 0. The code runs with ``sys.executable -I -S`` (isolated, standard
library only) in a fresh temporary directory, as a module named ``solution`` (so an
``if __name__ == "__main__"`` block does not run), under a wall-clock timeout and, on
Linux, ``RLIMIT_CPU``, ``RLIMIT_AS`` and ``RLIMIT_FSIZE`` set in ``preexec_fn``; the
blocking run happens in a worker thread, never on the event loop. Its ``print`` output is
kept up to ``output_limit`` characters and the rest dropped (counted in the evidence).
Expected outputs never enter the subprocess: it receives only the function names and
arguments, and reports each call's return value (or the exception's class name) as JSON;
the comparison happens here.

This bounds accidents (infinite loops, memory blow-ups, floods of output); it is not a
security sandbox against hostile code.

Whose fault: anything the code does — a syntax error, an exception, a timeout, a crash —
is the policy's failure (reward 0, evidence says what happened). A sandbox that cannot
start (no interpreter, the harness never reported in) raises
:class:`~gymbus.runtime.errors.VerifierError`, so the episode fails with kind ``verifier``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson

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


@dataclass(frozen=True, slots=True)
class _Run:
    results: list[dict[str, Any]]
    timed_out: bool
    exit_code: int | None
    stdout: str
    stderr: str


class CodeExecutionVerifier:
    """Reward 1.0 when the final answer's code passes every hidden test, else 0.0.

    Sub-scores: ``all_passed`` (the reward) and ``tests_passed`` (the fraction passed).
    Evidence: ``code_found``, ``load_error``, ``timed_out``, ``exit_code``, ``stdout`` and
    ``stderr`` (first 2,000 characters), ``output_dropped`` (characters past
    ``output_limit``) and, per test, the call, what was expected and what came back.
    ``sub_scorers`` add evidence only.
    """

    __slots__ = (
        "_cpu_seconds",
        "_file_bytes",
        "_memory_bytes",
        "_output_limit",
        "_python",
        "_sub_scorers",
        "_tests",
        "_timeout",
    )

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
        self._timeout = timeout
        self._cpu_seconds = math.ceil(timeout) + 1
        self._memory_bytes = memory_bytes
        self._output_limit = output_limit
        self._file_bytes = file_bytes
        self._python = python
        self._sub_scorers = tuple(sub_scorers)

    @property
    def tests(self) -> tuple[CodeTest, ...]:
        return self._tests

    async def verify(self, episode: CompletedEpisode) -> Score:
        answer = final_answer(episode.transcript)
        code = extract_python(answer.text) if answer is not None else None
        evidence: dict[str, Any] = {"code_found": code is not None}
        run: _Run | None = None
        if code is not None:
            run = await anyio.to_thread.run_sync(self._run, code)
        outcomes = self._judge(run)
        passed = sum(1 for o in outcomes if o["passed"])
        all_passed = 1.0 if passed == len(self._tests) else 0.0
        scores = {"all_passed": all_passed, "tests_passed": passed / len(self._tests)}
        if run is not None:
            load_error = next((r["load_error"] for r in run.results if "load_error" in r), None)
            done = next((r for r in run.results if r.get("done")), {})
            evidence |= {
                "load_error": load_error,
                "timed_out": run.timed_out,
                "exit_code": run.exit_code,
                "stdout": run.stdout,
                "stderr": run.stderr,
                "output_dropped": sum(done.get("dropped", [0, 0])),
            }
        evidence["tests"] = outcomes
        for sub_scorer in self._sub_scorers:
            part = sub_scorer(episode)
            scores.update(part.scores)
            evidence.update(part.evidence)
        return Score(reward=all_passed, scores=scores, evidence=evidence)

    def _judge(self, run: _Run | None) -> list[dict[str, Any]]:
        by_index = {r["index"]: r for r in run.results if "index" in r} if run else {}
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

    def _limit_resources(self) -> None:  # runs in the child between fork and exec
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (self._cpu_seconds, self._cpu_seconds))
        resource.setrlimit(resource.RLIMIT_AS, (self._memory_bytes, self._memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self._file_bytes, self._file_bytes))

    def _run(self, code: str) -> _Run:
        """Blocking: runs in a worker thread (see :meth:`verify`)."""
        with tempfile.TemporaryDirectory(prefix="gymbus-code-") as tmp:
            workdir = Path(tmp)
            (workdir / "solution.py").write_text(code, encoding="utf-8")
            calls = [[t.function, list(t.args)] for t in self._tests]
            (workdir / "tests.json").write_bytes(orjson.dumps(calls))
            command = [self._python, "-I", "-S", "-X", "utf8", "-c", _HARNESS]
            with (
                open(workdir / "stdout.txt", "wb") as stdout,
                open(workdir / "stderr.txt", "wb") as stderr,
            ):
                try:
                    process = subprocess.Popen(
                        [*command, str(self._output_limit)],
                        cwd=workdir,
                        stdin=subprocess.DEVNULL,
                        stdout=stdout,
                        stderr=stderr,
                        env={"PATH": os.defpath, "LC_ALL": "C.UTF-8"},
                        start_new_session=True,
                        preexec_fn=self._limit_resources if sys.platform == "linux" else None,
                    )
                except OSError as exc:
                    raise VerifierError(
                        f"code sandbox could not start {self._python!r}: {exc}"
                    ) from exc
                timed_out = False
                try:
                    process.wait(timeout=self._timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                _kill_group(process)  # also whatever the code started and left running
            results = _read_results(workdir / "results.jsonl")
            if not results or not results[0].get("ready"):
                raise VerifierError(
                    f"code sandbox failed before running the code (exit code "
                    f"{process.returncode}): {_head(workdir / 'stderr.txt')!r}"
                )
            return _Run(
                results=results[1:],
                timed_out=timed_out,
                exit_code=None if timed_out else process.returncode,
                stdout=_head(workdir / "stdout.txt"),
                stderr=_head(workdir / "stderr.txt"),
            )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _read_results(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    results = []
    for line in lines:
        try:
            value = json.loads(line)  # not orjson: integers may exceed 64 bits
        except ValueError:
            break  # a line cut short by a kill or a size limit: the rest did not happen
        if isinstance(value, dict):
            results.append(value)
    return results


def _head(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read(_EVIDENCE_CHARS * 4).decode("utf-8", errors="replace")[:_EVIDENCE_CHARS]
