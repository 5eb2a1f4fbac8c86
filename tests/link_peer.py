"""A Link peer in its own process, as a live coder's tool would be: ``python link_peer.py BPM``.

Independent of riff-bridge (it imports only ``link``). It answers one JSON line on stdout for
each command line on stdin:

- ``status``: ``{"peers", "tempo", "playing", "micros"}``;
- ``bars N``: its own bar lines (quantum 4): ``{"micros", "tempo", "bar_times": [...]}``, the
  host times (Link clock, microseconds) of the N bar lines before and after now;
- ``tempo BPM``: sets the tempo now (mid-bar, as a live coder's ``setcps`` does), commits it,
  ``{"micros": time of the change, "tempo"}``;
- ``quit``.
"""

from __future__ import annotations

import json
import math
import sys

import link

QUANTUM = 4.0


def bar_times(session: "link.Link", count: int) -> dict[str, object]:
    """The host times of the ``count`` bar lines either side of now, on the current timeline."""
    now = session.clock().micros()
    state = session.captureAppSessionState()
    bar = math.floor(state.beatAtTime(now, QUANTUM) / QUANTUM)
    times = [state.timeAtBeat(b * QUANTUM, QUANTUM) for b in range(bar - count, bar + count + 1)]
    return {"micros": now, "tempo": state.tempo(), "bar_times": times}


def answer(session: "link.Link", words: list[str]) -> dict[str, object]:
    """One command's reply."""
    if words[0] == "status":
        state = session.captureAppSessionState()
        return {"peers": session.numPeers(), "tempo": state.tempo(), "playing": state.isPlaying(),
                "micros": session.clock().micros()}
    if words[0] == "bars":
        return bar_times(session, int(words[1]))
    if words[0] == "tempo":
        state = session.captureAppSessionState()
        now = session.clock().micros()
        state.setTempo(float(words[1]), now)
        session.commitAppSessionState(state)
        return {"micros": now, "tempo": float(words[1])}
    return {"error": f"unknown command {words[0]!r}"}


def main() -> None:
    session = link.Link(float(sys.argv[1]))
    session.enabled = True
    print(json.dumps({"ready": True, "micros": session.clock().micros()}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        print(json.dumps(answer(session, words)), flush=True)
    session.enabled = False


if __name__ == "__main__":
    main()
