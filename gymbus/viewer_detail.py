"""One episode as the viewer's page receives it: the rollout line with long strings cut
to a head (fetched in slices on demand) and token arrays replaced by their lengths.

A 1M-token context is a 4 MB string; sending it whole would freeze the page, so every
string longer than :data:`LONG` characters becomes ``{"$truncated": true, "head": …,
"length": n, "path": …}``, where ``path`` locates the string from the rollout's root as
slash-joined keys and list indices, each escaped as in a JSON Pointer (RFC 6901: ``~0``
for ``~``, ``~1`` for ``/``). :func:`resolve` follows such a path back to the string.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gymbus.runtime.rollout import Rollout
from gymbus.runtime.sink import validation_problem

LONG = 4_000
"""Strings longer than this are truncated."""
HEAD = 2_000
"""Characters of a truncated string sent up front."""
TOKEN_ARRAYS = ("prompt_token_ids", "token_ids", "logprobs")


class PathError(LookupError):
    """A path that does not lead to a string of the rollout."""


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def shorten(value: Any, path: str = "") -> Any:
    """A copy of a parsed rollout fit for the page (see the module docstring)."""
    if isinstance(value, str):
        if len(value) <= LONG:
            return value
        return {"$truncated": True, "head": value[:HEAD], "length": len(value), "path": path}
    if isinstance(value, list):
        return [shorten(item, f"{path}/{i}" if path else str(i)) for i, item in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "generation" and isinstance(item, dict):
                item = {
                    k: {"$omitted": True, "length": len(v)}
                    if k in TOKEN_ARRAYS and isinstance(v, list)
                    else v
                    for k, v in item.items()
                }
            out[key] = shorten(item, f"{path}/{_escape(key)}" if path else _escape(key))
        return out
    return value


def resolve(data: Any, path: str) -> str:
    """The string at ``path`` (as written by :func:`shorten`)."""
    current = data
    for segment in path.split("/") if path else ():
        if isinstance(current, list):
            if not segment.isdigit() or int(segment) >= len(current):
                raise PathError(f"path {path!r}: no item {segment!r}")
            current = current[int(segment)]
        elif isinstance(current, dict):
            key = _unescape(segment)
            if key not in current:
                raise PathError(f"path {path!r}: no key {key!r}")
            current = current[key]
        else:
            raise PathError(f"path {path!r}: {segment!r} is below a value, not a list or object")
    if not isinstance(current, str):
        raise PathError(f"path {path!r}: not a string")
    return current


def schema_problem(data: Any) -> str | None:
    """Why the line is not a valid rollout (first field), or None when it is."""
    try:
        Rollout.model_validate(data)
    except ValidationError as exc:
        return validation_problem(exc)
    return None
