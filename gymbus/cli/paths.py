"""Command-line arguments that name rollout files: files, or folders standing for the
``*.jsonl`` files below them (``gymbus view``, ``gymbus report``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

ROLLOUT_PATHS_HELP = "rollout JSONL files, or folders: every *.jsonl below them"


def rollout_files(paths: list[Path]) -> list[Path]:
    """The files to show: each file as given, each folder as the ``*.jsonl`` files below
    it (sorted, each once); a folder without any is bad input (exit 2)."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        inside = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
        if not inside:
            Console(stderr=True).print(
                f"[red]error:[/red] no *.jsonl file in the folder {path}", soft_wrap=True
            )
            raise typer.Exit(2)
        found.extend(inside)
    unique: dict[Path, Path] = {}  # the same file named twice is shown once
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())
