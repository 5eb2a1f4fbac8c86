#!/usr/bin/env python3
"""A small OSC client for riff-bridge (needs only python-osc: ``pip install python-osc``).

Examples::

    python examples/osc_client.py ping
    python examples/osc_client.py set prompt_a "deep house with a warm bassline"
    python examples/osc_client.py get alpha
    python examples/osc_client.py status
    python examples/osc_client.py listen alpha bar        # print changes and bar ticks (Ctrl-C)
    python examples/osc_client.py morph 8                 # sweep alpha 0 -> 1 over 8 seconds
    python examples/osc_client.py --at 2 set alpha 1      # a bundle timed 2 s from now
    python examples/osc_client.py preset load techno

Replies come back to this script's own socket, so no /riff/reply_port is needed.
"""

from __future__ import annotations

import argparse
import sys
import time

from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient


def value(text: str) -> int | float | str:
    """The OSC argument for a command-line word: int, float, else string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


#: Commands whose request is answered (the others are answered only when they fail).
ANSWERED = ("ping", "status", "get", "preset", "learn")


def replies(client: SimpleUDPClient, timeout: float, expected: bool, where: str = "riff-bridge") -> None:
    """Print replies until ``timeout`` seconds pass without one. Exit 1 after an error, and
    with a message when ``expected`` and nothing came back (riff-bridge not running?)."""
    failed, count = False, 0
    try:
        for message in client.get_messages(timeout):
            print(message.address, *message.params)
            failed |= message.address == "/riff/error"
            count += 1
    except (TimeoutError, OSError):
        pass
    if failed:
        sys.exit(1)
    if expected and count == 0:
        print(f"error: no reply from {where} within {timeout:g} s; is riff-bridge "
              "running and listening there (--host/--port)?", file=sys.stderr)
        sys.exit(1)


def send_at(client: SimpleUDPClient, delay: float, address: str, args: list) -> None:
    """Send ``address args`` in a bundle timed ``delay`` seconds from now."""
    message = OscMessageBuilder(address)
    for arg in args:
        message.add_arg(arg)
    bundle = OscBundleBuilder(time.time() + delay)
    bundle.add_content(message.build())
    client.send(bundle.build())


def morph(client: SimpleUDPClient, seconds: float, rate: float = 20.0) -> None:
    """Sweep alpha from 0 to 1 over ``seconds`` at ``rate`` messages per second."""
    steps = max(1, int(seconds * rate))
    for step in range(steps + 1):
        client.send_message("/riff/set/alpha", step / steps)
        time.sleep(1.0 / rate)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--at", type=float, default=0.0, help="send as a bundle this many seconds ahead")
    parser.add_argument("--wait", type=float, default=0.5, help="seconds to wait for replies")
    parser.add_argument("command", help="ping, status, get, set, listen, morph, preset, bank, seed, learn")
    parser.add_argument("args", nargs="*")
    args = parser.parse_args()
    client = SimpleUDPClient(args.host, args.port)
    command, rest = args.command, args.args
    if command == "listen":
        for name in rest:
            client.send_message(f"/riff/listen/{name}", [])
        replies(client, 3600.0, False)
        return 0
    if command == "morph":
        morph(client, float(rest[0]) if rest else 8.0)
        return 0
    address = {"ping": "/riff/ping", "status": "/riff/get/status", "get": f"/riff/get/{rest[0] if rest else 'all'}",
               "set": f"/riff/set/{rest[0] if rest else ''}", "preset": f"/riff/preset/{rest[0] if rest else 'list'}",
               "bank": "/riff/bank/trigger", "seed": "/riff/seed/new", "learn": "/riff/midi/learn"}.get(command)
    if address is None:
        parser.error(f"unknown command {command!r}")
    values = [value(v) for v in (rest[1:] if command in ("get", "set", "preset") else rest)]
    if args.at > 0:
        send_at(client, args.at, address, values)
    else:
        client.send_message(address, values)
    replies(client, args.wait + args.at + (30.0 if command == "learn" else 0.0), command in ANSWERED,
            f"{args.host}:{args.port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
