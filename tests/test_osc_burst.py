"""A burst of 5000 OSC messages paced at 1 ms is received whole, and every listener update arrives.

Measured figures are printed (run with ``-s``): send duration, server-side count, listener
count and how long after the last send the server had handled everything.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from control_fixtures import OscPeer, wait_until

from bridge.control.packet import encode_message

COUNT = 5000
PACE_S = 0.001


def _paced_send(peer: OscPeer, datagrams: list[bytes]) -> float:
    """Send each datagram at start + i * PACE_S; returns the send duration."""
    start = time.perf_counter()
    for index, data in enumerate(datagrams):
        delay = start + index * PACE_S - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        peer.send_raw(data)
    return time.perf_counter() - start


def _collect(listener: OscPeer, count: int, into: list[Any]) -> None:
    try:
        while len(into) < count:
            into.append(listener.recv(timeout=5.0))
    except OSError:
        return


def test_burst_of_5000_paced_messages_is_received_whole(surfaces: Any) -> None:
    sender, listener = OscPeer(surfaces.osc.address), OscPeer(surfaces.osc.address)
    listener.send("/riff/listen/alpha")
    assert listener.expect("/riff/get/alpha").args == (0.0,)
    values = [(i + 1) / COUNT for i in range(COUNT)]
    datagrams = [encode_message("/riff/set/alpha", [v]) for v in values]
    received: list[Any] = []
    reader = threading.Thread(target=_collect, args=(listener, COUNT, received))
    reader.start()
    before = surfaces.osc.stats.messages
    duration = _paced_send(sender, datagrams)
    sent_at = time.perf_counter()
    assert wait_until(lambda: surfaces.osc.stats.messages - before == COUNT, timeout=10)
    handled_after = time.perf_counter() - sent_at
    reader.join(10)
    handled = surfaces.osc.stats.messages - before
    print(f"\nburst: {COUNT} messages paced at {PACE_S * 1000:g} ms sent in {duration:.2f} s "
          f"({COUNT / duration:.0f}/s); server handled {handled}, listener got {len(received)}, "
          f"errors {surfaces.osc.stats.errors}; all handled {handled_after * 1000:.1f} ms after the last send")
    assert handled == COUNT
    assert surfaces.osc.stats.errors == 0
    assert len(received) == COUNT
    assert all(abs(m.args[0] - v) < 1e-6 for m, v in zip(received, values))  # in order, float32
    assert abs(surfaces.store.snapshot().alpha - 1.0) < 1e-6
    sender.close()
    listener.close()


def test_unpaced_burst_is_received_whole(surfaces: Any) -> None:
    sender = OscPeer(surfaces.osc.address)
    before = surfaces.osc.stats.messages
    started = time.perf_counter()
    for i in range(COUNT):
        sender.send("/riff/set/steps", 1 + i % 150)
    sent = time.perf_counter() - started
    assert wait_until(lambda: surfaces.osc.stats.messages - before == COUNT, timeout=10)
    total = time.perf_counter() - started
    print(f"\nunpaced burst: {COUNT} messages sent in {sent * 1000:.0f} ms, all {COUNT} handled "
          f"after {total * 1000:.0f} ms ({COUNT / total:.0f} messages/s)")
    assert surfaces.store.snapshot().steps == 1 + (COUNT - 1) % 150
    sender.close()
