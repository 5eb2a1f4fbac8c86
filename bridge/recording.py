"""File naming for things a user keeps (recordings, renders): never overwrite, never lose."""

from __future__ import annotations

from pathlib import Path


def next_free_path(path: str | Path) -> Path:
    """``path`` if nothing is there, else ``stem-2.ext``, ``stem-3.ext``... (first free one)."""
    path = Path(path)
    if not path.exists():
        return path
    counter = 2
    while (candidate := path.with_name(f"{path.stem}-{counter}{path.suffix}")).exists():
        counter += 1
    return candidate
