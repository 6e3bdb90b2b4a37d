"""`gymbus report` and :func:`gymbus.report.summarize`: a generated rollout file with
known answers, bad and torn files, and a real file written by `gymbus run`."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from typer.testing import CliRunner

from gymbus.cli import app
from gymbus.report import summarize
from gymbus.runtime.errors import FailureKind
from gymbus.runtime.messages import Usage
from gymbus.runtime.rollout import Failure, Rollout, Timing
from gymbus.runtime.sink import RolloutFileError

GYMBUS = str(Path(sys.executable).parent / "gymbus")
runner = CliRunner()

ALPHA = {"core_capabilities": ["information-dependency"], "rollout_structures": ["multi-step"]}
BETA = {
    "core_capabilities": ["proactive-asking", "information-dependency"],
    "rollout_structures": ["multi-turn", "multi-step"],
}
GAMMA: dict[str, Any] = {"core_capabilities": [], "rollout_structures": []}


def _rollout(
    env: str,
    sample: int,
    reward: float | None,
    *,
    metadata: dict[str, Any],
    group: str | None = None,
    failure: FailureKind | None = None,
    wall_s: float = 1.0,
    user_tokens: int = 0,
) -> Rollout:
    return Rollout(
        episode_id=f"{env}/{group}#{sample}",
        env=env,
        task_id=f"{env}-task",
        seed=0,
        sample=sample,
        group_id=group,
        group_size=4 if group else 1,
        status="failed" if failure else "scored",
        reward=reward,
        failure=Failure(kind=failure, message="boom") if failure else None,
        metadata=metadata,
        usage=Usage(prompt_tokens=10, completion_tokens=5),
        user_usage=Usage(prompt_tokens=user_tokens, completion_tokens=0),
        timing=Timing(started_at=0, wall_s=wall_s),
    )


def _rollouts() -> list[Rollout]:
    """alpha: one group of 4 with 2 successes; beta: one group of 4 with rewards 1 and 0.5
    and two failures; gamma: two ungrouped rollouts (one success, one failure)."""
    return [
        *(
            _rollout("alpha", i, r, metadata=ALPHA, group="g1", wall_s=i + 1.0)
            for i, r in enumerate([1.0, 1.0, 0.0, 0.0])
        ),
        _rollout("beta", 0, 1.0, metadata=BETA, group="g2", user_tokens=3),
        _rollout("beta", 1, 0.5, metadata=BETA, group="g2", user_tokens=3),
        _rollout("beta", 2, None, metadata=BETA, group="g2", failure="model"),
        _rollout("beta", 3, None, metadata=BETA, group="g2", failure="timeout"),
        _rollout("gamma", 0, 1.0, metadata=GAMMA),
        _rollout("gamma", 1, None, metadata=GAMMA, failure="tool"),
    ]


@pytest.fixture
def rollout_file(tmp_path: Path) -> Path:
    path = tmp_path / "rollouts.jsonl"
    path.write_bytes(b"".join(r.to_json_line() for r in _rollouts()))
    return path


def _pass_k(summary: Any) -> dict[int, tuple[float, float, int]]:
    return {p.k: (p.pass_at_k, p.pass_hat_k, p.groups) for p in summary.pass_k}


def test_counts_rewards_and_failures_per_slice(rollout_file: Path) -> None:
    report = summarize([rollout_file])
    assert report.files == (str(rollout_file),)
    overall = report.overall
    assert (report.rollouts, overall.rollouts, overall.scored, overall.failed) == (10, 10, 7, 3)
    assert overall.failures == {"model": 1, "timeout": 1, "tool": 1}
    assert overall.successes == 4
    assert list(report.by_env) == ["alpha", "beta", "gamma"]
    alpha, beta, gamma = report.by_env.values()
    assert alpha.reward_mean == 0.5
    assert alpha.reward_stderr == pytest.approx(math.sqrt(1 / 3) / 2)
    assert (beta.scored, beta.failed, beta.reward_mean) == (2, 2, 0.75)
    assert beta.failures == {"model": 1, "timeout": 1}
    assert (gamma.reward_mean, gamma.reward_stderr, gamma.failures) == (1.0, 0.0, {"tool": 1})
    # a rollout counts under every capability and structure it claims; none → single-turn
    assert {k: s.rollouts for k, s in report.by_capability.items()} == {
        "information-dependency": 8,
        "proactive-asking": 4,
    }
    assert {k: s.rollouts for k, s in report.by_structure.items()} == {
        "multi-step": 8,
        "multi-turn": 4,
        "single-turn": 2,
    }


def test_pass_at_k_and_pass_hat_k_over_groups(rollout_file: Path) -> None:
    report = summarize([rollout_file])
    # groups (n, c): g1 (4, 2), g2 (4, 1) — failures are unsuccessful — and (1, 1), (1, 0)
    assert report.overall.groups == 4
    pass_k = _pass_k(report.overall)
    assert list(pass_k) == [1, 2, 4]
    assert pass_k[1] == pytest.approx(((0.5 + 0.25 + 1 + 0) / 4, (0.5 + 0.25 + 1 + 0) / 4, 4))
    assert pass_k[2] == pytest.approx(((5 / 6 + 1 / 2) / 2, (1 / 6 + 0) / 2, 2))
    assert pass_k[4] == pytest.approx((1.0, 0.0, 2))
    alpha = _pass_k(report.by_env["alpha"])
    assert list(alpha) == [1, 2, 4]
    assert alpha[1] == (0.5, 0.5, 1)
    assert alpha[2] == pytest.approx((5 / 6, 1 / 6, 1))
    assert alpha[4] == (1.0, 0.0, 1)
    assert _pass_k(report.by_env["gamma"]) == {1: (0.5, 0.5, 2)}
    lenient = summarize([rollout_file], success_threshold=0.5)
    assert lenient.by_env["beta"].successes == 2
    assert _pass_k(lenient.by_env["beta"])[2] == pytest.approx((5 / 6, 1 / 6, 1))


def test_tokens_and_latency(rollout_file: Path) -> None:
    report = summarize([rollout_file])
    tokens = report.overall.tokens
    assert (tokens.prompt.total, tokens.prompt.mean) == (100, 10.0)
    assert (tokens.completion.total, tokens.completion.mean) == (50, 5.0)
    assert (tokens.user.total, tokens.user.mean) == (6, 0.6)
    latency = report.by_env["alpha"].latency_s  # wall 1, 2, 3, 4: linear interpolation
    assert (latency.p50, latency.p95, latency.p99) == pytest.approx((2.5, 3.85, 3.97))


def test_rollout_objects_and_a_path_give_the_same_report(rollout_file: Path) -> None:
    from_objects = summarize(iter(_rollouts()))  # streamed: any iterable works
    from_path = summarize(rollout_file)
    assert from_objects.model_dump(exclude={"files"}) == from_path.model_dump(exclude={"files"})
    assert from_objects.files == ()


def test_no_rollouts_or_no_scored_rollouts_give_nulls_not_nan(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    report = summarize([empty])
    assert report.rollouts == 0
    assert report.overall.pass_k == ()
    assert report.overall.reward_mean is None
    assert report.overall.latency_s.p50 is None
    assert report.overall.tokens.prompt.mean is None
    nan = summarize([_rollout("x", 0, math.nan, metadata=GAMMA)])  # a broken verifier
    assert (nan.overall.reward_mean, nan.overall.reward_stderr) == (None, None)
    failed = summarize([_rollout("x", i, None, metadata=GAMMA, failure="model") for i in (0, 1)])
    data = orjson.loads(failed.model_dump_json())
    assert data["overall"]["reward_mean"] is None
    assert data["overall"]["reward_stderr"] is None
    assert data["overall"]["pass_k"] == [{"k": 1, "groups": 2, "pass_at_k": 0.0,
                                          "pass_hat_k": 0.0}]  # fmt: skip


def test_a_torn_last_line_is_skipped(rollout_file: Path) -> None:
    with rollout_file.open("ab") as f:
        f.write(_rollouts()[0].to_json_line()[:40])  # the writer died mid-line
    assert summarize([rollout_file]).rollouts == 10
    result = runner.invoke(app, ["report", str(rollout_file), "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["rollouts"] == 10


def test_a_bad_line_exits_2_naming_file_and_line(rollout_file: Path) -> None:
    lines = rollout_file.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"status":"scored"', b'"status":"maybe"')
    rollout_file.write_bytes(b"".join(lines))
    with pytest.raises(RolloutFileError, match="status"):
        summarize([rollout_file])
    result = runner.invoke(app, ["report", str(rollout_file)])
    assert result.exit_code == 2
    assert f"{rollout_file}:3" in result.stderr
    assert "status" in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "nope.jsonl")], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    assert "nope.jsonl' does not exist" in result.output


def test_json_output_has_every_key(rollout_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "more.jsonl"
    other.write_bytes(_rollouts()[-1].to_json_line())
    result = runner.invoke(app, ["report", str(rollout_file), str(other), "--json"])
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    assert data.keys() >= {"files", "rollouts", "overall", "by_env", "by_capability",
                           "by_structure"}  # fmt: skip
    assert data["files"] == [str(rollout_file), str(other)]
    assert data["rollouts"] == 11
    assert data["overall"]["failures"] == {"model": 1, "timeout": 1, "tool": 2}
    assert data["overall"].keys() >= {"rollouts", "scored", "failed", "reward_mean",
                                      "reward_stderr", "pass_k", "failures", "tokens",
                                      "latency_s"}  # fmt: skip
    assert data["by_env"]["gamma"]["rollouts"] == 3
    assert "NaN" not in result.stdout


def test_tables_show_every_slice(rollout_file: Path) -> None:
    result = runner.invoke(app, ["report", str(rollout_file)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in ("alpha", "beta", "gamma", "information-dependency", "proactive-asking",
                 "multi-step", "multi-turn", "single-turn"):  # fmt: skip
        assert name in out
    for header in ("pass@1", "pass@2", "pass^2", "pass@4", "pass^4", "p95 s"):
        assert header in out
    assert "0.500 ± 0.289" in out  # alpha's reward
    assert "0.833" in out  # alpha's pass@2
    assert "model 1, timeout 1" in out


@pytest.mark.anyio
async def test_a_file_written_by_gymbus_run(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    out = tmp_path / "oracle.jsonl"
    ran = await anyio.run_process(
        [GYMBUS, "run", "retail-orders", "--model", "oracle", "--n", "8", "--out", str(out)],
        cwd=tmp_path,
        check=False,
        env=env,
    )
    assert ran.returncode == 0, ran.stderr.decode()
    reported = await anyio.run_process(
        [GYMBUS, "report", out.name, "--json"], cwd=tmp_path, check=False, env=env
    )
    assert reported.returncode == 0, reported.stderr.decode()
    data = orjson.loads(reported.stdout)
    assert data["files"] == ["oracle.jsonl"]
    assert data["rollouts"] == 8
    overall = data["overall"]
    assert (overall["scored"], overall["failed"], overall["reward_mean"]) == (8, 0, 1.0)
    assert overall["pass_k"] == [{"k": 1, "groups": 8, "pass_at_k": 1.0, "pass_hat_k": 1.0}]
    assert overall["tokens"]["completion"]["total"] > 0
    assert overall["latency_s"]["p50"] > 0
    assert list(data["by_env"]) == ["retail-orders"]
    assert list(data["by_capability"]) == ["information-dependency"]
    assert data["by_capability"]["information-dependency"]["rollouts"] == 8
