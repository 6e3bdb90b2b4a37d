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
    """CLI tests configure structlog; give every test the library defaults back."""
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
