"""Media beside a rollout file: ``X.jsonl`` keeps the blobs its messages refer to in
``X.media/``, one file per blob named by its sha256, so they outlive the run.

Rollout lines hold only :class:`~gymbus.runtime.messages.MediaRef`\\s; the bytes live in a
:class:`~gymbus.runtime.media.MediaStore` that ends with the process. A
:class:`MediaSaver` copies them out of the store before the rollout's line is written, so
every line on disk has its media on disk. Each blob is written once (atomically: a
temporary name in the same folder, then ``os.replace``), and the folder is only made when
the first blob arrives: a text-only run leaves no empty folder.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import structlog

from gymbus.runtime.errors import ConfigError, WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AudioPart, ImagePart, MediaRef, VideoPart
from gymbus.runtime.rollout import Rollout

__all__ = ["MediaSaver", "media_dir_for", "media_refs"]

log = structlog.get_logger("gymbus.media")


def media_dir_for(path: Path) -> Path:
    """The media folder of the rollout file ``path``: ``X.jsonl`` → ``X.media``."""
    folder = path.with_suffix(".media")
    return folder if folder != path else path.with_name(path.name + ".media")


def media_refs(rollout: Rollout) -> Iterator[MediaRef]:
    """The stored blobs the rollout's messages refer to (URL media have none), in order."""
    for message in rollout.messages:
        for part in message.content:
            if isinstance(part, ImagePart | AudioPart | VideoPart) and part.media is not None:
                yield part.media


class MediaSaver:
    """Writes the blobs rollouts refer to into ``folder``, each once, from ``store``
    (default: the process-wide store). Safe to share a folder between processes: names
    are content hashes and every file appears whole.

    A blob missing from the store is logged and skipped (the rollout is still written);
    a blob that cannot be written raises :class:`ConfigError` naming the path.
    """

    def __init__(self, folder: Path, store: MediaStore | None = None) -> None:
        self.folder = folder
        self.store = store if store is not None else MediaStore.shared()
        self.written = 0
        self._saved: set[str] = set()  # shas known to be in the folder

    def save(self, rollout: Rollout) -> None:
        """Write the blobs of ``rollout`` that are not in the folder yet."""
        for ref in media_refs(rollout):
            if ref.sha256 not in self._saved:
                self._save(ref, rollout.episode_id)

    def _save(self, ref: MediaRef, episode_id: str) -> None:
        path = self.folder / ref.sha256
        if _holds(path, ref):  # written earlier (a resumed file, another worker)
            self._saved.add(ref.sha256)
            return
        try:
            data = self.store.get(ref)
        except WireFormatError as exc:  # not in the store, or its spill file is gone
            log.warning("media.missing", episode_id=episode_id, sha256=ref.sha256, error=str(exc))
            return
        self._write(path, data)
        self._saved.add(ref.sha256)
        self.written += 1

    def _write(self, path: Path, data: bytes) -> None:
        temp = self.folder / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with temp.open("xb") as f:
                f.write(data)
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            if self.folder.exists() and not self.folder.is_dir():
                raise ConfigError(
                    f"{self.folder} is not a folder: the media of the rollouts are saved there"
                    " (move it away, or write the rollouts elsewhere)"
                ) from None
            raise ConfigError(f"{path}: cannot save rollout media: {exc.strerror or exc}") from None


def _holds(path: Path, ref: MediaRef) -> bool:
    try:
        return path.stat().st_size == ref.size
    except OSError:
        return False
