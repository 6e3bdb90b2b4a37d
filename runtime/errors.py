"""The gymbus error tree — the one place that says what can go wrong and whose fault it is.

::

    GymbusError
    ├── InfraError            infrastructure failed: recorded as a failure of its kind,
    │   │                     never scored (an episode that hit one has reward null)
    │   ├── ModelError                 kind "model"    server unreachable, 5xx/429 after
    │   │   │                                          retries, malformed response
    │   │   ├── ModelHTTPError         (carries the HTTP status)
    │   │   ├── ModelConnectionError
    │   │   └── ModelResponseError     (the body is not a valid completion)
    │   ├── ToolError                  kind "tool"     a tool crashed or timed out
    │   │   └── SandboxError           (envs.sandbox) the sandbox itself could not run
    │   ├── UserSimulatorError         kind "user"     the simulated user failed
    │   ├── VerifierError              kind "verifier" a verifier raised
    │   ├── EpisodeTimeoutError        kind "timeout"  the per-episode deadline passed
    │   └── EpisodeCancelledError      kind "cancelled"
    ├── PolicyError           the policy (model) did something invalid: reported back to
    │   │                     the model as an error tool message; the episode continues
    │   ├── ToolArgumentsError         arguments are not JSON / violate the tool's schema
    │   ├── UnknownToolError           no tool of that name
    │   └── ToolInputError             raised by a tool that rejects its input
    └── InputError            bad input from the person running gymbus
        ├── BadTaskError               kind "bad_task" (an environment could not build a task)
        ├── ConfigError                bad option, file or value
        ├── UnknownEnvironmentError
        ├── MetadataError              environment metadata invalid
        ├── WireFormatError            a message cannot be written in a wire format
        └── BadMediaError              media bytes empty, too large, corrupt or not of
                                       their declared type

Error messages never contain secrets: adapters pass URLs and statuses, not headers.
An error raised inside a task group (``async with Runtime(...)``) comes out wrapped in an
exception group; :func:`leaf_errors` unwraps it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

FailureKind = Literal["model", "tool", "user", "verifier", "timeout", "cancelled", "bad_task"]
FAILURE_KINDS: tuple[FailureKind, ...] = (
    "model",
    "tool",
    "user",
    "verifier",
    "timeout",
    "cancelled",
    "bad_task",
)


def leaf_errors(error: BaseException) -> list[BaseException]:
    """The exceptions in ``error``: itself, or those of an exception group, flattened."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_errors(inner)]
    return [error]


class GymbusError(Exception):
    """Base of every error gymbus raises on purpose."""


class InfraError(GymbusError):
    """Infrastructure failure; the episode is recorded as failed with :attr:`kind`."""

    kind: ClassVar[FailureKind] = "model"


class ModelError(InfraError):
    kind = "model"


class ModelHTTPError(ModelError):
    def __init__(self, message: str, *, status: int, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class ModelConnectionError(ModelError):
    pass


class ModelResponseError(ModelError):
    pass


class ToolError(InfraError):
    kind = "tool"


class UserSimulatorError(InfraError):
    kind = "user"


class VerifierError(InfraError):
    kind = "verifier"


class EpisodeTimeoutError(InfraError):
    kind = "timeout"


class EpisodeCancelledError(InfraError):
    kind = "cancelled"


class PolicyError(GymbusError):
    """The policy's mistake; becomes an error tool message the model can react to."""


class ToolArgumentsError(PolicyError):
    pass


class UnknownToolError(PolicyError):
    pass


class ToolInputError(PolicyError):
    """Raise from a tool when the model's input is wrong (unknown id, bad value)."""


class InputError(GymbusError):
    """Bad input from the user of gymbus (file, option, environment definition)."""


class BadTaskError(InputError):
    kind: ClassVar[FailureKind] = "bad_task"


class ConfigError(InputError):
    pass


class UnknownEnvironmentError(InputError):
    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(
            f"unknown environment {name!r}; available: {', '.join(sorted(available)) or '(none)'}"
        )
        self.name = name
        self.available = sorted(available)


class MetadataError(InputError):
    pass


class WireFormatError(InputError):
    pass


class BadMediaError(InputError):
    """Media given to a :class:`~gymbus.runtime.media.MediaStore` that it will not store."""
