"""``gymbus bench``: gymbus against the physical floor — a bare aiohttp client making the
same HTTP calls with the same concurrency — measured side by side in the same run
against a mock server in its own process; reported as ratios (median of R repeats).

Each measurement runs in a fresh subprocess (:mod:`gymbus.bench_worker`) so that its CPU
time (user + sys) and peak RSS are its own. Nothing here asserts a time: the numbers are
reported, and ``docs/benchmarks.md`` is rendered from the JSON.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from gymbus.bench_envs import Workload


@contextmanager
def mock_server(latency: float = 0.0) -> Iterator[str]:
    """Start ``gymbus.bench_server`` in its own process; yield its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gymbus.bench_server", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the mock server did not start: {line!r}")
        yield f"http://127.0.0.1:{line.split()[1]}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure(mode: str, workload: Workload, n: int, concurrency: int, url: str) -> dict[str, Any]:
    """One measurement in a fresh process."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gymbus.bench_worker",
            mode,
            workload,
            str(n),
            str(concurrency),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench worker {mode}/{workload} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = orjson.loads(out.stdout.strip().splitlines()[-1])
    return result


def _median(rows: Sequence[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in rows)


def compare(workloads: Sequence[Workload], n: int, concurrency: int, repeat: int) -> dict[str, Any]:
    """gymbus vs the floor per workload: medians of ``repeat`` interleaved runs."""
    results: dict[str, Any] = {}
    with mock_server() as url:
        for workload in workloads:
            runs: dict[str, list[dict[str, Any]]] = {"gymbus": [], "floor": []}
            for _ in range(repeat):  # interleaved, so drift hits both alike
                for mode in ("floor", "gymbus"):
                    runs[mode].append(measure(mode, workload, n, concurrency, url))
            row: dict[str, Any] = {"n": n, "concurrency": concurrency, "repeat": repeat}
            for mode, measured in runs.items():
                row[mode] = {
                    key: _median(measured, key)
                    for key in ("cpu_ms_per_rollout", "rollouts_per_s", "peak_rss_mb")
                }
            row["gymbus"]["all_correct"] = all(r["all_correct"] for r in runs["gymbus"])
            row["cpu_ratio"] = (
                row["gymbus"]["cpu_ms_per_rollout"] / row["floor"]["cpu_ms_per_rollout"]
            )
            row["throughput_ratio"] = (
                row["gymbus"]["rollouts_per_s"] / row["floor"]["rollouts_per_s"]
            )
            results[workload] = row
    return results


def scale(episodes: int, latency: float = 0.2) -> dict[str, Any]:
    """``episodes`` single-call episodes in flight at once against a slow server."""
    with mock_server(latency) as url:
        return measure("scale", "single", episodes, episodes, url)


def table(result: dict[str, Any]) -> str:
    lines = [
        "| workload | n | concurrency | gymbus CPU ms/rollout | floor CPU ms/rollout | CPU ratio "
        "| gymbus rollouts/s | floor rollouts/s | gymbus peak RSS MB | floor peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload, row in result.get("workloads", {}).items():
        g, f = row["gymbus"], row["floor"]
        lines.append(
            f"| {workload} | {row['n']} | {row['concurrency']} | {g['cpu_ms_per_rollout']:.3f} "
            f"| {f['cpu_ms_per_rollout']:.3f} | {row['cpu_ratio']:.2f} "
            f"| {g['rollouts_per_s']:.0f} | {f['rollouts_per_s']:.0f} "
            f"| {g['peak_rss_mb']:.0f} | {f['peak_rss_mb']:.0f} |"
        )
    s = result.get("scale")
    if s:
        lines += [
            "",
            f"Scale: {s['episodes_in_flight']:,} episodes in flight (server latency 200 ms): "
            f"{s['kb_per_episode']:.1f} KB per in-flight episode, event-loop lag p99 "
            f"{s['loop_lag_p99_ms']:.1f} ms (median {s['loop_lag_median_ms']:.1f} ms), "
            f"all correct: {s['all_correct']}",
        ]
    return "\n".join(lines)
