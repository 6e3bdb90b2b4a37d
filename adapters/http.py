"""The single network seam of the model adapters: one shared aiohttp session, retries.

Every adapter posts JSON through :class:`HTTPClient`. It retries 408/429/5xx answers,
connection failures and timeouts with jittered exponential backoff (honouring
``Retry-After``), and turns everything else into the :class:`ModelError` tree. Error
texts name the URL (without query or credentials), the status or cause and the attempts;
they never contain request headers, and the bearer token is scrubbed from server
messages.
"""

from __future__ import annotations

import email.utils
import io
import os
import random
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Self

import aiohttp
import anyio
import orjson
import structlog
from yarl import URL

from gymbus.runtime.closing import AsyncClosing
from gymbus.runtime.errors import (
    ConfigError,
    ModelConnectionError,
    ModelHTTPError,
    ModelResponseError,
)

__all__ = ["HTTPClient", "HTTPResult", "ModelEndpoint", "RetryPolicy"]

log = structlog.get_logger(__name__)

_ERROR_TEXT_LIMIT = 300
_QUERY = re.compile(r"\?[^\s'\"]*")
_RETRYABLE_EXCEPTIONS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a failed request.

    The n-th retry waits ``min(max_delay, base_delay * 2**(n-1))`` shortened by a random
    fraction up to ``jitter`` (so concurrent clients spread out), or what the server asked
    for in ``Retry-After`` / ``retry-after-ms``, capped at ``max_delay``.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    retry_statuses: frozenset[int] = field(
        default_factory=lambda: frozenset({408, 429, 500, 502, 503, 504})
    )

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError("retry delays must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return backoff * (1.0 - self.jitter * random.random())


class HTTPResult(NamedTuple):
    """A parsed JSON object, the attempts it took and the total wall time (retries
    and backoff included)."""

    data: dict[str, Any]
    attempts: int
    latency_s: float


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def safe_url(url: str) -> str:
    """``url`` without query, fragment or credentials: fit for error texts and logs."""
    try:
        parsed = URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (TypeError, ValueError):
        return url.split("?", 1)[0].split("#", 1)[0]


def _error_text(raw: bytes, secret: str | None) -> str:
    """The server's error message (from the usual JSON shapes, else the body), truncated
    and with ``secret`` masked."""
    text: str | None = None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = error.get("message", error.get("detail"))
            text = message if isinstance(message, str) else None
        elif isinstance(error, str):
            text = error
    if text is None:
        text = raw.decode("utf-8", "replace")
    text = " ".join(text.split())
    if secret:
        text = text.replace(secret, "***")
    if len(text) > _ERROR_TEXT_LIMIT:
        text = text[:_ERROR_TEXT_LIMIT] + "…"
    return text or "(empty body)"


def _bearer(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("Authorization")
    if not auth:
        return None
    return auth.partition(" ")[2] or auth


def _describe(exc: BaseException, timeout: float | None, url: str) -> str:
    """A cause for an error text; any query string of ``url`` (which may hold a key) that
    the exception's message repeats is masked."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout}s" if timeout is not None else "timed out"
    detail = str(exc) or type(exc).__name__
    query = url.partition("?")[2].partition("#")[0]
    if query:
        detail = _QUERY.sub("?***", detail.replace(query, "***"))
    return f"{type(exc).__name__}: {detail}"


class HTTPClient(AsyncClosing):
    """One pooled ``aiohttp.ClientSession`` shared by every adapter that uses it.

    Use as ``async with HTTPClient() as client`` or call :meth:`aclose`. The session is
    created on first use (inside the running event loop), so a client can be built
    before the loop starts.
    """

    __slots__ = ("_client_timeouts", "_limit", "_session", "retry", "timeout")

    def __init__(
        self,
        *,
        connector_limit: int = 1000,
        retry: RetryPolicy | None = None,
        timeout: float | None = 120.0,
    ) -> None:
        if connector_limit < 0:
            raise ConfigError(f"connector_limit must not be negative, got {connector_limit}")
        self._limit = connector_limit
        self._session: aiohttp.ClientSession | None = None
        self._client_timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self.retry = retry or RetryPolicy()
        self.timeout = timeout

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"HTTPClient(connector_limit={self._limit}, {state})"

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._session.closed

    def session(self) -> aiohttp.ClientSession:
        """The shared session (created on first use)."""
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0)
            session = self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, raise_for_status=False
            )
        return session

    async def __aenter__(self) -> Self:
        self.session()
        return self

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            with anyio.CancelScope(shield=True):
                await session.close()

    async def post_json(
        self,
        url: str,
        body: bytes | Sequence[bytes],
        headers: Mapping[str, str],
        *,
        retry: RetryPolicy | None = None,
        request_timeout: float | None = None,
    ) -> HTTPResult:
        """POST ``body`` (JSON bytes, or its chunks in order) and return the JSON object
        the server answered.

        Raises :class:`ModelHTTPError` (non-retryable status at once, retryable ones when
        attempts run out), :class:`ModelConnectionError` (connection failures and
        timeouts after the last attempt) or :class:`ModelResponseError` (a 2xx body that
        is not a JSON object; never retried).
        """
        policy = retry or self.retry
        seconds = self.timeout if request_timeout is None else request_timeout
        client_timeout = self._client_timeouts.get(seconds)
        if client_timeout is None:
            client_timeout = self._client_timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        session = self.session()
        start = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            status: int | None = None
            try:
                async with session.post(
                    url, data=_payload(body), headers=headers, timeout=client_timeout
                ) as response:
                    status = response.status
                    raw = await response.read()
                    if status in policy.retry_statuses:
                        retry_after = parse_retry_after(response.headers)
            except _RETRYABLE_EXCEPTIONS as exc:
                cause = _describe(exc, seconds, url)
                status = None
            except aiohttp.ClientError as exc:  # bad URL and the like: retrying won't help
                raise ModelConnectionError(
                    f"POST {safe_url(url)} failed: {_describe(exc, seconds, url)}"
                ) from None
            else:
                if 200 <= status < 300:
                    return HTTPResult(_parse_object(raw, url), attempt, time.perf_counter() - start)
                cause = f"HTTP {status}: {_error_text(raw, _bearer(headers))}"
                if status not in policy.retry_statuses:
                    raise ModelHTTPError(
                        f"POST {safe_url(url)} failed with {cause}", status=status, retryable=False
                    )
            if attempt >= policy.max_attempts:
                message = f"POST {safe_url(url)} failed after {attempt} attempt(s); last: {cause}"
                if status is not None:
                    raise ModelHTTPError(message, status=status, retryable=True)
                raise ModelConnectionError(message)
            delay = policy.delay(attempt, retry_after)
            log.debug(
                "model.http.retry",
                url=safe_url(url),
                attempt=attempt,
                cause=cause,
                delay_s=round(delay, 3),
            )
            await anyio.sleep(delay)


def _parse_object(raw: bytes, url: str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        snippet = raw[:80].decode("utf-8", "replace")
        raise ModelResponseError(
            f"POST {safe_url(url)} returned a body that is not JSON ({exc}): {snippet!r}"
        ) from None
    if not isinstance(data, dict):
        raise ModelResponseError(
            f"POST {safe_url(url)} returned JSON {type(data).__name__}, expected an object"
        )
    return data


_STREAM_ABOVE = 1 << 20
_CHUNK = 1 << 16


def _payload(body: bytes | Sequence[bytes]) -> bytes | io.BytesIO | AsyncIterator[bytes]:
    """What aiohttp sends for ``body`` (a fresh one per attempt: a stream is consumed).

    Bodies up to 1 MiB go as one bytes object. Larger ones (long-context prompts) are
    streamed, so writing them never blocks the event loop: one bytes object through a
    BytesIO (which shares its buffer), or a list of chunks — the adapters' per-message
    cached encodings — without concatenating them (small chunks are grouped).
    """
    if isinstance(body, bytes):
        return body if len(body) <= _STREAM_ABOVE else io.BytesIO(body)
    if sum(len(chunk) for chunk in body) <= _STREAM_ABOVE:
        return b"".join(body)
    return _stream(body)


async def _stream(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        if len(chunk) >= _CHUNK:
            if pending:
                yield b"".join(pending)
                pending, size = [], 0
            yield chunk
            continue
        pending.append(chunk)
        size += len(chunk)
        if size >= _CHUNK:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


LOOPBACK_ONLY_ENV = "GYMBUS_LOOPBACK_ONLY"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_loopback(url: str) -> None:
    """With ``GYMBUS_LOOPBACK_ONLY=1`` (the test suite sets it), refuse any model URL
    that is not on this machine — our equivalent of pydantic-ai's
    ``ALLOW_MODEL_REQUESTS = False``: a test can never reach a real provider."""
    if os.environ.get(LOOPBACK_ONLY_ENV) != "1":
        return
    host = URL(url).host
    if host not in _LOOPBACK_HOSTS:
        raise ConfigError(
            f"model URL {safe_url(url)!r} is not on 127.0.0.1/localhost and "
            f"{LOOPBACK_ONLY_ENV}=1 forbids other hosts"
        )


class ModelEndpoint:
    """One OpenAI-compatible URL with its credentials and the client that reaches it.

    The API key is read once from the environment variable ``api_key_env`` (skipped when
    unset, for local servers) and sent as ``Authorization: Bearer``; it is kept only in
    the request headers, which are never logged, shown in ``repr`` or put in errors.
    Closing the endpoint closes the client only if the endpoint created it.
    """

    __slots__ = ("_headers", "_owns_client", "client", "retry", "timeout", "url")

    def __init__(
        self,
        url: str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        client: HTTPClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        check_loopback(url)
        self.url = url
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._owns_client = client is None
        self.client = client if client is not None else HTTPClient()
        self.retry = retry
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ModelEndpoint({safe_url(self.url)!r})"

    async def post(
        self, body: bytes | Sequence[bytes], headers: Mapping[str, str] | None = None
    ) -> HTTPResult:
        """POST ``body``; ``headers`` are added to this request only."""
        merged = {**self._headers, **headers} if headers else self._headers
        return await self.client.post_json(
            self.url, body, merged, retry=self.retry, request_timeout=self.timeout
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
