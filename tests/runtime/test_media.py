from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gymbus.runtime.errors import BadMediaError, ConfigError, WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import MediaRef
from tests.runtime.strategies import (
    MP4_HEAD,
    animated_bytes,
    image_bytes,
    media_bytes,
    wav_bytes,
)

PNG = image_bytes("image/png", (3, 2), (10, 20, 30))
KIB = 1024


def blob(i: int, size: int = KIB) -> bytes:
    """A distinct valid WAV of ``size`` bytes of samples."""
    return wav_bytes(i.to_bytes(2, "little") * (size // 2))


def test_put_returns_a_content_address_and_dedupes() -> None:
    store = MediaStore()
    ref = store.put(PNG, "image/png")
    assert ref == MediaRef(
        sha256=hashlib.sha256(PNG).hexdigest(), mime_type="image/png", size=len(PNG)
    )
    again = store.put(bytearray(PNG), "image/png")
    assert again == ref
    assert len(store) == 1
    assert store.get(ref) == PNG
    assert ref in store


def test_same_bytes_under_another_type_share_the_blob() -> None:
    store = MediaStore()
    a = store.put(PNG, "image/png")
    b = store.put(PNG, "application/octet-stream")
    c = store.put(PNG)  # detected
    assert a.sha256 == b.sha256 == c.sha256
    assert a != b
    assert c == a
    assert len(store) == 1
    assert store.data_uri(a).startswith("data:image/png;base64,")
    assert store.data_uri(b).startswith("data:application/octet-stream;base64,")


def test_get_of_a_missing_blob_names_the_sha() -> None:
    other = MediaStore().put(PNG, "image/png")
    store = MediaStore()
    assert other not in store
    with pytest.raises(WireFormatError, match=other.sha256):
        store.get(other)
    with pytest.raises(WireFormatError, match=other.sha256):
        store.data_uri(other)


def test_encodings_are_computed_once_and_counted() -> None:
    store = MediaStore()
    data = blob(1, 300)
    ref = store.put(data, "audio/wav")
    assert store.encodings == 0
    uri = store.data_uri(ref)
    assert uri == "data:audio/wav;base64," + base64.b64encode(data).decode()
    assert store.data_uri(ref) is uri
    assert store.encodings == 1
    b64 = store.base64(ref)
    assert store.base64(ref) is b64
    assert uri.endswith(b64)
    assert store.encodings == 2  # the URI's base64 is not kept twice
    # a second type for the same blob reuses the cached base64
    assert store.data_uri(store.put(data, "audio/x-wav")).endswith(b64)
    assert store.encodings == 2


@pytest.mark.parametrize("mime", ["png", "", "image/png; charset=x", "image/png,x", "/png"])
def test_put_rejects_a_malformed_media_type(mime: str) -> None:
    with pytest.raises(WireFormatError, match="type/subtype"):
        MediaStore().put(PNG, mime)


def test_put_data_uri() -> None:
    store = MediaStore()
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    ref = store.put_data_uri(uri)
    assert ref.mime_type == "image/png"
    assert store.get(ref) == PNG
    assert store.data_uri(ref) == uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://example.com/a.png", "must start with 'data:'"),
        ("data:image/png,hello", "only 'data:<type/subtype>;base64,"),
        ("data:;base64,aGVsbG8=", "type/subtype"),
        ("data:image/png;charset=utf-8;base64,aGVsbG8=", "type/subtype"),
        ("data:image/png;base64,aGVsbG8", "invalid base64"),
        ("data:image/png;base64,aGVs*bG8=", "invalid base64"),
        ("data:image/png;base64,aGVsbG8=\n", "invalid base64"),
        ("data:image/png;base64,héllo===", "invalid base64"),
    ],
)
def test_put_data_uri_rejects_malformed_uris(uri: str, message: str) -> None:
    with pytest.raises(WireFormatError, match=message):
        MediaStore().put_data_uri(uri)


MIMES = ["image/png", "image/jpeg", "audio/wav", "audio/mpeg", "video/mp4", "video/webm"]


@settings(max_examples=100)
@given(st.sampled_from(MIMES).flatmap(lambda m: st.tuples(st.just(m), media_bytes(m))))
def test_data_uri_round_trip(sample: tuple[str, bytes]) -> None:
    mime, data = sample
    store = MediaStore()
    ref = store.put(data, mime)
    other = MediaStore()
    assert other.put_data_uri(store.data_uri(ref)) == ref
    assert other.get(ref) == data
    assert other.put_base64(store.base64(ref), mime) == ref


