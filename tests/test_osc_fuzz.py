"""Fuzz: thousands of malformed datagrams and wrong-typed messages.

Each datagram below is invalid by construction, so each must be answered by exactly one
``/riff/error``; afterwards the server still serves and every parameter kept its value.
"""

from __future__ import annotations

import random
import struct
import time
from typing import Any, Iterator

from control_fixtures import OscPeer, wrong_values

from bridge.control.packet import encode_bundle, encode_message
from bridge.state import PARAMETERS

VALID = [encode_message(f"/riff/set/{name}", [value]) for name, value in
         (("alpha", 0.5), ("prompt_a", "a prompt"), ("seed_a", 12), ("mute", 1), ("quantize", "bar"))]


def random_bytes(rng: random.Random) -> bytes:
    """Noise that does not start like a message or a bundle."""
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 160)))
    return b"x" + data if data[:1] in (b"/", b"#") else data


def misaligned(rng: random.Random) -> bytes:
    """A valid message cut or padded to a length that is not a multiple of 4."""
    data = rng.choice(VALID)
    if rng.random() < 0.5:
        return data[: rng.choice([n for n in range(1, len(data)) if n % 4])]
    return data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))


def corrupted(rng: random.Random) -> bytes:
    """Aligned messages with a broken type tag, blob size or string terminator."""
    kind = rng.randrange(4)
    if kind == 0:
        tag = rng.choice("qzxeg!?@")
        return encode_message("/riff/set/alpha", [0.5]).replace(b",f", b"," + tag.encode())
    if kind == 1:
        size = rng.choice([-1, -2**31, 2**31 - 1, 1000])
        return encode_message("/riff/set/prompt_a", [b"abcd"]).replace(struct.pack(">i", 4), struct.pack(">i", size))
    if kind == 2:
        return b"/riff/set/alpha\x00" + b",ff\x00" + struct.pack(">f", 0.5)  # second float missing
    return b"/riff" + bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 40) * 4 - 1))


def broken_bundle(rng: random.Random) -> bytes:
    """Bundles with a bad element size, a malformed element or too much nesting."""
    kind = rng.randrange(3)
    if kind == 0:
        good = encode_message("/riff/set/alpha", [0.9])
        return b"#bundle\x00" + b"\x00" * 7 + b"\x01" + struct.pack(">i", len(good) + 4) + good
    if kind == 1:
        return encode_bundle(0, [encode_message("/riff/set/alpha", [0.9]), b"/riff/set/alpha\x00,f\x00"[:-2] + b"\x00\x00"])
    data = encode_message("/riff/set/alpha", [0.9])
    for _ in range(rng.randrange(9, 14)):
        data = encode_bundle(0, [data])
    return data


def wrong_typed(rng: random.Random) -> bytes:
    """Well-formed messages with wrong types, values, argument counts or addresses."""
    name = rng.choice(list(PARAMETERS))
    kind = rng.randrange(5)
    if kind == 0:
        return encode_message(f"/riff/set/{name}", [rng.choice(wrong_values(name))])
    if kind == 1:
        return encode_message(f"/riff/set/{name}", [])
    if kind == 2:
        return encode_message(f"/riff/set/{name}", [1, 2][: rng.randrange(2) + 1] * 2)
    if kind == 3:
        return encode_message(f"/riff/get/{name}", [rng.randrange(10)])
    return encode_message(f"/riff/{rng.choice(['sett', 'gett', 'set'])}/{name}x", [1])


GENERATORS = [random_bytes, misaligned, corrupted, broken_bundle, wrong_typed]


def datagrams(count: int, seed: int = 20240605) -> Iterator[bytes]:
    rng = random.Random(seed)
    for index in range(count):
        yield GENERATORS[index % len(GENERATORS)](rng)


def test_fuzz_every_datagram_gets_one_error_and_state_survives(surfaces: Any, peer: OscPeer) -> None:
    for name in ("alpha", "prompt_a", "seed_b", "mute"):
        surfaces.store.set(name, {"alpha": 0.25, "prompt_a": "kept", "seed_b": 99, "mute": True}[name])
    before = surfaces.store.snapshot()
    sent = 0
    started = time.monotonic()
    for data in datagrams(5000):
        peer.send_raw(data)
        sent += 1
        reply = peer.recv(timeout=2.0)
        assert reply.address == "/riff/error", (data, reply)
    assert peer.drain(0.2) == [], "more than one reply to some datagram"
    elapsed = time.monotonic() - started
    assert surfaces.osc._thread.is_alive()
    assert surfaces.osc.stats.datagrams == sent
    assert surfaces.osc.stats.errors == sent
    assert surfaces.store.snapshot() == before
    peer.send("/riff/ping")
    peer.expect("/riff/pong")
    peer.send("/riff/set/alpha", 0.5)
    peer.send("/riff/get/alpha")
    assert peer.expect("/riff/get/alpha").args == (0.5,)
    print(f"\nfuzz: {sent} invalid datagrams, {sent} errors, {elapsed:.2f} s")


def test_fuzz_unpaced_flood_keeps_the_server_up(surfaces: Any, peer: OscPeer) -> None:
    before = surfaces.store.snapshot()
    for data in datagrams(3000, seed=7):
        peer.send_raw(data)
    errors = [m for m in peer.drain(0.5) if m.address == "/riff/error"]
    assert surfaces.osc.stats.datagrams == 3000
    assert len(errors) == 3000
    assert surfaces.store.snapshot() == before
    peer.send("/riff/ping")
    peer.expect("/riff/pong")
