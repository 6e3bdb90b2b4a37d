"""`gymbus bench` smoke test: runs end to end and reports both sides. No time is
asserted anywhere (these machines are shared and noisy)."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import orjson
import pytest


@pytest.mark.anyio
async def test_bench_reports_gymbus_and_the_floor_for_every_workload(tmp_path: Path) -> None:
    gymbus = str(Path(sys.executable).parent / "gymbus")
    result = await anyio.run_process(
        [gymbus, "bench", "--workload", "all", "--n", "50", "--repeat", "1", "--scale", "200",
         "--json"],
        check=False,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    report = orjson.loads(result.stdout)
    assert set(report["workloads"]) == {"single", "tools3"}
    for row in report["workloads"].values():
        assert row["gymbus"]["all_correct"] is True
        for side in ("gymbus", "floor"):
            assert row[side]["cpu_ms_per_rollout"] > 0
            assert row[side]["rollouts_per_s"] > 0
        assert row["cpu_ratio"] == pytest.approx(
            row["gymbus"]["cpu_ms_per_rollout"] / row["floor"]["cpu_ms_per_rollout"]
        )
    scale = report["scale"]
    assert scale["episodes_in_flight"] == 200
    assert scale["all_correct"] is True
    assert scale["kb_per_episode"] is not None
