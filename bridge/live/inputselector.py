"""Which input loop the next clip restyles (``source = input``), and why none when none.

The generation worker asks :meth:`InputSelector.choose` for the input loop that ends on the
current loop boundary (the bar the playing loop started on; with nothing playing, the newest
bar line that ends a phrase: loops are locked to the grid's phrases, bar k of an N-bar loop
on bars k mod N, so each input loop is one of the band's N-bar phrases). It gets a :class:`~bridge.engine.seedaudio.SeedAudio` of the ``bars`` bars before
that boundary, or None, with the reason kept in :meth:`InputSelector.status`:

- ``waiting``: that loop has not been captured yet (no bar line yet, a gap in the capture,
  a relocation in the middle of it). Right at a boundary the player is on the new bar a few
  blocks before the monitor brings its bar line; that moment keeps the status it had;
- ``silent``: its RMS level is below ``threshold_db`` (default :data:`SILENCE_DB`); it is
  not restyled and the loop playing now keeps playing;
- ``ready``: it is being restyled.

The clip made from a loop that ended on bar E starts on a later loop boundary S; the
latency ``(S - E) / bars`` is 1 when generation takes less than a loop (the clip plays in
the loop right after the one during which it was made) and 2 when it takes longer. The first
clip from silence starts on the next bar line after its input loop: less than a loop, shown as 1.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

from bridge.engine.seedaudio import SeedAudio
from bridge.live.inputloop import FLOOR_DB, InputLoop, InputPending, InputRecorder, InputUnavailable

#: Input loops quieter than this RMS level (dBFS, both channels) are not restyled.
SILENCE_DB = -50.0
#: Loops remembered for latency accounting.
REMEMBERED = 16


@dataclass(frozen=True)
class InputStatus:
    """The input side at a glance (immutable; replaced whole).

    ``state``: off, waiting, silent or ready; ``detail``: the reason in words; ``loop_db``:
    RMS of the newest input loop looked at; ``loop_end_bar``: the bar it ended on;
    ``latency_loops``: loops between the end of the input loop playing now (restyled) and
    the start of its clip (-1 before the first); ``restyled``/``skipped``: input loops
    restyled / skipped as silent so far.
    """

    state: str = "off"
    detail: str = "source is prompt"
    loop_db: float = FLOOR_DB
    loop_end_bar: int = -1
    latency_loops: int = -1
    restyled: int = 0
    skipped: int = 0


class InputSelector:
    """Picks the input loop to restyle from an :class:`InputRecorder` (module docstring)."""

    def __init__(self, recorder: InputRecorder, threshold_db: float = SILENCE_DB) -> None:
        self.recorder = recorder
        self.threshold_db = threshold_db
        self._status = InputStatus(state="waiting", detail="no input loop yet")
        self._ends: OrderedDict[str, int] = OrderedDict()
        self._skipped_keys: OrderedDict[str, None] = OrderedDict()
        self._chosen: SeedAudio | None = None
        self._silent: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def status(self) -> InputStatus:
        """The newest status (any thread)."""
        return self._status

    def level_db(self) -> float:
        """The input's running RMS level in dBFS (about the last 0.3 s)."""
        return self.recorder.meter.rms_db()

    def choose(self, boundary: int | None, bars: int) -> SeedAudio | None:
        """The seed for a clip starting after loop boundary ``boundary`` (None: the newest bar
        line): the ``bars`` bars before it, or None (see :meth:`status` for why)."""
        with self._lock:
            end = boundary if boundary is not None else self._newest_phrase_end(bars)
            if end is None:
                return self._update(None, state="waiting", detail="no bar line yet (is the transport rolling?)")
            self._reserve(bars)
            chosen = self._chosen
            if chosen is not None and self._ends.get(chosen.key) == end and chosen.key.endswith(f"/{bars}"):
                return chosen
            if self._silent == (end, bars):
                return None
            try:
                loop = self.recorder.loop(end, bars)
            except InputPending:
                return None  # the boundary's bar line is a few blocks away: the status stands
            except InputUnavailable as err:
                return self._update(None, state="waiting", detail=f"input loop ending on bar {end}: {err}")
            return self._judge(loop)

    def observe(self, seed: SeedAudio | None, loop_start_bar: int | None) -> None:
        """The player started a loop on ``loop_start_bar`` made from ``seed``: note the latency."""
        if seed is None or loop_start_bar is None:
            return
        end = self._ends.get(seed.key)
        bars = int(seed.key.rsplit("/", 1)[1]) if "/" in seed.key else 0
        if end is not None and bars > 0:
            # whole loops, rounded up; a first clip that joined in the middle of the phrase
            # after its input loop (loop_start_bar == end) is less than a loop late: shown as 1
            latency = max(1, -(-(loop_start_bar - end) // bars))
            if latency != self._status.latency_loops:
                self._status = replace(self._status, latency_loops=latency)

    def off(self) -> None:
        """Source is prompt: say so in the status (counters kept)."""
        if self._status.state != "off":
            self._status = replace(self._status, state="off", detail="source is prompt")

    def _newest_phrase_end(self, bars: int) -> int | None:
        """The newest bar line that ends a phrase of ``bars`` bars (a multiple of ``bars``: the
        core locks loops to those phrases), None before the first bar line."""
        line = self.recorder.latest_bar()
        return int(line.bar) // bars * bars if line is not None else None

    def _reserve(self, bars: int) -> None:
        line = self.recorder.latest_bar()
        if line is not None:
            self.recorder.reserve(3 * bars * float(line.frames_per_bar))

    def _judge(self, loop: InputLoop) -> SeedAudio | None:
        level = loop.rms_db()
        if level < self.threshold_db:
            skipped = self._status.skipped + (loop.key not in self._skipped_keys)
            self._remember(self._skipped_keys, loop.key, None)
            self._silent = (loop.end_bar, loop.bars)
            return self._update(None, state="silent", loop_db=level, loop_end_bar=loop.end_bar, skipped=skipped,
                                detail=f"input loop bars {loop.start_bar}-{loop.end_bar - 1} at {level:.1f} dBFS is "
                                       f"below {self.threshold_db:g} dBFS: not restyled, the current loop keeps playing")
        seed = SeedAudio(loop.key, loop.audio, loop.sample_rate)
        self._remember(self._ends, loop.key, loop.end_bar)
        self._chosen = seed
        return self._update(seed, state="ready", loop_db=level, loop_end_bar=loop.end_bar,
                            restyled=self._status.restyled + 1,
                            detail=f"restyling input bars {loop.start_bar}-{loop.end_bar - 1} ({level:.1f} dBFS)")

    def _update(self, seed: SeedAudio | None, **changes: object) -> SeedAudio | None:
        self._status = replace(self._status, **changes)  # type: ignore[arg-type]
        return seed

    @staticmethod
    def _remember(table: OrderedDict, key: str, value: object) -> None:
        table[key] = value
        while len(table) > REMEMBERED:
            table.popitem(last=False)
