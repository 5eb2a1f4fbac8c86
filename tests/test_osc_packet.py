"""The strict OSC reader and the writer, against python-osc's encoder and hand-made bytes."""

from __future__ import annotations

import math
import struct
import time

import pytest
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.control.packet import (IMMEDIATELY, PacketError, encode_bundle, encode_message,
                                   parse_datagram, parse_message)


def _python_osc(address: str, *typed: tuple[str, object]) -> bytes:
    builder = OscMessageBuilder(address)
    for tag, value in typed:
        builder.add_arg(value, tag)
    return builder.build().dgram


def test_reads_every_python_osc_type() -> None:
    data = _python_osc("/x", ("i", -5), ("h", 2**40), ("f", 0.5), ("d", 0.25), ("s", "héllo"),
                       ("b", b"\x01\x02\x03"), ("T", True), ("F", False), ("N", None),
                       ("m", (1, 2, 3, 4)))
    message = parse_message(data)
    assert message.address == "/x"
    assert message.args == (-5, 2**40, 0.5, 0.25, "héllo", b"\x01\x02\x03", True, False, None, (1, 2, 3, 4))


def test_reads_arrays_symbols_chars_and_infinity() -> None:
    raw = encode_message("/y", []).replace(b",\x00\x00\x00", b"")
    data = raw + b",[iS]cI\x00" + struct.pack(">i", 7) + b"sym\x00" + struct.pack(">I", ord("A"))
    message = parse_message(data)
    assert message.args == ([7, "sym"], "A", math.inf)


def test_writer_round_trips_through_python_osc_types() -> None:
    data = encode_message("/riff/get/seed_a", [4_000_000_000, 3, 0.5, "text", True])
    assert parse_message(data).args == (4_000_000_000, 3, 0.5, "text", 1)
    assert data == _python_osc("/riff/get/seed_a", ("h", 4_000_000_000), ("i", 3), ("f", 0.5),
                               ("s", "text"), ("i", 1))


def test_message_without_type_tags_has_no_arguments() -> None:
    assert parse_datagram(b"/riff/ping\x00\x00")[0].args == ()


@pytest.mark.parametrize("data, needle", [
    (b"", "empty"),
    (b"/abc", "NUL"),
    (b"/ab\x00\x00", "multiple of 4"),
    (b"abc\x00", "start with '/'"),
    (b"/a\x00\x00xyz\x00", "','"),
    (b"/a\x00\x00,i\x00\x00", "needs 4 bytes"),
    (b"/a\x00\x00,q\x00\x00", "unsupported type tag"),
    (b"/a\x00\x00,[\x00\x00", "'[' without ']'"),
    (b"/a\x00\x00,]\x00\x00", "']' without '['"),
    (b"/a\x00\x00,\x00\x00\x00\x00\x00\x00\x00", "after the last argument"),
    (b"/\xff\x00\x00", "UTF-8"),
    (b"/a\x00\x00,b\x00\x00\xff\xff\xff\xff", "negative blob"),
    (b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 6) + b"/a\x00\x00\x00\x00\x00\x00", "element size"),
    (b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 64) + b"/a\x00\x00", "needs 64 bytes"),
    (b"#bundle\x00\x00\x00\x00\x00", "needs 8 bytes"),
])
def test_malformed_datagrams_raise_packet_error(data: bytes, needle: str) -> None:
    with pytest.raises(PacketError) as info:
        parse_datagram(data)
    assert needle in str(info.value)


def test_deeply_nested_bundles_are_refused() -> None:
    data = encode_message("/riff/ping")
    for _ in range(12):
        data = encode_bundle(IMMEDIATELY, [data])
    with pytest.raises(PacketError, match="nested deeper"):
        parse_datagram(data)


def test_bundles_carry_timetags_and_nested_ones_never_run_earlier() -> None:
    later = time.time() + 10
    inner = encode_bundle(later - 5, [encode_message("/b")])
    data = encode_bundle(later, [encode_message("/a"), inner])
    first, second = parse_datagram(data)
    assert (first.address, second.address) == ("/a", "/b")
    assert first.timetag == pytest.approx(later, abs=1e-3)
    assert second.timetag == pytest.approx(later, abs=1e-3)


def test_python_osc_bundles_parse() -> None:
    builder = OscBundleBuilder(time.time() + 1)
    builder.add_content(OscMessageBuilder("/riff/set/alpha").build())
    messages = parse_datagram(builder.build().dgram)
    assert messages[0].address == "/riff/set/alpha" and messages[0].timetag > time.time()
