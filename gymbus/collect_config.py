"""``gymbus collect --config FILE.toml``: one validated model for a collection run.

Example::

    model = "openai:Qwen/Qwen3-8B"
    base_url = "http://127.0.0.1:8000/v1"
    n = 2000
    group_size = 4
    concurrency = 64
    out = "rollouts.jsonl"

    [sampling]
    temperature = 1.0
    logprobs = true
    return_token_ids = true

    [limits]
    max_turns = 16

    [envs.retail-orders]
    weight = 0.7
    difficulty = "hard"
    concurrency = 16          # at most 16 retail-orders episodes in flight

    [envs.records-needle]
    weight = 0.3
    context_tokens = 16000    # any other key is an option of the environment

Command-line options override the file. Errors name the file and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gymbus.runtime.errors import ConfigError
from gymbus.runtime.limits import Limits
from gymbus.runtime.model import SamplingParams


class EnvEntry(BaseModel):
    """One environment of the mix; unknown keys are passed to the environment."""

    model_config = ConfigDict(extra="allow", frozen=True)

    weight: float = Field(default=1.0, gt=0)
    concurrency: int | None = Field(default=None, ge=1)
    difficulty: Literal["easy", "medium", "hard"] = "medium"

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CollectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    envs: dict[str, EnvEntry] = Field(default_factory=dict)
    model: str = "oracle"
    base_url: str | None = None
    api: Literal["chat", "responses"] = "chat"
    api_key_env: str = "OPENAI_API_KEY"
    n: int = Field(default=100, ge=1)
    group_size: int = Field(default=1, ge=1)
    concurrency: int = Field(default=64, ge=1)
    model_concurrency: int | None = Field(default=None, ge=1)
    seed: int = 0
    out: Path | None = None
    max_attempts: int = Field(default=5, ge=1)
    request_timeout: float = Field(default=120.0, gt=0)
    sampling: SamplingParams = SamplingParams()
    limits: dict[str, Any] = Field(default_factory=dict)

    @field_validator("out")
    @classmethod
    def _openable(cls, out: Path | None) -> Path | None:
        if out is not None and "\x00" in str(out):
            raise ValueError("a file path cannot contain a NUL character")
        return out

    def limit_overrides(self) -> dict[str, Any]:
        unknown = set(self.limits) - set(Limits.model_fields)
        if unknown:
            raise ConfigError(
                f"unknown limit(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(Limits.model_fields)}"
            )
        Limits.model_validate(self.limits)
        return self.limits


def load_config(path: Path) -> CollectConfig:
    """Read and validate a collection config file."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    try:
        return CollectConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None


def parse_env_option(value: str) -> tuple[str, float]:
    """``NAME`` or ``NAME=WEIGHT`` from ``--env``."""
    name, sep, weight = value.partition("=")
    if not name:
        raise ConfigError(f"--env {value!r}: missing environment name")
    if not sep:
        return name, 1.0
    try:
        number = float(weight)
    except ValueError:
        raise ConfigError(f"--env {value!r}: weight {weight!r} is not a number") from None
    if not number > 0:
        raise ConfigError(f"--env {value!r}: weight must be positive")
    return name, number
