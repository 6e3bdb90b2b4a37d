"""``async with`` for anything that has an ``aclose``: the one place the context-manager
boilerplate lives (environments, model adapters, HTTP clients, remote environments)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncClosing"]


class AsyncClosing:
    """Mixin: ``async with thing:`` returns ``thing`` and awaits ``thing.aclose()`` on the
    way out, whatever happened inside. Subclasses implement :meth:`aclose` (idempotent)
    and may extend :meth:`__aenter__` (e.g. to open a session first)."""

    __slots__ = ()

    async def aclose(self) -> None:
        """Release what the object holds (nothing by default)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
