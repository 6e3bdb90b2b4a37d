"""What media bytes are: the type from their magic bytes, and a check that they parse.

:func:`media_type` decides the type a blob is stored under (the declared one, checked
against the bytes, or the detected one); :func:`check_intact` rejects images Pillow cannot
read and WAV files whose RIFF header does not parse. Both raise
:class:`~gymbus.runtime.errors.BadMediaError`.
"""

from __future__ import annotations

import functools
import io
import struct
import wave
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from gymbus.runtime.errors import BadMediaError

__all__ = [
    "FLAC",
    "GIF",
    "JPEG",
    "KINDS",
    "MATROSKA",
    "MP3",
    "MP4",
    "OGG",
    "PNG",
    "WAV",
    "WEBP",
    "MediaKind",
    "check_intact",
    "media_type",
    "sniff",
]


@dataclass(frozen=True, slots=True)
class MediaKind:
    """A format recognisable from its first bytes, and the media types that name it."""

    name: str
    mime: str
    """The canonical type, used when no type is declared."""
    aliases: frozenset[str]
    """Declared types that agree with bytes of this kind (lower case)."""
    pillow: str | None = None
    """The Pillow format that reads (and verifies) it, if any."""


def _kind(name: str, mime: str, *aliases: str, pillow: str | None = None) -> MediaKind:
    return MediaKind(name, mime, frozenset((mime, *aliases)), pillow)


