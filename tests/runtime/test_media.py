from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gymbus.runtime.errors import WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import MediaRef


def test_put_returns_a_content_address_and_dedupes() -> None:
    store = MediaStore()
    ref = store.put(b"png bytes", "image/png")
    assert ref == MediaRef(
        sha256=hashlib.sha256(b"png bytes").hexdigest(), mime_type="image/png", size=9
    )
    again = store.put(b"png " + b"bytes", "image/png")
    assert again == ref
    assert len(store) == 1
    assert store.get(ref) == b"png bytes"
    assert ref in store


def test_same_bytes_under_another_type_share_the_blob() -> None:
    store = MediaStore()
    a = store.put(b"x", "image/png")
    b = store.put(b"x", "application/octet-stream")
    assert a.sha256 == b.sha256
    assert a != b
    assert len(store) == 1
    assert store.data_uri(a).startswith("data:image/png;base64,")
    assert store.data_uri(b).startswith("data:application/octet-stream;base64,")


def test_get_of_a_missing_blob_names_the_sha() -> None:
    other = MediaStore().put(b"elsewhere", "image/png")
    store = MediaStore()
    assert other not in store
    with pytest.raises(WireFormatError, match=other.sha256):
        store.get(other)
    with pytest.raises(WireFormatError, match=other.sha256):
        store.data_uri(other)


def test_encodings_are_computed_once() -> None:
    store = MediaStore()
    ref = store.put(b"\x00\x01\x02" * 100, "audio/wav")
    uri = store.data_uri(ref)
    assert uri == "data:audio/wav;base64," + base64.b64encode(b"\x00\x01\x02" * 100).decode()
    assert store.data_uri(ref) is uri
    b64 = store.base64(ref)
    assert store.base64(ref) is b64
    assert uri.endswith(b64)


@pytest.mark.parametrize("mime", ["png", "", "image/png; charset=x", "image/png,x", "/png"])
def test_put_rejects_a_malformed_media_type(mime: str) -> None:
    with pytest.raises(WireFormatError, match="type/subtype"):
        MediaStore().put(b"x", mime)


def test_put_data_uri() -> None:
    store = MediaStore()
    ref = store.put_data_uri("data:image/png;base64,aGVsbG8=")
    assert ref.mime_type == "image/png"
    assert store.get(ref) == b"hello"
    assert store.data_uri(ref) == "data:image/png;base64,aGVsbG8="


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


@settings(max_examples=200)
@given(st.binary(max_size=256), st.sampled_from(["image/png", "audio/wav", "video/mp4"]))
def test_data_uri_round_trip(data: bytes, mime: str) -> None:
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
    ref = store.put(b"\x89PNG shared", "image/png")
    adapter = OpenAIChat("m", base_url="http://127.0.0.1:9/v1")
    assert adapter.media is store
    assert adapter.media.get(ref) == b"\x89PNG shared"
