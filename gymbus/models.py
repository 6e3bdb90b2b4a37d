"""Model specs from the command line or config: ``oracle``, ``null`` or ``openai:MODEL``."""

from __future__ import annotations

from typing import Literal

from gymbus.adapters import (
    HTTPClient,
    NullModel,
    OpenAIChat,
    OpenAIResponses,
    OracleModel,
    RetryPolicy,
)
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.model import Model

Api = Literal["chat", "responses"]
DEFAULT_BASE_URL = "https://api.openai.com/v1"


def make_model(
    spec: str,
    *,
    base_url: str | None = None,
    api: Api = "chat",
    api_key_env: str = "OPENAI_API_KEY",
    client: HTTPClient | None = None,
    retry: RetryPolicy | None = None,
    request_timeout: float | None = None,
) -> Model:
    """Build the model named by ``spec``. HTTP models share ``client``'s session."""
    if spec == "oracle":
        return OracleModel()
    if spec == "null":
        return NullModel()
    provider, _, name = spec.partition(":")
    if provider == "openai" and name:
        cls = OpenAIChat if api == "chat" else OpenAIResponses
        return cls(
            model=name,
            base_url=base_url or DEFAULT_BASE_URL,
            api_key_env=api_key_env,
            client=client,
            retry=retry,
            timeout=request_timeout,
        )
    raise ConfigError(
        f"unknown model {spec!r}: use 'oracle', 'null' or 'openai:MODEL' "
        "(any OpenAI-compatible server, with --base-url)"
    )
