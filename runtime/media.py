"""A content-addressed, in-memory media store: blobs keyed by the sha256 of their bytes.

Messages carry a :class:`~gymbus.runtime.messages.MediaRef`; wire writers ask the store for
the bytes in the encoding they need (a ``data:`` URI or bare base64). Each encoding is
computed once per blob and kept, since the same image is re-sent on every turn.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import ClassVar

from gymbus.runtime.errors import WireFormatError
from gymbus.runtime.messages import MediaRef

# RFC 6838 type/subtype, no parameters: anything else could not be written in a data URI.
_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
_BASE64_MARK = ";base64,"


class MediaStore:
    """Blobs by content hash. ``put`` dedupes; encodings are cached per blob.

    :meth:`shared` is the process-wide store that environments put media into and
    adapters read from by default: content addressing makes sharing safe (equal bytes,
    equal reference), and messages only ever carry references.
    """

    __slots__ = ("_b64", "_blobs", "_uris")

    _shared: ClassVar[MediaStore | None] = None

    @classmethod
    def shared(cls) -> MediaStore:
        """The process-wide default store."""
        store = MediaStore._shared
        if store is None:
            store = MediaStore._shared = cls()
        return store

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._b64: dict[str, str] = {}
        self._uris: dict[tuple[str, str], str] = {}

    def put(self, data: bytes, mime_type: str) -> MediaRef:
        """Store ``data`` (once per distinct content) and return its reference."""
        if not _MIME.match(mime_type):
            raise WireFormatError(f"media type {mime_type!r} is not of the form type/subtype")
        data = bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        self._blobs.setdefault(sha, data)
        return MediaRef(sha256=sha, mime_type=mime_type, size=len(data))

    def get(self, ref: MediaRef) -> bytes:
        try:
            return self._blobs[ref.sha256]
        except KeyError:
            raise WireFormatError(
                f"media {ref.sha256} ({ref.mime_type}) is not in this media store"
            ) from None

    def __contains__(self, ref: object) -> bool:
        return isinstance(ref, MediaRef) and ref.sha256 in self._blobs

    def __len__(self) -> int:
        return len(self._blobs)

    def base64(self, ref: MediaRef) -> str:
        """The blob as standard base64 (encoded once per blob)."""
        sha = ref.sha256
        encoded = self._b64.get(sha)
        if encoded is None:
            encoded = self._b64[sha] = base64.b64encode(self.get(ref)).decode("ascii")
        return encoded

    def data_uri(self, ref: MediaRef) -> str:
        """``data:<mime>;base64,<data>`` (built once per blob and media type)."""
        key = (ref.sha256, ref.mime_type)
        uri = self._uris.get(key)
        if uri is None:
            data = self.get(ref)
            encoded = self._b64.get(ref.sha256)
            if encoded is None:  # don't keep a second copy of the base64 for data URIs
                encoded = base64.b64encode(data).decode("ascii")
            uri = self._uris[key] = f"data:{ref.mime_type}{_BASE64_MARK}{encoded}"
        return uri

    def put_base64(self, encoded: str, mime_type: str) -> MediaRef:
        """Decode strict base64 and store it."""
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
        if not _MIME.match(mime_type):
            raise WireFormatError(
                f"data URI media type {mime_type!r} is not of the form type/subtype"
            )
        return self.put_base64(uri[mark + len(_BASE64_MARK) :], mime_type)
