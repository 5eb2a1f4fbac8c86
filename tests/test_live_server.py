"""The private JACK server that demos and benchmarks start when none runs."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from bridge.live.server import PRIVATE_PERIOD, ensure_server, server_running

pytestmark = pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd not installed")


def test_ensure_server_starts_a_private_server_at_jackds_default_period_and_restores_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import jack

    absent = f"absent-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", absent)
    assert not server_running()
    with ensure_server() as server:
        assert server is not None and os.environ["JACK_DEFAULT_SERVER"] == server.name
        client = jack.Client("period-probe", no_start_server=True, servername=server.name)
        try:
            assert (client.blocksize, client.samplerate) == (PRIVATE_PERIOD, 44100)
        finally:
            client.close()
    assert os.environ["JACK_DEFAULT_SERVER"] == absent
    assert not server_running(server.name)


def test_ensure_server_uses_a_running_server(jack_server: object) -> None:
    with ensure_server(period=PRIVATE_PERIOD) as server:
        assert server is None
