"""Environments whose tasks carry images, audio or video."""

from __future__ import annotations

from typing import Any

from gymbus.envs.base import Difficulty, Environment
from gymbus.runtime.media import MediaStore


class MediaEnvironment(Environment):
    """Puts its media into ``media`` — the process-wide store adapters inline from,
    unless another store is given (then the adapters must be given the same one)."""

    def __init__(
        self, *, difficulty: Difficulty = "medium", media: MediaStore | None = None, **options: Any
    ) -> None:
        super().__init__(difficulty=difficulty, **options)
        self.media = media if media is not None else MediaStore.shared()
