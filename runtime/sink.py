"""Rollout files: a streaming JSONL sink and a reader that survives a crash.

Each finished rollout is appended as one line as soon as it is done. The sink flushes
to the OS after every line and ``fsync``\\s at most every ``sync_interval`` seconds (and on
close), so a killed process loses at most the line it was writing — which the reader
recognizes as a *torn tail* (an unterminated last line) and :func:`repair_tail` cuts off
before appending again. Any other unreadable line is bad input: :class:`RolloutFileError`
names the file, the line and the field.

The media a rollout refers to are saved beside the file, in ``X.media/`` for ``X.jsonl``
(see :mod:`.media_files`), before its line is written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from pydantic import ValidationError

from gymbus.runtime.errors import InputError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.media_files import MediaSaver, media_dir_for
from gymbus.runtime.rollout import Rollout


class RolloutFileError(InputError):
    """A line of a rollout file is not a valid rollout."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path = path
        self.line = line


def validation_problem(exc: ValidationError) -> str:
    """The first field a validation error names, and how many more there are."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(line)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"field {where}: {first['msg']}{more}"


def read_rollouts(path: Path) -> Iterator[tuple[int, Rollout]]:
    """(line number, rollout) for every complete line; a torn last line (no newline,
    from a crash) is skipped. Blank lines are ignored."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                return  # torn tail: the writer died mid-line
            if not raw.strip():
                continue
            try:
                yield number, Rollout.model_validate_json(raw)
            except ValidationError as exc:
                raise RolloutFileError(path, number, validation_problem(exc)) from None


def repair_tail(path: Path) -> int:
    """Cut a torn last line off ``path`` (so appending starts on a fresh line); return
    the number of bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as f:
        # find the last newline by scanning backwards in blocks
        end = size
        block = 1 << 16
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            chunk = f.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut != -1:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
        if keep < size:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return size - keep


class RolloutSink:
    """Appends rollouts to a JSONL file, one line each, durable within ``sync_interval``.

    Each rollout's media are first copied from ``media`` (default: the process-wide store)
    into the file's media folder; ``save_media=False`` when someone else saves them (the
    Ray workers, whose stores hold the bytes).
    """

    def __init__(
        self,
        path: Path,
        *,
        sync_interval: float = 1.0,
        media: MediaStore | None = None,
        save_media: bool = True,
    ) -> None:
        self.path = path
        self.sync_interval = sync_interval
        self.written = 0
        self.media = MediaSaver(media_dir_for(path), media) if save_media else None
        self._file: BinaryIO | None = None
        self._last_sync = 0.0

    def __enter__(self) -> Self:
        repair_tail(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")
        self._last_sync = time.monotonic()
        return self

    def write(self, rollout: Rollout) -> None:
        f = self._file
        if f is None:
            raise RuntimeError("use RolloutSink inside 'with'")
        if self.media is not None:
            self.media.save(rollout)  # first: a line on disk has its media on disk
        f.write(rollout.to_json_line())
        f.flush()
        self.written += 1
        now = time.monotonic()
        if now - self._last_sync >= self.sync_interval:
            os.fsync(f.fileno())
            self._last_sync = now

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.flush()
            os.fsync(f.fileno())
            f.close()
