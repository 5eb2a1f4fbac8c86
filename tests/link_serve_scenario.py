"""``riff-bridge serve --link`` against a Link peer, run inside a private network namespace by
tests/test_link_netns.py (never on a host network: Link announces itself by multicast).

It starts a private jackd, a Link peer process (tests/link_peer.py, 97 BPM, 4 beats per bar),
then the session exactly as ``riff-bridge serve --link --timebase-master --model fake --bars 1``
builds it (the serve command's own functions, in this process, so the live engine's clip
starts can be read), with its outputs connected to system:playback, and:

1. follows the peer for a few bars;
2. the peer changes tempo in the middle of a bar (131 BPM);
3. riff-bridge's tempo is set over OSC (/riff/set/bpm 88.5), the peer is watched, and a few
   more bars are played.

It logs every JACK cycle (frame counter and time, as the cycle runs), the live engine's clip
starts (JACK frames), the peer's bar lines (Link host time) and ``/riff/get/status``, and
prints them as one JSON object (last stdout line); the test checks.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from link_scenario import (CHANGED_BPM, OSC_BPM, PEER_BPM, CycleLog, Peer, main, osc_set, osc_status,
                           sleep_to_mid_bar, wait)


def serve_args(presets: str) -> Any:
    """The serve command's options, parsed by riff-bridge's own parser."""
    from bridge.cli import build_parser

    return build_parser().parse_args([
        "serve", "--model", "fake", "--in-process", "--bars", "1", "--bpm", "120", "--link",
        "--timebase-master", "--osc-port", "0", "--midi", "none", "--presets-dir", presets,
        "--connect", "system:playback_1", "system:playback_2", "--status-every", "0"])


def run_for(session: Any, link: Any, seconds: float) -> None:
    """The serve loop (session and Link ticks) for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.tick()
        link.tick()
        time.sleep(0.05)


def clip_starts(session: Any, since: int) -> list[dict[str, Any]]:
    """The live engine's loop starts from JACK frame ``since`` on."""
    return [{"jack_frame": b.jack_frame, "bar": b.bar, "new": b.new, "into": b.into}
            for b in session.live.boundaries() if b.jack_frame >= since]


def run(out: dict[str, Any]) -> None:
    from bridge.commands import serve
    from bridge.live.jacktime import JackClock
    from bridge.live.server import JackServer
    from bridge.session import Session

    out["interfaces"] = [name for _, name in __import__("socket").if_nameindex()]
    with JackServer(period=256) as server, tempfile.TemporaryDirectory() as presets:
        os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
        peer = Peer(PEER_BPM)
        time.sleep(2.0)  # the peer's session is the older one: riff-bridge joins it
        args = serve_args(presets)
        session = Session(serve._parts(args))
        session.parts.surfaces = serve._surfaces(args, session)
        with session:
            link = serve._start_link(args, session)
            try:
                play(out, session, link, peer, JackClock(session.parts.output.client))
            finally:
                link.stop()
        peer.close()
        out["jack_xruns"] = server.xrun_causes()


def play(out: dict[str, Any], session: Any, link: Any, peer: Peer, clock: Any) -> None:
    """The three phases (module docstring), logging JACK's cycles meanwhile."""
    cycles = CycleLog(clock).start()
    try:
        phases(out, session, link, peer, clock)
    finally:
        out["cycles"] = cycles.dump()  # before the client closes
        out["cycle_log"] = cycles.report()


def phases(out: dict[str, Any], session: Any, link: Any, peer: Peer, clock: Any) -> None:
    port = session.parts.surfaces.osc.address[1]
    out["joined"] = wait(lambda: link.status().get("link_peers") == 1
                         and abs(link.status().get("link_bpm", 0) - PEER_BPM) < 1e-3, 10)
    out["latency_frames"] = link.source.last.latency_frames if link.source.last else -1
    out["block"] = session.parts.output.block_size
    run_for(session, link, 2 * 4 * 60 / PEER_BPM)  # loops refitted to the peer's tempo
    out["status_osc"] = osc_status(port)
    start = clock.cycle().frames
    run_for(session, link, 5 * 4 * 60 / PEER_BPM)
    out["follow"] = {"starts": clip_starts(session, start), "peer": peer.ask("bars 10")}
    sleep_to_mid_bar(peer)
    change = peer.ask(f"tempo {CHANGED_BPM}")
    start = clock.cycle().frames
    run_for(session, link, 5 * 4 * 60 / CHANGED_BPM)
    out["change"] = {"at": change["micros"], "starts": clip_starts(session, start), "peer": peer.ask("bars 10")}
    sent = clock.now_usecs()
    osc_set(port, "bpm", OSC_BPM)
    deadline = time.monotonic() + 2 * 4 * 60 / CHANGED_BPM + 2
    while abs(peer.ask("status")["tempo"] - OSC_BPM) > 1e-3 and time.monotonic() < deadline:
        run_for(session, link, 0.05)
    out["osc_tempo"] = {"sent": sent, "seen": abs(peer.ask("status")["tempo"] - OSC_BPM) < 1e-3,
                        "seen_after_s": (clock.now_usecs() - sent) / 1e6, "before": out["change"]["peer"]}
    start = clock.cycle().frames
    run_for(session, link, 3 * 4 * 60 / OSC_BPM)
    out["osc_tempo"].update(after=peer.ask("bars 10"), starts=clip_starts(session, start))
    out["metrics"] = session.live.metrics().as_dict()


if __name__ == "__main__":
    sys.exit(main(run))
