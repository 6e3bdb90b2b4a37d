"""HTTPClient against a real local server: retries, Retry-After, timeouts, errors, secrets."""

from __future__ import annotations

import os
import socket
import time
from email.utils import formatdate

import aiohttp
import pytest
import structlog

from gymbus.adapters import HTTPClient, OpenAIChat, RetryPolicy
from gymbus.adapters.http import _describe, parse_retry_after, safe_url
from gymbus.runtime.errors import (
    ConfigError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelResponseError,
)
from gymbus.runtime.messages import UserMessage
from tests.openai_server import Fault, OpenAIServer, request_for

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=1.0)
HELLO = request_for(UserMessage(content="hello"))


def chat(server: OpenAIServer, **kwargs: object) -> OpenAIChat:
    kwargs.setdefault("retry", FAST)
    return OpenAIChat("fake-model", base_url=server.base_url, api_key_env=None, **kwargs)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_429_honours_retry_after(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault.http(429, retry_after=0.05), Fault.http(429, retry_after=0.05))
    async with chat(openai_server) as model:
        start = time.perf_counter()
        reply = await model.generate(HELLO)
        elapsed = time.perf_counter() - start
    assert reply.text == "echo: hello"
    assert reply.generation is not None
    assert reply.generation.attempts == 3
    assert openai_server.count == 3
    assert elapsed >= 0.1 - 1e-3  # two Retry-After waits (asyncio may wake ~1 tick early)
    assert reply.generation.latency_s is not None
    assert reply.generation.latency_s >= 0.1 - 1e-3


async def test_500_then_success(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault.http(500), Fault.http(502), Fault.http(503))
    async with chat(openai_server) as model:
        reply = await model.generate(HELLO)
    assert reply.generation is not None
    assert reply.generation.attempts == 4


async def test_attempts_are_bounded(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(*[Fault.http(503)] * 10)
    async with chat(openai_server) as model:
        with pytest.raises(ModelHTTPError) as info:
            await model.generate(HELLO)
    assert openai_server.count == FAST.max_attempts
    error = info.value
    assert error.status == 503
    assert error.retryable
    assert "4 attempt(s)" in str(error)
    assert "/v1/chat/completions" in str(error)
    assert "injected 503" in str(error)


async def test_client_error_is_not_retried(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault.http(400, message="bad field 'x'" + "!" * 1000))
    async with chat(openai_server) as model:
        with pytest.raises(ModelHTTPError) as info:
            await model.generate(HELLO)
    assert openai_server.count == 1
    assert info.value.status == 400
    assert not info.value.retryable
    assert "bad field 'x'" in str(info.value)
    assert len(str(info.value)) < 500  # the server's message is truncated


async def test_malformed_json_is_a_response_error_not_retried(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault.malformed_json())
    async with chat(openai_server) as model:
        with pytest.raises(ModelResponseError, match="not JSON"):
            await model.generate(HELLO)
    assert openai_server.count == 1


async def test_slow_reply_times_out_and_is_retried(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault.slow(5.0), Fault.slow(5.0))
    policy = RetryPolicy(max_attempts=2, base_delay=0.001)
    async with chat(openai_server, retry=policy, timeout=0.05) as model:
        start = time.perf_counter()
        with pytest.raises(ModelError, match="timed out") as info:
            await model.generate(HELLO)
    assert time.perf_counter() - start < 2.0
    assert isinstance(info.value, ModelConnectionError)
    assert openai_server.count == 2


async def test_slow_then_fast_succeeds(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault.slow(5.0))
    async with chat(openai_server, timeout=0.3) as model:  # roomy: the retry must not time out
        reply = await model.generate(HELLO)
    assert reply.generation is not None
    assert reply.generation.attempts == 2


async def test_disconnect_is_retried(openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault.disconnect())
    async with chat(openai_server) as model:
        reply = await model.generate(HELLO)
    assert reply.text == "echo: hello"
    assert reply.generation is not None
    assert reply.generation.attempts == 2


async def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with OpenAIChat("m", base_url=url, api_key_env=None, retry=FAST) as model:
        with pytest.raises(ModelConnectionError) as info:
            await model.generate(HELLO)
    assert "4 attempt(s)" in str(info.value)
    assert "127.0.0.1" in str(info.value)


async def test_api_key_never_leaks(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-0123456789-SECRET"
    monkeypatch.setenv("GYMBUS_TEST_KEY", secret)
    # A server that echoes the credentials in its error message.
    openai_server.fail_next(
        Fault.http(503, message="overloaded; you sent {authorization}"),
        Fault.http(401, message="Incorrect API key provided: {authorization}"),
    )
    texts: list[str] = []
    with structlog.testing.capture_logs() as logs:
        async with OpenAIChat(
            "m", base_url=openai_server.base_url, api_key_env="GYMBUS_TEST_KEY", retry=FAST
        ) as model:
            texts += [repr(model), repr(model.client), repr(model._endpoint)]
            with pytest.raises(ModelHTTPError) as http_error:
                await model.generate(HELLO)
        url = f"http://127.0.0.1:{closed_port()}/v1?key={secret}"
        async with OpenAIChat(
            "m", base_url=url, api_key_env="GYMBUS_TEST_KEY", retry=FAST
        ) as offline:
            with pytest.raises(ModelConnectionError) as connection_error:
                await offline.generate(HELLO)
    assert openai_server.requests[0].headers["Authorization"] == f"Bearer {secret}"
    assert http_error.value.status == 401
    assert "Incorrect API key provided" in str(http_error.value)
    assert logs, "retries should have been logged"
    for error in (http_error.value, connection_error.value):
        texts += [str(error), repr(error), repr(error.args)]
    texts.append(repr(logs))
    for text in texts:
        assert secret not in text


async def test_client_lifecycle() -> None:
    client = HTTPClient()
    assert not client.is_open
    async with client:
        assert client.is_open
        session = client.session()
        assert client.session() is session
    assert not client.is_open
    assert session.closed


def test_retry_policy_backoff() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert policy.delay(1, retry_after=100.0) == 5.0
    assert policy.delay(1, retry_after=-3.0) == 0.0
    jittered = RetryPolicy(base_delay=1.0, jitter=0.5)
    assert all(0.5 <= jittered.delay(1) <= 1.0 for _ in range(100))
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(jitter=2.0)


def test_parse_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    later = parse_retry_after({"Retry-After": formatdate(time.time() + 60, usegmt=True)})
    assert later is not None
    assert 55 < later <= 61


def test_safe_url_drops_credentials_and_query() -> None:
    assert safe_url("https://u:p@host/v1/x?key=s#f") == "https://host/v1/x"


def test_causes_mask_url_query() -> None:
    url = "http://h/x?key=SECRET value"
    for shown in (url, "http://h/x?key=SECRET%20value"):
        text = _describe(aiohttp.InvalidURL(shown), None, url)
        assert "SECRET" not in text
        assert "InvalidURL" in text


def test_the_suite_refuses_model_urls_off_this_machine() -> None:
    from gymbus.adapters import OpenAIChat
    from gymbus.runtime.errors import ConfigError

    assert os.environ.get("GYMBUS_LOOPBACK_ONLY") == "1"
    with pytest.raises(ConfigError, match=r"not on 127\.0\.0\.1/localhost"):
        OpenAIChat("gpt-x")  # the default base URL is api.openai.com
    OpenAIChat("m", base_url="http://localhost:1/v1")  # loopback is fine