PNG = _kind("PNG", "image/png", "image/apng", "image/x-png", "image/vnd.mozilla.apng", pillow="PNG")
JPEG = _kind("JPEG", "image/jpeg", "image/jpg", "image/pjpeg", pillow="JPEG")
GIF = _kind("GIF", "image/gif", pillow="GIF")
WEBP = _kind("WebP", "image/webp", pillow="WEBP")
WAV = _kind("WAV", "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
MP3 = _kind("MP3", "audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg-3", "audio/x-mp3")
OGG = _kind("OGG", "audio/ogg", "video/ogg", "application/ogg", "audio/opus", "audio/vorbis")
FLAC = _kind("FLAC", "audio/flac", "audio/x-flac")
# ISO base media files (ftyp box): MP4, QuickTime, M4A, 3GP, and the HEIF/AVIF images
# built on the same container. Any of their names agrees with any ftyp file.
MP4 = _kind(
    "MP4/MOV",
    "video/mp4",
    "video/quicktime",
    "video/x-m4v",
    "video/3gpp",
    "video/3gpp2",
    "audio/mp4",
    "audio/m4a",
    "audio/x-m4a",
    "audio/3gpp",
    "application/mp4",
    "image/avif",
    "image/heic",
    "image/heif",
)
MATROSKA = _kind(
    "WebM/MKV",
    "video/webm",
    "audio/webm",
    "video/x-matroska",
    "audio/x-matroska",
    "application/x-matroska",
)
KINDS: tuple[MediaKind, ...] = (PNG, JPEG, GIF, WEBP, WAV, MP3, OGG, FLAC, MP4, MATROSKA)

# Declared types that claim nothing about the bytes.
_GENERIC = frozenset({"application/octet-stream", "binary/octet-stream"})
_CLAIMED = {alias: kind for kind in KINDS for alias in kind.aliases}
_FTYP_BRANDS = {
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
}


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, then a valid version, layer, bitrate
    and sample rate (this rules out AAC's ADTS, whose layer bits are 00)."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate != 15 and rate != 3


def sniff(data: bytes) -> tuple[MediaKind, str] | None:
    """The kind of ``data`` and its most specific media type, from the first bytes."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG, PNG.mime
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG, JPEG.mime
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF, GIF.mime
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP, WEBP.mime
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return WAV, WAV.mime
    if head.startswith(b"ID3") or _mpeg_audio_frame(head):
        return MP3, MP3.mime
    if head.startswith(b"OggS"):
        return OGG, OGG.mime
    if head.startswith(b"fLaC"):
        return FLAC, FLAC.mime
    if head[4:8] == b"ftyp":
        return MP4, _FTYP_BRANDS.get(head[8:12], MP4.mime)
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML; the DocType says WebM or Matroska
        return MATROSKA, "video/webm" if b"webm" in head else "video/x-matroska"
    return None


def media_type(data: bytes, declared: str | None) -> tuple[str, MediaKind | None]:
    """The type to store ``data`` under, and its detected kind.

    A declared type is kept as written when the bytes agree with it, when it is generic
    (``application/octet-stream``) or when it names a format not recognised here (SVG,
    raw PCM, ...). It must agree when the bytes are of a known kind, and when it names a
    known kind the bytes must be of that kind. Without a declared type, the bytes must be
    recognisable.
    """
    found = sniff(data)
    kind = found[0] if found is not None else None
    if declared is None:
        if found is None:
            raise BadMediaError(
                f"cannot detect the media type of {len(data)} bytes (first bytes "
                f"{data[:12].hex(' ')}); pass mime_type"
            )
        return found[1], kind
    lowered = declared.lower()
    if lowered in _GENERIC:
        return declared, kind
    if kind is not None and lowered not in kind.aliases:
        raise BadMediaError(
            f"media declared as {declared} but its bytes are {kind.name} ({kind.mime})"
        )
    claimed = _CLAIMED.get(lowered)
    if kind is None and claimed is not None:
        raise BadMediaError(
            f"media declared as {declared} but its bytes are not {claimed.name} (detected: "
            f"no known format; first bytes {data[:12].hex(' ')})"
        )
    return declared, kind


def check_intact(data: bytes, kind: MediaKind | None) -> None:
    """Raise :class:`BadMediaError` if ``data`` of ``kind`` does not parse: images are
    verified by Pillow (when it reads the format), WAV files by :mod:`wave`."""
    if kind is None:
        return
    if kind.pillow is not None and kind.pillow in _pillow_formats():
        try:
            with Image.open(io.BytesIO(data), formats=(kind.pillow,)) as image:
                image.verify()
        except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ...)
            raise BadMediaError(f"corrupt {kind.name} image: {_cause(exc, kind)}") from exc
    elif kind is WAV:
        _check_wav(data)


# A data chunk size of 0xFFFFFFFF means "unknown length" (a WAV written as a stream).
_STREAMING_SIZE = 0xFFFFFFFF - 8


def _check_wav(data: bytes) -> None:
    stream = io.BytesIO(data)
    try:
        with wave.open(stream, "rb") as reader:
            declared = reader.getnframes() * reader.getsampwidth() * reader.getnchannels()
    except wave.Error as exc:
        if str(exc).startswith("unknown format"):
            return  # a well-formed RIFF/WAVE of a codec `wave` cannot decode (float, ...)
        raise BadMediaError(f"corrupt WAV audio: {_cause(exc)}") from exc
    except RuntimeError as exc:  # wave's chunk reader, seeking outside a chunk
        raise BadMediaError("corrupt WAV audio: a chunk size is out of range") from exc
    except (EOFError, ValueError, OSError, struct.error) as exc:
        raise BadMediaError(f"corrupt WAV audio: {_cause(exc)}") from exc
    # wave stops reading at the start of the data chunk, which may be cut short
    present = len(data) - stream.tell()
    if present < declared < _STREAMING_SIZE:
        raise BadMediaError(
            f"corrupt WAV audio: the data chunk declares {declared} bytes of samples but "
            f"only {present} are present (truncated file)"
        )


def _cause(exc: BaseException, kind: MediaKind | None = None) -> str:
    text = str(exc)
    if isinstance(exc, EOFError):
        return f"truncated header ({type(exc).__name__})"
    if isinstance(exc, UnidentifiedImageError) and kind is not None:  # its text names a stream
        return f"Pillow cannot read it as {kind.name} ({type(exc).__name__})"
    return f"{text} ({type(exc).__name__})" if text else type(exc).__name__


@functools.cache
def _pillow_formats() -> frozenset[str]:
    Image.init()
    return frozenset(Image.OPEN)
