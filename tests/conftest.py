from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog

from tests.openai_server import OpenAIServer

# No test may reach a real model provider: adapters refuse non-loopback URLs (this also
# reaches the `gymbus` subprocesses the CLI tests start, through the environment).
os.environ["GYMBUS_LOOPBACK_ONLY"] = "1"


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Every test starts from structlog's own defaults (all levels, so capture_logs sees
    debug events): importing gymbus and the CLI tests configure it."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def openai_server() -> AsyncIterator[OpenAIServer]:
    """A fresh fake OpenAI server on 127.0.0.1 (see tests/openai_server.py)."""
    async with OpenAIServer() as server:
        yield server
