"""Shared fixtures. Part-specific fixtures live in their own modules, listed in pytest_plugins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

pytest_plugins: list[str] = ["engine_fixtures", "control_fixtures"]

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
    """A private jackd (dummy backend, 44.1 kHz, 256 frames) for the whole session.

    Sets JACK_DEFAULT_SERVER for this process so jack.Client picks it up.
    """
    from bridge.live.server import JackServer, JackServerError

    server = JackServer(sample_rate=44100, period=256)
    try:
        server.start()
    except JackServerError as err:
        pytest.skip(str(err))
    old = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    yield server
    server.stop()
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