def test_the_shared_store_is_one_per_process_and_adapters_use_it() -> None:
    from gymbus.adapters import OpenAIChat

    store = MediaStore.shared()
    assert store is MediaStore.shared()
    ref = store.put(image_bytes(color=(1, 2, 3)), "image/png")
    adapter = OpenAIChat("m", base_url="http://127.0.0.1:9/v1")
    assert adapter.media is store
    assert adapter.media.get(ref) == image_bytes(color=(1, 2, 3))


# --- what put refuses ------------------------------------------------------------------


def test_empty_media_is_refused() -> None:
    with pytest.raises(BadMediaError, match="empty media"):
        MediaStore().put(b"", "image/png")
    with pytest.raises(BadMediaError, match="empty media"):
        MediaStore().put(b"")


def test_too_large_media_names_the_size_and_the_limit() -> None:
    store = MediaStore(max_blob_bytes=100)
    data = blob(1, 200)
    with pytest.raises(BadMediaError, match=r"media of 244 bytes is larger than the limit of 100"):
        store.put(data, "audio/wav")
    with pytest.raises(BadMediaError, match="larger than the limit of 100 bytes"):
        store.put_base64(base64.b64encode(data).decode(), "audio/wav")
    assert len(store) == 0
    big = MediaStore(max_blob_bytes=64 * 1024 * 1024)
    with pytest.raises(BadMediaError, match=r"64\.0 MiB \(67108865 bytes\).*64\.0 MiB"):
        big.put(MP4_HEAD + bytes(64 * 1024 * 1024 - len(MP4_HEAD) + 1), "video/mp4")


def test_a_declared_type_that_contradicts_the_bytes_is_refused() -> None:
    store = MediaStore()
    with pytest.raises(BadMediaError, match=r"declared as image/jpeg but its bytes are PNG"):
        store.put(PNG, "image/jpeg")
    with pytest.raises(BadMediaError, match=r"declared as audio/mpeg but its bytes are WAV"):
        store.put(blob(1, 10), "audio/mpeg")
    with pytest.raises(BadMediaError, match=r"declared as image/png but its bytes are not PNG"):
        store.put(b"<svg/>", "image/png")
    assert len(store) == 0


