"""A content-addressed media store: blobs keyed by the sha256 of their bytes, held in
memory up to a size bound and spilled to disk beyond it.

Messages carry a :class:`~gymbus.runtime.messages.MediaRef`; wire writers ask the store for
the bytes in the encoding they need (a ``data:`` URI or bare base64). Each encoding is
computed once per blob and kept, since the same image is re-sent on every turn.

``put`` checks what it stores (:mod:`.media_sniff`): the type is detected from the magic
bytes and must agree with a declared one, images must verify with Pillow and WAV headers
must parse, and a blob may not be empty or larger than ``max_blob_bytes``; otherwise it
raises :class:`~gymbus.runtime.errors.BadMediaError`.

Memory: a blob and its cached encodings are one entry, charged together (bytes plus
encoded characters) against ``max_memory_bytes``. Beyond the bound, least recently used
entries are dropped: the bytes are written to ``spill_dir/<sha256>`` (once) and the
encodings are discarded, to be recomputed if the blob is used again. ``get`` reads a
spilled blob back and re-admits it. An entry larger than the whole bound is served from
disk and its encodings are not kept. (The wire bytes cached on messages, which embed
these encodings, are not counted: they live as long as their messages.)

Every method is synchronous and never yields to the event loop, so concurrent tasks
cannot interleave inside one (no locks needed); spilling is blocking file I/O.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import os
import re
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import ClassVar

from gymbus.runtime.errors import BadMediaError, ConfigError, WireFormatError
from gymbus.runtime.media_frames import sample_frames
from gymbus.runtime.media_sniff import check_intact, media_type
from gymbus.runtime.messages import MediaRef

__all__ = ["DEFAULT_MAX_BLOB_BYTES", "DEFAULT_MAX_MEMORY_BYTES", "MediaStore"]

MiB = 1024 * 1024
DEFAULT_MAX_MEMORY_BYTES = 256 * MiB
DEFAULT_MAX_BLOB_BYTES = 64 * MiB

# RFC 6838 type/subtype, no parameters: anything else could not be written in a data URI.
_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
_BASE64_MARK = ";base64,"


class _Entry:
    """A blob in memory with its cached encodings and derived frames."""

    __slots__ = ("b64", "charge", "data", "frames", "uris")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.b64: str | None = None
        self.uris: dict[str, str] = {}  # media type -> data URI
        self.frames: dict[int, tuple[MediaRef, ...]] = {}  # max_frames -> frame refs
        self.charge = len(data)


_process_spill_dirs: dict[int, Path] = {}


def _default_spill_dir() -> Path:
    """One temporary directory per process (a forked child makes its own), made on first
    use and removed when that process exits."""
    pid = os.getpid()
    path = _process_spill_dirs.get(pid)
    if path is None:
        path = _process_spill_dirs[pid] = Path(tempfile.mkdtemp(prefix="gymbus-media-"))
        atexit.register(_remove_spill_dir, pid, path)
    return path


def _remove_spill_dir(pid: int, path: Path) -> None:
    if os.getpid() == pid:  # atexit handlers are inherited by forked children
        shutil.rmtree(path, ignore_errors=True)


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB ({n} bytes)" if n >= MiB else f"{n} bytes"


class MediaStore:
    """Blobs by content hash. ``put`` dedupes and checks; encodings are cached per blob.

    ``max_memory_bytes`` bounds the blobs plus cached encodings held in memory (default
    256 MiB); the rest is spilled to ``spill_dir`` (default: a per-process temporary
    directory, created on the first spill and removed at exit; a given directory is
    created if missing and never cleaned). ``max_blob_bytes`` (default 64 MiB) is the
    largest blob ``put`` accepts. :attr:`encodings` counts base64 encodings computed.

    :meth:`shared` is the process-wide store that environments put media into and
    adapters read from by default: content addressing makes sharing safe (equal bytes,
    equal reference), and messages only ever carry references.
    """

    __slots__ = (
        "_known",
        "_memory",
        "_memory_bytes",
        "_on_disk",
        "_spill_root",
        "encodings",
        "max_blob_bytes",
        "max_memory_bytes",
    )

    _shared: ClassVar[MediaStore | None] = None

    @classmethod
    def shared(cls) -> MediaStore:
        """The process-wide default store."""
        store = MediaStore._shared
        if store is None:
            store = MediaStore._shared = cls()
        return store

    def __init__(
        self,
        *,
        max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
        max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if max_memory_bytes < 0:
            raise ConfigError(f"max_memory_bytes must be >= 0, got {max_memory_bytes}")
        if max_blob_bytes < 1:
            raise ConfigError(f"max_blob_bytes must be >= 1, got {max_blob_bytes}")
        self.max_memory_bytes = max_memory_bytes
        self.max_blob_bytes = max_blob_bytes
        # the default directory is resolved on the first spill, then kept (even in a
        # forked child, which still reads what its parent spilled)
        self._spill_root = Path(spill_dir) if spill_dir is not None else None
        self._memory: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._memory_bytes = 0
        self._known: set[str] = set()  # every sha stored, in memory or on disk
        self._on_disk: set[str] = set()  # shas with a spill file written by this store
        self.encodings = 0

    # --- introspection -----------------------------------------------------------------

    @property
    def memory_bytes(self) -> int:
        """Bytes held in memory: blobs plus cached encodings (at most the bound)."""
        return self._memory_bytes

    @property
    def spill_dir(self) -> Path | None:
        """Where spilled blobs go: the given directory, or the default one once used."""
        return self._spill_root

    def in_memory(self, ref: MediaRef) -> bool:
        """Whether the blob is held in memory (as opposed to only in its spill file)."""
        return ref.sha256 in self._memory

    def __contains__(self, ref: object) -> bool:
        return isinstance(ref, MediaRef) and ref.sha256 in self._known

    def __len__(self) -> int:
        return len(self._known)

    # --- storing -----------------------------------------------------------------------

    def put(self, data: bytes | bytearray | memoryview, mime_type: str | None = None) -> MediaRef:
        """Check and store ``data`` (once per distinct content) and return its reference.

        Without ``mime_type`` the type is detected from the bytes; a declared type must
        agree with them (see :func:`~gymbus.runtime.media_sniff.media_type`).
        """
        if mime_type is not None and not _MIME.fullmatch(mime_type):
            raise WireFormatError(f"media type {mime_type!r} is not of the form type/subtype")
        data = bytes(data)
        if not data:
            raise BadMediaError(f"empty media ({mime_type or 'no type'}): 0 bytes")
        if len(data) > self.max_blob_bytes:
            raise BadMediaError(
                f"media of {_size(len(data))} is larger than the limit of "
                f"{_size(self.max_blob_bytes)} (max_blob_bytes)"
            )
        mime, kind = media_type(data, mime_type)
        sha = hashlib.sha256(data).hexdigest()
        if sha in self._memory:
            self._memory.move_to_end(sha)
        else:
            if sha not in self._known:
                check_intact(data, kind)
                self._known.add(sha)
            self._admit(sha, _Entry(data))
        return MediaRef(sha256=sha, mime_type=mime, size=len(data))

    def put_base64(self, encoded: str, mime_type: str | None = None) -> MediaRef:
        """Decode strict base64 and store it."""
        if len(encoded) // 4 * 3 > self.max_blob_bytes + 2:  # don't decode what won't fit
            raise BadMediaError(
                f"media of about {_size(len(encoded) // 4 * 3)} is larger than the limit "
                f"of {_size(self.max_blob_bytes)} (max_blob_bytes)"
            )
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WireFormatError(f"invalid base64 media data: {exc}") from None
        return self.put(data, mime_type)

    def put_data_uri(self, uri: str) -> MediaRef:
        """Store the bytes of a ``data:<mime>;base64,<data>`` URI."""
        if not uri.startswith("data:"):
            raise WireFormatError(f"not a data URI (must start with 'data:'): {uri[:40]!r}")
        mark = uri.find(_BASE64_MARK)
        if mark < 0:
            raise WireFormatError(
                f"unsupported data URI {uri[:40]!r}: only 'data:<type/subtype>;base64,...' is"
                " supported"
            )
        mime_type = uri[5:mark]
        if not _MIME.fullmatch(mime_type):
            raise WireFormatError(
                f"data URI media type {mime_type!r} is not of the form type/subtype"
            )
        return self.put_base64(uri[mark + len(_BASE64_MARK) :], mime_type)

    # --- reading -----------------------------------------------------------------------

    def get(self, ref: MediaRef) -> bytes:
        """The blob's bytes, from memory or read back from its spill file."""
        entry = self._entry(ref)
        return entry.data if entry is not None else self._read_spilled(ref)

    def base64(self, ref: MediaRef) -> str:
        """The blob as standard base64 (encoded once per blob while it is in memory)."""
        entry = self._entry(ref)
        if entry is None:
            return self._encode(self._read_spilled(ref))
        if entry.b64 is None:
            entry.b64 = self._encode(entry.data)
            self._charge(entry, len(entry.b64))
        return entry.b64

    def data_uri(self, ref: MediaRef) -> str:
        """``data:<mime>;base64,<data>`` (built once per blob and media type while the
        blob is in memory)."""
        entry = self._entry(ref)
        if entry is None:
            encoded = self._encode(self._read_spilled(ref))
            return f"data:{ref.mime_type}{_BASE64_MARK}{encoded}"
        uri = entry.uris.get(ref.mime_type)
        if uri is None:
            # reuse a cached base64, but don't cache a second copy of it for the URI
            encoded = entry.b64 if entry.b64 is not None else self._encode(entry.data)
            uri = entry.uris[ref.mime_type] = f"data:{ref.mime_type}{_BASE64_MARK}{encoded}"
            self._charge(entry, len(uri))
        return uri

    def frames(self, ref: MediaRef, max_frames: int) -> tuple[MediaRef, ...]:
        """Up to ``max_frames`` evenly sampled frames of an animated GIF/WebP/PNG, each
        stored as a PNG blob (see :mod:`.media_frames`); decoded once while the video's
        blob is in memory."""
        entry = self._entry(ref)
        cached = entry.frames.get(max_frames) if entry is not None else None
        if cached is not None:
            return cached
        data = entry.data if entry is not None else self._read_spilled(ref)
        what = f"video {ref.sha256[:12]} ({ref.mime_type})"
        refs = tuple(self.put(png, "image/png") for png in sample_frames(data, max_frames, what))
        if entry is not None and self._memory.get(ref.sha256) is entry:
            entry.frames[max_frames] = refs
        return refs

    # --- memory and disk ---------------------------------------------------------------

    def _encode(self, data: bytes) -> str:
        self.encodings += 1
        return base64.b64encode(data).decode("ascii")

    def _entry(self, ref: MediaRef) -> _Entry | None:
        """The blob's entry, made most recently used (re-admitted from disk if it fits);
        None when the blob is only on disk."""
        sha = ref.sha256
        entry = self._memory.get(sha)
        if entry is not None:
            self._memory.move_to_end(sha)
            return entry
        if sha not in self._known:
            raise WireFormatError(f"media {sha} ({ref.mime_type}) is not in this media store")
        if ref.size > self.max_memory_bytes:
            return None
        entry = _Entry(self._read_spilled(ref))
        self._admit(sha, entry)
        return entry

    def _admit(self, sha: str, entry: _Entry) -> None:
        self._memory[sha] = entry
        self._memory_bytes += entry.charge
        self._evict()

    def _charge(self, entry: _Entry, extra: int) -> None:
        entry.charge += extra
        self._memory_bytes += extra
        self._evict()

    def _evict(self) -> None:
        """Spill least recently used entries until memory is within the bound."""
        while self._memory_bytes > self.max_memory_bytes and self._memory:
            sha, entry = next(iter(self._memory.items()))
            if sha not in self._on_disk:
                self._write_spilled(sha, entry.data)  # before dropping: a failure loses nothing
            del self._memory[sha]
            self._memory_bytes -= entry.charge

    def _spill_path(self, sha: str) -> Path:
        if self._spill_root is None:
            self._spill_root = _default_spill_dir()
        return self._spill_root / sha

    def _write_spilled(self, sha: str, data: bytes) -> None:
        path = self._spill_path(sha)
        if not (path.is_file() and path.stat().st_size == len(data)):  # content-addressed
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{sha}.{os.getpid()}.{id(self)}.tmp")
            temp.write_bytes(data)
            os.replace(temp, path)
        self._on_disk.add(sha)

    def _read_spilled(self, ref: MediaRef) -> bytes:
        path = self._spill_path(ref.sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise WireFormatError(
                f"media {ref.sha256} ({ref.mime_type}) was spilled to {path}, which is gone"
            ) from None
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise WireFormatError(
                f"media {ref.sha256} ({ref.mime_type}): spill file {path} does not hold it"
            )
        return data
