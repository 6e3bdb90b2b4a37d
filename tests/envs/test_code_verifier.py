import sys
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gymbus.envs.verifiers import SubScore
from gymbus.envs.verifiers.code import (
    CodeExecutionVerifier,
    CodeTest,
    extract_python,
    same_value,
)
from gymbus.runtime.errors import VerifierError
from gymbus.runtime.messages import AssistantMessage, ToolCall, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Score

pytestmark = pytest.mark.anyio

TESTS = (
    CodeTest(function="add", args=(1, 2), expected=3),
    CodeTest(function="add", args=(-5, 5), expected=0),
    CodeTest(function="pair", args=("a",), expected=["a", "a"]),
    CodeTest(function="add", args=("x", 1), raises="TypeError"),
)
CORRECT = """\
def add(a, b):
    return a + b

def pair(x):
    return (x, x)
"""


def episode(*messages: AssistantMessage) -> CompletedEpisode:
    return CompletedEpisode(
        episode_id="e1",
        task=Task(env="test", task_id="test/0", seed=0),
        transcript=Transcript([UserMessage(content="Write add and pair."), *messages]),
        stop_reason="final_answer",
    )


def fenced(code: str, tag: str = "python") -> str:
    return f"Here you go:\n\n```{tag}\n{code}```\n"


async def verify(code: str, verifier: CodeExecutionVerifier | None = None) -> Score:
    verifier = verifier or CodeExecutionVerifier(TESTS, timeout=5.0)
    return await verifier.verify(episode(AssistantMessage(content=fenced(code))))


async def test_correct_code_scores_one() -> None:
    score = await verify(CORRECT)
    assert score.reward == 1.0
    assert score.scores == {"all_passed": 1.0, "tests_passed": 1.0}
    assert score.evidence["code_found"] is True
    assert score.evidence["load_error"] is None
    assert score.evidence["timed_out"] is False
    assert score.evidence["exit_code"] == 0
    outcomes = score.evidence["tests"]
    assert [o["passed"] for o in outcomes] == [True, True, True, True]
    assert outcomes[2] == {"function": "pair", "args": ["a"], "expected": ["a", "a"],
                           "passed": True, "got": ["a", "a"]}  # fmt: skip
    assert outcomes[3]["expected_raises"] == "TypeError"
    assert outcomes[3]["raised"] == "TypeError"


async def test_a_main_block_does_not_run() -> None:
    score = await verify(CORRECT + "\nif __name__ == '__main__':\n    raise SystemExit(1)\n")
    assert score.reward == 1.0


async def test_wrong_code_scores_zero_with_the_fraction_passed() -> None:
    score = await verify(CORRECT.replace("return a + b", "return a + b if a > 0 else 1"))
    assert score.reward == 0.0
    assert score.scores == {"all_passed": 0.0, "tests_passed": 0.75}
    failed = [o for o in score.evidence["tests"] if not o["passed"]]
    assert failed == [
        {"function": "add", "args": [-5, 5], "expected": 0, "passed": False, "got": 1}
    ]


async def test_wrong_exception_and_missing_function_fail() -> None:
    code = "def add(a, b):\n    raise ValueError('no')\n"
    score = await verify(code)
    assert score.scores["tests_passed"] == 0.0
    first, _, pair, type_error = score.evidence["tests"]
    assert (first["raised"], first["message"]) == ("ValueError", "no")
    assert pair["note"] == "function not defined"
    assert type_error["raised"] == "ValueError"
    assert not type_error["passed"]


async def test_infinite_loop_scores_zero_within_the_timeout() -> None:
    code = CORRECT.replace("return a + b", "while a != b or True:\n        pass")
    verifier = CodeExecutionVerifier(TESTS, timeout=1.0)
    started = time.perf_counter()
    score = await verify(code, verifier)
    assert time.perf_counter() - started < 4.0
    assert score.reward == 0.0
    assert score.evidence["timed_out"] is True
    assert score.evidence["exit_code"] is None
    assert [o.get("note") for o in score.evidence["tests"]][:1] == ["not run"]


async def test_sleeping_code_is_stopped_by_the_wall_clock() -> None:
    code = "import time\ntime.sleep(60)\n"
    started = time.perf_counter()
    score = await verify(code, CodeExecutionVerifier(TESTS, timeout=0.5))
    assert time.perf_counter() - started < 3.0
    assert score.evidence["timed_out"] is True
    assert score.reward == 0.0


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("def add(a, b)\n    return a + b\n", "SyntaxError"),
        ("import no_such_module_here\n", "ModuleNotFoundError"),
        ("raise SystemExit(3)\n", "SystemExit"),
    ],
)
async def test_code_that_does_not_load_scores_zero(code: str, error: str) -> None:
    score = await verify(code)
    assert score.reward == 0.0
    assert score.scores["tests_passed"] == 0.0
    assert score.evidence["load_error"]["raised"] == error
    assert all(o["note"] == "not run" for o in score.evidence["tests"])


async def test_memory_blow_up_is_the_codes_failure() -> None:
    code = CORRECT.replace("return a + b", "return len(bytearray(2 * 2**30)) + a + b")
    score = await verify(code)
    assert score.reward == 0.0
    assert score.evidence["tests"][0]["raised"] == "MemoryError"
    assert score.evidence["tests"][2]["passed"] is True  # the other tests still ran


