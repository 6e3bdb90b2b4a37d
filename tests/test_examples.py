"""The examples run as documented."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.anyio
async def test_the_trainer_loop_writes_batches_with_group_normalized_advantages(
    tmp_path: Path,
) -> None:
    result = await anyio.run_process(
        [sys.executable, str(EXAMPLES / "trainer_loop.py"), "--steps", "2", "--tasks", "8",
         "--group-size", "4", "--out", str(tmp_path)],
        check=False,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2
    for step in range(2):
        rows = [
            orjson.loads(x) for x in (tmp_path / f"step-{step:04d}.jsonl").read_bytes().splitlines()
        ]
        assert len(rows) == 32
        rewards = {r["reward"] for r in rows}
        assert rewards == {0.0, 1.0}  # mixed right and wrong answers
        by_group: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_group.setdefault(str(row["group_id"]), []).append(row)
        for group in by_group.values():
            advantages = [float(r["advantage"]) for r in group]
            assert abs(sum(advantages)) < 1e-9  # normalized within the group
            for r in group:
                better = r["reward"] > min(g["reward"] for g in group)
                assert (r["advantage"] > 0) == better
