"""2,000 retail-orders episodes through a model server that faults on 15% of requests
(every kind alike): each episode ends scored or failed with its cause, no failure is
ever scored as a reward, nothing leaks, and the report keeps failures out of the mean.

The reference solver plays through the server, so an episode that is not spoiled scores
1.0. Transient faults (429/5xx, resets, hangs, truncated bodies) are retried; a 200
whose body is not a completion fails the episode with kind ``model`` at once; a
malformed tool call goes back to the model as an error tool message; an oversize answer
is an answer (a wrong one: the final answer is lost in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

import gymbus
from gymbus.adapters import (
    FAULT_KINDS,
    FaultPlan,
    FaultyModelServer,
    HTTPClient,
    OpenAIChat,
    RetryPolicy,
    solver_policy,
)
from gymbus.envs.builtin.retail_orders import RetailOrdersSolver
from gymbus.report import summarize
from gymbus.runtime.messages import AssistantMessage, ToolMessage
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.sink import RolloutSink

pytestmark = pytest.mark.anyio

EPISODES = 2000
FAULT_RATE = 0.15
CONCURRENCY = 32
REQUEST_TIMEOUT = 0.5  # seconds a hang costs an attempt
OVERSIZE = 1 << 16
RETRY = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)

CAUSES = {  # a failure's cause → the pattern of its message
    "retries_exhausted": re.compile(
        r"failed after 3 attempt\(s\); last: (HTTP 429|HTTP 50[023]|ServerDisconnectedError"
        rf"|ClientOSError|ClientPayloadError|timed out after {REQUEST_TIMEOUT}s)"
    ),
    "invalid_json": re.compile(r"returned a body that is not JSON"),
    "missing_choices": re.compile(r"has no 'choices' \("),
    "no_message": re.compile(r"has no 'choices\[0\]\.message'"),
}


def cause_of(rollout: Rollout) -> str:
    assert rollout.failure is not None
    causes = [c for c, pattern in CAUSES.items() if pattern.search(rollout.failure.message)]
    assert len(causes) == 1, rollout.failure.message
    return causes[0]


@dataclass
class Tally:
    """What 2,000 rollouts say, kept small (the rollouts themselves go to the file)."""

    episode_ids: set[str] = field(default_factory=set)
    rewards: list[float] = field(default_factory=list)  # of scored episodes
    failures: Counter[str] = field(default_factory=Counter)  # by cause
    timeouts: int = 0  # failures whose last attempt timed out
    retried: int = 0  # scored episodes with a turn that took more than one attempt
    error_tool_messages: int = 0
    scored_after_error: int = 0
    oversize_messages: int = 0
    oversize_answers: int = 0

    def add(self, rollout: Rollout) -> None:
        self.episode_ids.add(rollout.episode_id)
        turns = [m for m in rollout.messages if isinstance(m, AssistantMessage)]
        errors = [m for m in rollout.messages if isinstance(m, ToolMessage) and m.is_error]
        self.error_tool_messages += len(errors)
        assert all("not valid JSON" in m.text for m in errors)
        self.oversize_messages += sum(len(m.text) == OVERSIZE for m in turns)
        if rollout.status == "failed":  # a failure is never a reward
            assert rollout.failure is not None
            assert rollout.failure.kind == "model", rollout.failure
            assert rollout.reward is None
            assert rollout.scores == {}
            cause = cause_of(rollout)
            self.failures[cause] += 1
            self.timeouts += rollout.failure.message.endswith(f"timed out after {REQUEST_TIMEOUT}s")
            return
        assert rollout.status == "scored"
        assert rollout.failure is None
        assert rollout.reward is not None
        assert rollout.stop_reason == "answered"
        self.rewards.append(rollout.reward)
        self.retried += any(m.generation and m.generation.attempts > 1 for m in turns)
        self.scored_after_error += bool(errors)
        final = rollout.messages[-1]
        if len(final.text) == OVERSIZE:  # the answer is lost in an oversize reply
            self.oversize_answers += 1
            assert rollout.reward == 0.0
        else:  # the reference solver played through every other fault
            assert rollout.reward == 1.0, (rollout.episode_id, rollout.evidence)


def open_sockets() -> int | None:
    """Sockets this process holds (Linux), or None where /proc is not available."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return None
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            count += os.readlink(fd).startswith("socket:")
    return count


