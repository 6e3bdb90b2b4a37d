"""The environment registry: one catalogue for built-in and third-party environments.

Every environment is found through the ``gymbus.envs`` entry-point group (the value is an
:class:`~gymbus.envs.base.Environment` subclass) or added with :func:`register`. Entry points
are loaded once, on first use. One that fails to import or to validate is logged as
``env.entry_point_failed``, kept in :func:`load_errors` and skipped; the others still load.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import structlog
from pydantic import ValidationError

from gymbus.envs.base import Environment
from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.errors import MetadataError, UnknownEnvironmentError

__all__ = [
    "ENTRY_POINT_GROUP",
    "EntryPointFailure",
    "EnvironmentRegistry",
    "available",
    "load",
    "load_errors",
    "register",
]

ENTRY_POINT_GROUP = "gymbus.envs"

_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class EntryPointFailure:
    """An entry point that could not be registered: its name, target, and why."""

    name: str
    value: str
    error: str


def _installed_entry_points() -> Iterable[EntryPoint]:
    return entry_points(group=ENTRY_POINT_GROUP)


def _describe_entry_point(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    where = f" (distribution {dist.name} {dist.version})" if dist is not None else ""
    return f"entry point {ep.name!r} = {ep.value!r}{where}"


def _describe_class(cls: type) -> str:
    return f"register({cls.__module__}.{cls.__qualname__})"


def validate_environment_class(cls: object) -> type[Environment]:
    """Check that ``cls`` is a concrete :class:`Environment` with a kebab-case ``name`` and
    valid :class:`EnvMetadata`; raise :class:`MetadataError` saying what is wrong."""
    if not (isinstance(cls, type) and issubclass(cls, Environment)):
        raise MetadataError(f"{cls!r} is not a subclass of gymbus.envs.Environment")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise MetadataError(
            f"environment class {cls.__qualname__}: name must be kebab-case "
            f"(like 'retail-orders'), got {name!r}"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise MetadataError(f"environment {name!r} is abstract (does not implement {missing})")
    metadata = getattr(cls, "metadata", None)
    if not isinstance(metadata, EnvMetadata):
        raise MetadataError(
            f"environment {name!r}: metadata must be an EnvMetadata, got {type(metadata).__name__}"
        )
    try:  # re-validate: an instance made with model_construct() skipped validation
        EnvMetadata.model_validate(metadata.model_dump())
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in err['loc']) or '(metadata)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise MetadataError(f"environment {name!r} has invalid metadata: {problems}") from None
    return cls


class EnvironmentRegistry:
    """Name → environment class. ``discover`` lists the entry points to load (the installed
    ``gymbus.envs`` group by default); it is called once, on first use."""

    def __init__(
        self, discover: Callable[[], Iterable[EntryPoint]] = _installed_entry_points
    ) -> None:
        self._discover = discover
        self._discovered = False
        self._classes: dict[str, type[Environment]] = {}
        self._origins: dict[str, str] = {}
        self._failures: list[EntryPointFailure] = []

    def available(self) -> dict[str, type[Environment]]:
        """All registered environments, by name (sorted)."""
        self._ensure_discovered()
        return dict(sorted(self._classes.items()))

    def load(self, name: str, **options: Any) -> Environment:
        """An instance of the environment called ``name``, built with ``options``."""
        classes = self.available()
        try:
            cls = classes[name]
        except KeyError:
            raise UnknownEnvironmentError(name, list(classes)) from None
        return cls(**options)

    def register(self, cls: type[Environment]) -> type[Environment]:
        """Add ``cls`` (usable as a class decorator). Raises :class:`MetadataError` when the
        class is invalid or its name is already taken by another class."""
        self._ensure_discovered()
        self._add(cls, _describe_class(cls))
        return cls

    def load_errors(self) -> tuple[EntryPointFailure, ...]:
        """Entry points that failed to import or validate, in discovery order."""
        self._ensure_discovered()
        return tuple(self._failures)

    def load_entry_points(self, eps: Iterable[EntryPoint]) -> None:
        """Load and register ``eps``; a failing one is logged, recorded and skipped."""
        for ep in eps:
            try:
                cls = ep.load()
                if isinstance(cls, type) and getattr(cls, "name", ep.name) != ep.name:
                    raise MetadataError(
                        f"entry point name {ep.name!r} does not match the environment's "
                        f"name {getattr(cls, 'name', None)!r}"
                    )
                self._add(cls, _describe_entry_point(ep))
            except Exception as exc:  # a broken plugin must not break the catalogue
                error = f"{type(exc).__name__}: {exc}"
                self._failures.append(EntryPointFailure(name=ep.name, value=ep.value, error=error))
                log.warning("env.entry_point_failed", name=ep.name, value=ep.value, error=error)

    def _ensure_discovered(self) -> None:
        if not self._discovered:
            self._discovered = True
            self.load_entry_points(self._discover())

    def _add(self, cls: object, origin: str) -> None:
        env_cls = validate_environment_class(cls)
        name = env_cls.name
        existing = self._classes.get(name)
        if existing is env_cls:
            return  # the same class announced twice (entry point and register()) is fine
        if existing is not None:
            raise MetadataError(
                f"environment name {name!r} is claimed twice: by {self._origins[name]} "
                f"and by {origin}"
            )
        self._classes[name] = env_cls
        self._origins[name] = origin


_default = EnvironmentRegistry()


def available() -> dict[str, type[Environment]]:
    """All environments installed (entry points) or registered, by name."""
    return _default.available()


def load(name: str, **options: Any) -> Environment:
    """Instantiate an environment by name: ``load("retail-orders", difficulty="hard")``.
    Raises :class:`~gymbus.runtime.errors.UnknownEnvironmentError` listing what exists."""
    return _default.load(name, **options)


def register(cls: type[Environment]) -> type[Environment]:
    """Register an environment class programmatically (also works as a decorator)."""
    return _default.register(cls)


def load_errors() -> tuple[EntryPointFailure, ...]:
    """Installed entry points that failed to load (each was logged and skipped)."""
    return _default.load_errors()
