"""The index behind ``gymbus view``: one small row per rollout line, built in a background
thread while the server already answers.

Rollout files can be large (100,000 lines; single lines of several MB for long-context
episodes), so the index keeps only each line's place in its file (offset and length) and
the fields the episode table filters and sorts on. A line is parsed with orjson only —
validating every line against the :class:`~gymbus.runtime.rollout.Rollout` schema would
cost ten times more — and fully validated when its episode is opened. Unreadable lines
are skipped and kept as *problems* (file, line, what is wrong); everything else stays
browsable, and a torn last line (a writer killed mid-line) is reported as such.

Threading: the scanning thread appends rows and updates the facet counters under one lock;
readers take a snapshot (the row count) under the same lock and then read rows below it,
which never change once appended.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gymbus.charts import ChartData
from gymbus.report import SINGLE_TURN, metadata_labels
from gymbus.runtime.media_files import media_dir_for

MAX_PROBLEMS = 100
"""Problems kept with their text (all are counted)."""
FAILURE_MESSAGE_CHARS = 300
MEDIA_TYPES = frozenset({"image", "audio", "video"})


class RowError(ValueError):
    """A line is JSON but not a rollout the table can show (names the field)."""


@dataclass(slots=True, frozen=True)
class Row:
    """What the episode table shows of one rollout line."""

    id: int
    file: int
    line: int
    offset: int
    length: int
    episode_id: str
    env: str
    task_id: str
    seed: int | None
    sample: int | None
    group_id: str | None
    group_size: int | None
    status: str
    reward: float | None
    failure_kind: str | None
    failure_message: str | None
    turns: int | None
    messages: int
    prompt_tokens: int | None
    completion_tokens: int | None
    wall_s: float | None
    started_at: float | None
    weight_version: str | None
    capabilities: tuple[str, ...]
    structures: tuple[str, ...]
    has_media: bool

    def to_json(self, files: Sequence[str]) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": files[self.file],
            "line": self.line,
            "episode_id": self.episode_id,
            "env": self.env,
            "task_id": self.task_id,
            "seed": self.seed,
            "sample": self.sample,
            "group_id": self.group_id,
            "group_size": self.group_size,
            "status": self.status,
            "reward": self.reward,
            "failure_kind": self.failure_kind,
            "failure_message": self.failure_message,
            "turns": self.turns,
            "messages": self.messages,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "wall_s": self.wall_s,
            "started_at": self.started_at,
            "weight_version": self.weight_version,
            "capabilities": list(self.capabilities),
            "structures": list(self.structures),
            "has_media": self.has_media,
        }


def _str(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise RowError(f"field {key}: expected a string, got {type(value).__name__}")
    return value


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _dict(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _message_facts(messages: list[Any]) -> tuple[str | None, bool]:
    """The weight version of the last policy turn, and whether any part is media."""
    version: str | None = None
    media = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "assistant":
            generation = message.get("generation")
            if isinstance(generation, dict):
                found = generation.get("weight_version")
                version = found if isinstance(found, str) else version
        content = message.get("content")
        if not media and isinstance(content, list):
            media = any(isinstance(p, dict) and p.get("type") in MEDIA_TYPES for p in content)
    return version, media


def parse_row(data: object, *, id: int, file: int, line: int, offset: int, length: int) -> Row:
    """The table row of one parsed line; :class:`RowError` names what is missing."""
    if not isinstance(data, dict):
        raise RowError(f"expected a JSON object, got {type(data).__name__}")
    status = _str(data, "status", required=True)
    if status not in ("scored", "failed"):
        raise RowError(f"field status: expected 'scored' or 'failed', got {status!r}")
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise RowError("field messages: expected a list")
    failure = _dict(data, "failure")
    message = _str(failure, "message")
    metadata = _dict(data, "metadata")
    usage = _dict(data, "usage")
    timing = _dict(data, "timing")
    version, media = _message_facts(messages)
    return Row(
        id=id,
        file=file,
        line=line,
        offset=offset,
        length=length,
        episode_id=_str(data, "episode_id", required=True) or "",
        env=_str(data, "env", required=True) or "",
        task_id=_str(data, "task_id") or "",
        seed=_int(data, "seed"),
        sample=_int(data, "sample"),
        group_id=_str(data, "group_id"),
        group_size=_int(data, "group_size"),
        status=status,
        reward=_float(data, "reward"),
        failure_kind=(_str(failure, "kind") or "unknown") if status == "failed" else None,
        failure_message=message[:FAILURE_MESSAGE_CHARS] if message is not None else None,
        turns=_int(data, "turns"),
        messages=len(messages),
        prompt_tokens=_int(usage, "prompt_tokens"),
        completion_tokens=_int(usage, "completion_tokens"),
        wall_s=_float(timing, "wall_s"),
        started_at=_float(timing, "started_at"),
        weight_version=version,
        capabilities=tuple(metadata_labels(metadata, "core_capabilities")),
        structures=tuple(metadata_labels(metadata, "rollout_structures") or (SINGLE_TURN,)),
        has_media=media,
    )


@dataclass(slots=True, frozen=True)
class Problem:
    file: str
    line: int
    message: str


FACETS = ("env", "capability", "structure", "status", "failure_kind", "weight_version")


def facet_values(row: Row, facet: str) -> tuple[str, ...]:
    """The values of a row on one filter dimension (several for labels)."""
    if facet == "capability":
        return row.capabilities
    if facet == "structure":
        return row.structures
    value = getattr(row, facet)
    return () if value is None else (value,)


@dataclass(slots=True)
class RolloutIndex:
    """Rows of the rollout lines of ``paths``, filled by :meth:`scan` (in a thread)."""

    paths: tuple[Path, ...]
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    lines: list[int] = field(default_factory=list)
    """Lines read so far, per file."""
    facets: dict[str, Counter[str]] = field(default_factory=lambda: {f: Counter() for f in FACETS})
    groups: dict[str, list[int]] = field(default_factory=dict)
    follow: bool = False
    """Keep indexing lines appended to the files (a collection still writing them)."""
    follow_interval: float = 1.0
    done: bool = False
    """The first pass over every file has ended."""
    passes: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    passed: threading.Condition = field(init=False)
    _offsets: list[int] = field(default_factory=list)
    """Bytes indexed so far, per file."""
    _left: set[int] = field(default_factory=set)
    """Files no longer read (unreadable, or shrank while followed)."""

    def __post_init__(self) -> None:
        self.lines = [0] * len(self.paths)
        self._offsets = [0] * len(self.paths)
        self.passed = threading.Condition(self.lock)

    @property
    def files(self) -> list[str]:
        return [str(p) for p in self.paths]

    def media_dirs(self) -> list[Path]:
        return [media_dir_for(p) for p in self.paths]

    def scan(self) -> None:
        """Index every file; with ``follow``, then keep indexing the lines appended to
        them every ``follow_interval`` seconds. Returns when ``stop`` is set (or, without
        ``follow``, when every file is read)."""
        try:
            self._pass(final=not self.follow)
        finally:
            with self.lock:
                self.done = True
                self.passes += 1
                self.passed.notify_all()
        while self.follow and not self.stop.wait(self.follow_interval):
            self._pass(final=False)
            with self.lock:
                self.passes += 1
                self.passed.notify_all()

    def wait_passes(self, count: int, timeout: float) -> bool:
        """Block until ``count`` more passes over the files have ended (for tests and
        callers that append lines and want them indexed); False on timeout."""
        with self.lock:
            target = self.passes + count
            return self.passed.wait_for(lambda: self.passes >= target, timeout)

    def _pass(self, *, final: bool) -> None:
        for number, path in enumerate(self.paths):
            if self.stop.is_set():
                return
            self._scan_file(number, path, final=final)

    def _scan_file(self, number: int, path: Path, *, final: bool) -> None:
        """Index the complete lines after what was read of the file before. A last line
        without newline is a torn tail when ``final``; otherwise it may still be being
        written, and waits for the next pass."""
        if number in self._left:
            return
        offset, line = self._offsets[number], self.lines[number]
        try:
            size = path.stat().st_size
            f = path.open("rb")
        except OSError as exc:
            self._left.add(number)
            self._problem(path, line, f"cannot read the file: {exc.strerror or exc}")
            return
        with f:
            if size < offset:
                self._left.add(number)
                message = "the file shrank (rewritten?): no longer followed; restart the viewer"
                self._problem(path, line, message)
                return
            f.seek(offset)
            for raw in f:
                if self.stop.is_set():
                    return
                if not final and not raw.endswith(b"\n"):
                    return  # still being written: the next pass takes it whole
                line += 1
                self._add_line(number, path, line, offset, raw)
                offset += len(raw)
                with self.lock:
                    self.lines[number], self._offsets[number] = line, offset

    def _add_line(self, number: int, path: Path, line: int, offset: int, raw: bytes) -> None:
        if not raw.strip():
            return
        if not raw.endswith(b"\n"):
            try:  # a last line without newline is fine if it is whole
                orjson.loads(raw)
            except orjson.JSONDecodeError:
                self._problem(path, line, "torn last line (the writer stopped mid-line)")
                return
        try:
            data = orjson.loads(raw)
            with self.lock:
                row = parse_row(
                    data, id=len(self.rows), file=number, line=line, offset=offset, length=len(raw)
                )
                self._append(row)
        except orjson.JSONDecodeError as exc:
            self._problem(path, line, f"not JSON: {exc}")
        except RowError as exc:
            self._problem(path, line, str(exc))

    def _append(self, row: Row) -> None:
        self.rows.append(row)
        for facet in FACETS:
            self.facets[facet].update(facet_values(row, facet))
        if row.group_id is not None:
            self.groups.setdefault(row.group_id, []).append(row.id)

    def _problem(self, path: Path, line: int, message: str) -> None:
        with self.lock:
            self.problem_count += 1
            if len(self.problems) < MAX_PROBLEMS:
                self.problems.append(Problem(str(path), line, message))

    # -- reading (any thread) -------------------------------------------------------------

    def snapshot(self) -> list[Row]:
        """The rows indexed so far (a list that the scanner no longer changes)."""
        with self.lock:
            return self.rows[: len(self.rows)]

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "files": [
                    {"path": str(p), "media_dir": _existing(d), "lines": n}
                    for p, d, n in zip(self.paths, self.media_dirs(), self.lines, strict=True)
                ],
                "indexed": len(self.rows),
                "done": self.done,
                "following": self.follow and not self.stop.is_set(),
                "problems": [
                    {"file": p.file, "line": p.line, "message": p.message} for p in self.problems
                ],
                "problem_count": self.problem_count,
            }

    def facet_counts(self) -> dict[str, Any]:
        with self.lock:
            counts: dict[str, Any] = {
                facet: dict(counter.most_common()) for facet, counter in self.facets.items()
            }
            counts["groups"] = len(self.groups)
        return counts

    def group(self, group_id: str) -> list[Row]:
        with self.lock:
            ids = list(self.groups.get(group_id, ()))
            return [self.rows[i] for i in ids]

    def row(self, id: int) -> Row | None:
        with self.lock:
            return self.rows[id] if 0 <= id < len(self.rows) else None

    def read_line(self, row: Row) -> bytes:
        with self.paths[row.file].open("rb") as f:
            f.seek(row.offset)
            return f.read(row.length)


def _existing(path: Path) -> str | None:
    return str(path) if path.is_dir() else None


def chart_data(rows: Sequence[Row]) -> ChartData:
    charts = ChartData()
    for row in rows:
        charts.add_values(
            env=row.env,
            capabilities=row.capabilities,
            reward=row.reward if row.status == "scored" else None,
            failure_kind=row.failure_kind,
            wall_s=row.wall_s,
            started_at=row.started_at,
            weight_version=row.weight_version,
        )
    return charts


SORT_KEYS: dict[str, Callable[[Row], Any]] = {
    "id": lambda r: r.id,
    "env": lambda r: r.env,
    "reward": lambda r: r.reward,
    "turns": lambda r: r.turns,
    "wall_s": lambda r: r.wall_s,
    "started_at": lambda r: r.started_at,
    "prompt_tokens": lambda r: r.prompt_tokens,
    "completion_tokens": lambda r: r.completion_tokens,
    "status": lambda r: r.status,
    "seed": lambda r: r.seed,
}


def sort_rows(rows: list[Row], key: str, descending: bool) -> list[Row]:
    """Rows by ``key`` (a :data:`SORT_KEYS` name), ties by id; rows without it last."""
    get = SORT_KEYS[key]
    present = [r for r in rows if get(r) is not None]
    missing = [r for r in rows if get(r) is None]
    present.sort(key=lambda r: r.id, reverse=descending)  # stable sort: ties keep id order
    present.sort(key=get, reverse=descending)
    return present + missing