def live_tasks() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


async def test_every_episode_ends_scored_or_failed_with_its_cause(tmp_path: Path) -> None:
    env = gymbus.envs.load("retail-orders", difficulty="easy")
    plan = FaultPlan.uniform(FAULT_RATE, oversize_chars=OVERSIZE)
    path = tmp_path / "rollouts.jsonl"
    tally = Tally()
    tasks_before, sockets_before = live_tasks(), open_sockets()
    with anyio.fail_after(120), capture_logs() as logs:  # a hang guard, not a speed bound
        policy = solver_policy(RetailOrdersSolver)
        async with FaultyModelServer(policy=policy, faults=plan, seed=2024) as server:
            async with HTTPClient(retry=RETRY, timeout=REQUEST_TIMEOUT) as client:
                connector = client.session().connector
                model = OpenAIChat(
                    "faulty-model", base_url=server.base_url, client=client, api_key_env=None
                )
                with RolloutSink(path) as sink:
                    async with gymbus.Runtime(model, concurrency=CONCURRENCY) as rt:
                        async for rollout in rt.collect(gymbus.episode_jobs(env, range(EPISODES))):
                            sink.write(rollout)
                            tally.add(rollout)
            assert connector is not None
            assert connector.closed  # every client socket released
    assert live_tasks() <= tasks_before  # the server's handlers and the runtime's tasks
    assert open_sockets() == sockets_before  # client, server and listening sockets closed

    # counts add up: every episode ended once, scored or failed
    scored, failed = len(tally.rewards), tally.failures.total()
    assert scored + failed == EPISODES
    assert tally.episode_ids == {f"retail-orders/{i}#0" for i in range(EPISODES)}

    # the server faulted about 15% of requests, every kind
    counts, faults = server.counts, server.counts.faults
    assert counts.outcomes.total() == counts.requests
    assert counts.outcomes["fault"] == faults.total()
    assert counts.outcomes["bad_request"] == counts.outcomes["policy_error"] == 0
    assert set(faults) == set(FAULT_KINDS)
    assert 0.12 < faults.total() / counts.requests < 0.18

    # Each fault on a 200 shows in exactly one rollout — unless the client gave up on
    # that answer (a timeout that was not a hang: an overloaded machine). Timeouts the
    # client saw, hangs excepted, bound how many answers were lost that way.
    retried_timeouts = sum(
        1
        for entry in logs
        if entry["event"] == "model.http.retry" and entry["cause"].startswith("timed out")
    )
    lost = retried_timeouts + tally.timeouts - faults["hang"]
    assert lost >= 0
    for kind in ("invalid_json", "missing_choices", "no_message"):  # fail at once, kind model
        assert faults[kind] - lost <= tally.failures[kind] <= faults[kind], kind
    # a malformed tool call is the policy's mistake: an error tool message, and go on
    assert faults["bad_tool_args"] - lost <= tally.error_tool_messages <= faults["bad_tool_args"]
    assert tally.scored_after_error > 0
    assert faults["oversize"] - lost <= tally.oversize_messages <= faults["oversize"]
    assert tally.retried > 0  # transient faults cured by a retry, and the episode scored 1.0

    # the report: failures by cause, and a mean reward over scored episodes only
    report = summarize(path)
    overall = report.overall
    assert (overall.rollouts, overall.scored, overall.failed) == (EPISODES, scored, failed)
    assert overall.failures == {"model": failed}
    assert overall.reward_mean == pytest.approx(sum(tally.rewards) / scored)
    assert tally.rewards.count(0.0) == tally.oversize_answers
