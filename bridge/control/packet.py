"""OSC 1.0/1.1 datagrams: a strict, never-crashing reader and a small writer.

The reader turns any byte string into :class:`OscMessage` values or raises exactly one
exception type, :class:`PacketError`, whatever the input (truncated, misaligned, bad UTF-8,
unknown type tags, bundles nested too deep). It checks more than python-osc's parser does
(4-byte alignment, trailing bytes, bundle element sizes) so that every malformed datagram gets
an error reply instead of a half-applied bundle. Bundles are all-or-nothing: they are parsed
completely before any message in them is handled.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Callable

from pythonosc.parsing import osc_types

from bridge.errors import BridgeError

BUNDLE_TAG = b"#bundle\x00"
#: Timetag value meaning "now" (the NTP value 1, as python-osc reports it).
IMMEDIATELY = 0.0
MAX_BUNDLE_DEPTH = 8
MAX_ARRAY_DEPTH = 4


class PacketError(BridgeError):
    """A datagram that is not valid OSC; ``address`` is the OSC address when it was readable."""

    def __init__(self, address: str, problem: str) -> None:
        self.address = address
        self.problem = problem
        super().__init__(f"malformed packet: {problem}")


@dataclass(frozen=True)
class OscMessage:
    """One decoded message: ``timetag`` is seconds since the epoch, or IMMEDIATELY."""

    address: str
    args: tuple[Any, ...]
    timetag: float = IMMEDIATELY


class _Reader:
    """Cursor over a datagram; every read checks bounds and raises PacketError."""

    def __init__(self, data: bytes, address: str = "") -> None:
        self.data = data
        self.pos = 0
        self.address = address

    def fail(self, problem: str) -> PacketError:
        return PacketError(self.address, f"{problem} at byte {self.pos}")

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int) -> bytes:
        if size < 0 or size > self.remaining():
            raise self.fail(f"needs {size} bytes, {self.remaining()} left")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def string(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise self.fail("string without a terminating NUL")
        raw = self.data[self.pos:end]
        self.take(_padded(end + 1 - self.pos))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("string is not UTF-8") from None

    def blob(self) -> bytes:
        (size,) = struct.unpack(">i", self.take(4))
        if size < 0:
            raise self.fail(f"negative blob size {size}")
        value = self.take(size)
        self.take(_padded(size) - size)
        return value

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]


def _padded(size: int) -> int:
    """``size`` rounded up to a multiple of 4."""
    return (size + 3) & ~3


def _timetag(reader: _Reader) -> float:
    raw = reader.take(8)
    value, _ = osc_types.get_date(raw, 0)
    return IMMEDIATELY if value == osc_types.IMMEDIATELY else float(value)


_SCALARS: dict[str, Callable[[_Reader], Any]] = {
    "i": lambda r: r.unpack(">i"),
    "h": lambda r: r.unpack(">q"),
    "f": lambda r: r.unpack(">f"),
    "d": lambda r: r.unpack(">d"),
    "s": _Reader.string,
    "S": _Reader.string,
    "c": lambda r: chr(r.unpack(">I") & 0xFF),
    "b": _Reader.blob,
    "t": _timetag,
    "m": lambda r: tuple(r.take(4)),
    "r": lambda r: r.unpack(">I"),
    "T": lambda r: True,
    "F": lambda r: False,
    "N": lambda r: None,
    "I": lambda r: math.inf,
}


def _arguments(reader: _Reader, tags: str) -> tuple[Any, ...]:
    """The values for ``tags`` (without the comma); arrays become lists."""
    stack: list[list[Any]] = [[]]
    for tag in tags:
        if tag == "[":
            if len(stack) > MAX_ARRAY_DEPTH:
                raise reader.fail(f"arrays nested deeper than {MAX_ARRAY_DEPTH}")
            stack.append([])
        elif tag == "]":
            if len(stack) < 2:
                raise reader.fail("']' without '['")
            inner = stack.pop()
            stack[-1].append(inner)
        elif tag in _SCALARS:
            stack[-1].append(_SCALARS[tag](reader))
        else:
            raise reader.fail(f"unsupported type tag {tag!r}")
    if len(stack) != 1:
        raise reader.fail("'[' without ']'")
    return tuple(stack[0])


def parse_message(data: bytes, timetag: float = IMMEDIATELY) -> OscMessage:
    """One OSC message; raises PacketError (never anything else)."""
    reader = _Reader(data)
    address = reader.string()
    if not address.startswith("/"):
        raise PacketError("", f"address must start with '/', got {address[:60]!r}")
    reader.address = address
    if reader.remaining() == 0:
        return OscMessage(address, (), timetag)
    tags = reader.string()
    if not tags.startswith(","):
        raise reader.fail(f"type tag string must start with ',', got {tags[:20]!r}")
    args = _arguments(reader, tags[1:])
    if reader.remaining():
        raise reader.fail(f"{reader.remaining()} bytes after the last argument")
    return OscMessage(address, args, timetag)


def _parse_bundle(data: bytes, depth: int, outer: float) -> list[OscMessage]:
    if depth > MAX_BUNDLE_DEPTH:
        raise PacketError("#bundle", f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
    reader = _Reader(data, "#bundle")
    reader.take(len(BUNDLE_TAG))
    timetag = _timetag(reader)
    timetag = max(timetag, outer) if timetag != IMMEDIATELY else outer
    messages: list[OscMessage] = []
    while reader.remaining():
        size = reader.unpack(">i")
        if size <= 0 or size % 4:
            raise reader.fail(f"bundle element size {size} is not a positive multiple of 4")
        messages.extend(_parse_element(reader.take(size), depth + 1, timetag))
    return messages


def _parse_element(data: bytes, depth: int, timetag: float) -> list[OscMessage]:
    if data.startswith(BUNDLE_TAG):
        return _parse_bundle(data, depth, timetag)
    return [parse_message(data, timetag)]


def parse_datagram(data: bytes) -> list[OscMessage]:
    """All messages of a datagram (a message or a bundle), in order.

    Raises PacketError for anything malformed, including a length that is not a multiple
    of 4 and an empty datagram. Nested bundles never schedule earlier than their parent.
    """
    if not data:
        raise PacketError("", "empty datagram")
    if len(data) % 4:
        raise PacketError("", f"datagram length {len(data)} is not a multiple of 4")
    try:
        return _parse_element(data, 1, IMMEDIATELY)
    except PacketError:
        raise
    except Exception as err:  # noqa: BLE001 - the contract is "only PacketError escapes"
        raise PacketError("", f"unreadable ({type(err).__name__}: {err})") from None


def _string(value: str) -> bytes:
    raw = value.encode("utf-8").replace(b"\x00", b"")
    return raw + b"\x00" * (_padded(len(raw) + 1) - len(raw))


def _encode_arg(value: Any) -> tuple[str, bytes]:
    """Type tag and bytes for one value (bool as int 0/1, big ints as int64, bytes as blob, None as N)."""
    if value is None:
        return "N", b""
    if isinstance(value, (bytes, bytearray)):
        size = len(value)
        return "b", struct.pack(">i", size) + bytes(value) + b"\x00" * (_padded(size) - size)
    if isinstance(value, bool):
        return "i", struct.pack(">i", int(value))
    if isinstance(value, int):
        if -2**31 <= value < 2**31:
            return "i", struct.pack(">i", value)
        return "h", struct.pack(">q", value)
    if isinstance(value, float):
        return "f", struct.pack(">f", value)
    return "s", _string(str(value))


def encode_message(address: str, args: tuple[Any, ...] | list[Any] = ()) -> bytes:
    """An OSC message datagram: str -> s, int -> i (h beyond 32 bits), float -> f, bool -> i,
    bytes -> b, None -> N."""
    encoded = [_encode_arg(value) for value in args]
    tags = "," + "".join(tag for tag, _ in encoded)
    return _string(address) + _string(tags) + b"".join(raw for _, raw in encoded)


def encode_bundle(timetag: float, messages: list[bytes]) -> bytes:
    """A bundle of already-encoded messages at ``timetag`` (seconds since the epoch, 0 = now)."""
    body = b"".join(struct.pack(">i", len(m)) + m for m in messages)
    return BUNDLE_TAG + osc_types.write_date(timetag) + body