def test_corrupt_images_and_wav_are_refused() -> None:
    store = MediaStore()
    noise = Image.frombytes("L", (32, 32), bytes(range(256)) * 4)
    out = io.BytesIO()
    noise.save(out, format="PNG")
    png = out.getvalue()
    with pytest.raises(BadMediaError, match=r"corrupt PNG image: Truncated File Read \(OSError"):
        store.put(png[: len(png) // 2], "image/png")
    with pytest.raises(BadMediaError, match=r"corrupt PNG image: Pillow cannot read it as PNG"):
        store.put(png[:8] + b"\x00" * 30)  # the signature and nothing valid after it
    wav = blob(1, 100)
    with pytest.raises(BadMediaError, match="corrupt WAV audio: truncated header"):
        store.put(wav[:30], "audio/wav")
    with pytest.raises(BadMediaError, match="corrupt WAV audio: fmt chunk and/or data chunk"):
        store.put(wav[:12], "audio/wav")
    with pytest.raises(BadMediaError, match="corrupt WAV audio: a chunk size is out of range"):
        store.put(wav[:12] + b"junk" * 8, "audio/wav")
    with pytest.raises(BadMediaError, match="declares 100 bytes of samples but only 60"):
        store.put(wav[:-40], "audio/wav")
    assert len(store) == 0


# --- the memory bound and the spill ----------------------------------------------------


def test_blobs_beyond_the_bound_spill_to_disk_and_read_back(tmp_path: Path) -> None:
    bound = 3 * (KIB + 44) + 10  # three blobs
    store = MediaStore(max_memory_bytes=bound, spill_dir=tmp_path / "spill")
    datas = [blob(i) for i in range(10)]
    refs = [store.put(d, "audio/wav") for d in datas]
    assert store.memory_bytes <= bound
    assert len(store) == 10
    assert store.spill_dir == tmp_path / "spill"
    on_disk = sorted(p.name for p in (tmp_path / "spill").iterdir())
    assert on_disk == sorted(r.sha256 for r in refs[:7])  # the oldest
    assert [store.in_memory(r) for r in refs] == [False] * 7 + [True] * 3
    for ref, data in zip(refs, datas, strict=True):
        assert ref in store
        assert store.get(ref) == data
        assert store.memory_bytes <= bound
    # reading re-admitted the last three read, evicting the others (already on disk)
    assert [store.in_memory(r) for r in refs] == [False] * 7 + [True] * 3
    assert store.get(refs[0]) == datas[0]
    assert store.in_memory(refs[0])
    assert len(list((tmp_path / "spill").iterdir())) == 10  # one file per blob


def test_eviction_is_least_recently_used(tmp_path: Path) -> None:
    store = MediaStore(max_memory_bytes=3 * (KIB + 44), spill_dir=tmp_path)
    a, b, c = (store.put(blob(i), "audio/wav") for i in range(3))
    store.get(a)  # a is now the most recent: b goes first
    d = store.put(blob(3), "audio/wav")
    assert [store.in_memory(r) for r in (a, b, c, d)] == [True, False, True, True]
    assert store.put(blob(1), "audio/wav") == b  # put again: re-admitted without a read
    assert store.in_memory(b)
    assert not store.in_memory(c)


def test_encodings_count_against_the_bound_and_go_with_their_blob(tmp_path: Path) -> None:
    size = KIB + 44
    store = MediaStore(max_memory_bytes=4 * size, spill_dir=tmp_path)
    a = store.put(blob(0), "audio/wav")
    uri = store.data_uri(a)
    assert store.memory_bytes == size + len(uri)
    b = store.put(blob(1), "audio/wav")
    store.data_uri(b)  # a (with its URI) is now the oldest and the bound is crossed
    assert not store.in_memory(a)
    assert store.memory_bytes == size + len(uri)
    assert store.encodings == 2
    assert store.data_uri(a) == uri  # re-admitted and re-encoded
    assert store.encodings == 3
    assert store.memory_bytes <= 4 * size


def test_a_blob_larger_than_the_bound_is_served_from_disk(tmp_path: Path) -> None:
    store = MediaStore(max_memory_bytes=500, spill_dir=tmp_path)
    data = blob(7)
    ref = store.put(data, "audio/wav")
    assert store.memory_bytes == 0
    assert (tmp_path / ref.sha256).read_bytes() == data
    assert store.get(ref) == data
    assert store.data_uri(ref) == store.data_uri(ref)
    assert store.encodings == 2  # not cached: it would not fit
    assert store.memory_bytes == 0


def test_the_default_spill_dir_is_made_on_first_spill() -> None:
    store = MediaStore(max_memory_bytes=KIB)
    small = store.put(PNG, "image/png")
    assert store.spill_dir is None
    ref = store.put(blob(1), "audio/wav")
    spill_dir = store.spill_dir
    assert spill_dir is not None
    assert spill_dir.name.startswith("gymbus-media-")
    assert (spill_dir / ref.sha256).is_file()
    assert store.get(small) == PNG
    assert MediaStore(max_memory_bytes=0).put(PNG).sha256 == small.sha256
    assert (spill_dir / small.sha256).is_file()  # one directory per process


def test_a_lost_or_altered_spill_file_is_reported(tmp_path: Path) -> None:
    store = MediaStore(max_memory_bytes=0, spill_dir=tmp_path)
    ref = store.put(PNG, "image/png")
    path = tmp_path / ref.sha256
    path.write_bytes(PNG[:-1] + b"!")
    with pytest.raises(WireFormatError, match="does not hold it"):
        store.get(ref)
    path.unlink()
    with pytest.raises(WireFormatError, match="which is gone"):
        store.data_uri(ref)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="max_memory_bytes"):
        MediaStore(max_memory_bytes=-1)
    with pytest.raises(ConfigError, match="max_blob_bytes"):
        MediaStore(max_blob_bytes=0)


@pytest.mark.anyio
async def test_concurrent_tasks_see_consistent_blobs(tmp_path: Path) -> None:
    bound = 5 * (KIB + 44)
    store = MediaStore(max_memory_bytes=bound, spill_dir=tmp_path)
    datas = [blob(i) for i in range(20)]
    seen: dict[int, list[bytes]] = {}

    async def worker(i: int) -> None:
        ref = store.put(datas[i], "audio/wav")
        got = []
        for j in range(5):
            await anyio.lowlevel.checkpoint()
            got.append(store.get(ref))
            uri = store.data_uri(ref)
            got.append(base64.b64decode(uri.split(",", 1)[1]))
            assert store.memory_bytes <= bound, j
        seen[i] = got

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(worker, i)
    assert all(got == [datas[i]] * 10 for i, got in seen.items())
    assert len(store) == 20


def test_frames_are_stored_pngs_decoded_once() -> None:
    store = MediaStore()
    video = store.put(animated_bytes([(i * 12, 0, 0) for i in range(20)]), "image/gif")
    frames = store.frames(video, 8)
    assert len(frames) == 8
    assert all(f.mime_type == "image/png" and f in store for f in frames)
    assert store.frames(video, 8) is frames
    assert len(store.frames(video, 3)) == 3
    assert len(store) == 1 + 8 + 1  # 0 and 19 are shared with the 8; the 3rd is frame 9
