"""Shared fixtures. Part-specific fixtures live in their own modules, listed in pytest_plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

pytest_plugins: list[str] = ["engine_fixtures", "control_fixtures", "stall_watch"]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "riffusion"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The reference data folder ``../shared/riffusion`` (skips when absent)."""
    if not SHARED.is_dir():
        pytest.skip(f"reference data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def jack_server() -> Iterator["object"]:
    """A private jackd (dummy backend, 44.1 kHz, 256 frames) for the whole session, selected
    through JACK_DEFAULT_SERVER so jack.Client picks it up."""
    from live_fixtures import private_server

    yield from private_server(44100, 256)
