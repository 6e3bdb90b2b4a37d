from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.openai_server import OpenAIServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def openai_server() -> AsyncIterator[OpenAIServer]:
    """A fresh fake OpenAI server on 127.0.0.1 (see tests/openai_server.py)."""
    async with OpenAIServer() as server:
        yield server