async def test_chatty_code_is_capped_but_still_judged() -> None:
    code = "for _ in range(200_000):\n    print('spam' * 10)\n" + CORRECT
    verifier = CodeExecutionVerifier(TESTS, timeout=10.0, output_limit=1000)
    score = await verify(code, verifier)
    assert score.reward == 1.0
    assert score.evidence["stdout"] == ("spam" * 10 + "\n") * 24 + "spam" * 4
    assert score.evidence["output_dropped"] == 200_000 * 41 - 1000


async def test_raw_writes_are_capped_by_the_file_size_limit() -> None:
    code = "import os\nfor _ in range(100_000):\n    os.write(1, b'x' * 1000)\n"
    verifier = CodeExecutionVerifier(TESTS, timeout=10.0, file_bytes=100_000)
    score = await verify(code, verifier)
    assert score.reward == 0.0
    assert score.evidence["load_error"]["raised"] == "OSError"
    assert len(score.evidence["stdout"]) == 2000


async def test_unserializable_return_values_fail() -> None:
    code = "def add(a, b):\n    return object()\n\ndef pair(x):\n    return float('nan')\n"
    score = await verify(code)
    notes = [o.get("note") for o in score.evidence["tests"]]
    assert notes[:3] == ["unusable return (TypeError)"] * 2 + ["unusable return (ValueError)"]
    code = "def add(a, b):\n    return 'x' * 100_000\n"
    score = await verify(code)
    assert score.evidence["tests"][0]["note"] == "unusable return (too large)"


async def test_code_runs_in_a_private_directory_without_the_answers() -> None:
    code = "import os\nfiles = sorted(os.listdir('.'))\ndef add(a, b):\n    return files\n"
    score = await verify(code)
    assert score.evidence["tests"][0]["got"] == [
        "results.jsonl",
        "solution.py",
        "stderr.txt",
        "stdout.txt",
        "tests.json",
    ]
    code = "def add(a, b):\n    return open('tests.json').read()\n"
    score = await verify(code)
    assert '"expected"' not in score.evidence["tests"][0]["got"]
    assert "3" not in score.evidence["tests"][0]["got"]


async def test_no_code_scores_zero_without_running_anything() -> None:
    verifier = CodeExecutionVerifier(TESTS, python="/nonexistent/python")
    for reply in (
        AssistantMessage(content="I can't help with that."),
        AssistantMessage(content="def add(a, b): return a + b"),
        AssistantMessage(content="", tool_calls=(ToolCall(id="c1", name="x"),)),
    ):
        score = await verifier.verify(episode(reply))
        assert score.reward == 0.0
        assert score.evidence["code_found"] is False
        assert score.scores["tests_passed"] == 0.0


async def test_a_sandbox_that_cannot_start_is_a_verifier_error() -> None:
    verifier = CodeExecutionVerifier(TESTS, python="/nonexistent/python")
    with pytest.raises(VerifierError, match="could not start '/nonexistent/python'"):
        await verify(CORRECT, verifier)
    broken = CodeExecutionVerifier(TESTS, python=sys.executable, memory_bytes=2**20)
    with pytest.raises(VerifierError, match="failed before running the code"):
        await verify(CORRECT, broken)


async def test_sub_scorers_add_evidence() -> None:
    def extra(episode: CompletedEpisode) -> SubScore:
        return SubScore(scores={"polite": 1.0}, evidence={"turns": len(episode.transcript)})

    score = await verify(CORRECT, CodeExecutionVerifier(TESTS, sub_scorers=(extra,)))
    assert score.scores["polite"] == 1.0
    assert score.evidence["turns"] == 2
    assert score.reward == 1.0


def test_a_verifier_needs_tests() -> None:
    with pytest.raises(ValueError, match="at least one test"):
        CodeExecutionVerifier(())


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\nx = 1\n```", "x = 1\n"),
        ("```py\nx = 1\n```", "x = 1\n"),
        ("```Python3\nx = 1\n```", "x = 1\n"),
        ("```\nx = 1\n```", "x = 1\n"),
        ("```python\nx = 1\n```\nthen\n```python\nx = 2\n```", "x = 2\n"),
        ("```python\nx = 1\n```\n```\nx = 2\n```", "x = 1\n"),
        ("```bash\nls\n```", None),
        ("```python\nx = 1\n", None),
        ("no code here", None),
        ("  ```python\n  x = 1\n  ```", "  x = 1\n"),
    ],
)
def test_extract_python(text: str, code: str | None) -> None:
    assert extract_python(text) == code


@pytest.mark.parametrize(
    ("expected", "got", "same"),
    [
        (3, 3, True),
        (3, 3.0, False),
        (0.1 + 0.2, 0.3, True),
        (1.5, 2, False),
        (True, 1, False),
        (1, True, False),
        ("1", 1, False),
        ([1, [2, "a"]], (1, (2, "a")), True),
        ([1, 2], [1, 2, 3], False),
        ({"a": [1]}, {"a": (1,)}, True),
        ({"a": 1}, {"b": 1}, False),
        (None, None, True),
        (None, 0, False),
    ],
)
def test_same_value(expected: Any, got: Any, same: bool) -> None:
    assert same_value(expected, got) is same


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)


@given(json_values)
def test_same_value_is_reflexive(value: Any) -> None:
    assert same_value(value, value)
