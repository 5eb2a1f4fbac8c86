"""The input recorder: the last few loops of ``in_L``/``in_R``, cut on the bar grid in force.

The live engine's monitor thread calls :meth:`InputRecorder.feed` every poll with what it
drained from the native core: captured blocks (``InputBlock``: first JACK frame and
``(n, 2)`` float32 samples) and the bar lines that passed (``BarLine``: the JACK frame each
fell on, its bar index and the bar length in frames). The recorder writes the samples into a
ring indexed by JACK frame and keeps the recent bar lines, so any whole number of bars that
ended lately can be cut out exactly: :meth:`InputRecorder.loop` returns the ``bars`` bars that
end on bar line ``end_bar`` as an :class:`InputLoop`, from the JACK frame of bar line
``end_bar - bars`` up to (not including) that of ``end_bar``. Whatever the tempo source
(transport, MIDI clock, our own clock), bar lines are the core's, so input and output share
one grid.

A short gap in the captured frames (JACK skipped cycles after an xrun, or the core's ring
overflowed), up to :data:`MAX_GAP_SECONDS`, reads as silence and is counted in ``dropped``;
a block stamped up to that much earlier than the previous one ended (seen after xruns)
overwrites those frames;
after a longer gap, or frames going back (the JACK server restarted), the recorder starts
over, and a loop that spans such a break is refused rather than cut with a hole in it. The ring
holds :data:`DEFAULT_SECONDS` at first and grows when a longer loop is asked for
(:meth:`InputRecorder.reserve`). ``feed`` and the readers may run on different threads.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from bridge.audio.channels import stereo
from bridge.errors import BridgeError

try:  # the native core's types, once it is built (bridge/live/core.py)
    from bridge.live.core import BarLine, InputBlock  # type: ignore[attr-defined]
except Exception:  # noqa: BLE001 - no core yet: the same contract as plain frozen dataclasses

    @dataclass(frozen=True)
    class InputBlock:  # type: ignore[no-redef]
        """``(n, 2)`` float32 samples whose first sample was captured on JACK frame ``jack_frame``."""

        jack_frame: int
        audio: np.ndarray

    @dataclass(frozen=True)
    class BarLine:  # type: ignore[no-redef]
        """A bar line that passed: its JACK frame, position frame, bar index, bar length in
        frames and the tempo source that placed it."""

        jack_frame: int
        frame: int
        bar: int
        frames_per_bar: float
        source: str


#: Seconds of input the ring holds at first (grown by reserve() for longer loops).
DEFAULT_SECONDS = 60.0
#: Bar lines remembered (the longest loop is 16 bars; a few loops back is plenty).
BAR_LINES_KEPT = 256
#: Level meter time constant (seconds) of the running RMS.
METER_SECONDS = 0.3
#: Longest gap in the captured frames that is filled with silence (longer: a new run).
MAX_GAP_SECONDS = 0.5
#: Floor of every level in dBFS (digital silence reads as this).
FLOOR_DB = -120.0


class InputUnavailable(BridgeError):
    """The input loop asked for cannot be cut (not captured yet, a gap, or a relocation)."""


class InputPending(InputUnavailable):
    """The input loop asked for ends on the very next bar line, which the monitor has not
    brought yet: it will be there within a few blocks (a transient, not a fault)."""


def level_db(rms: float) -> float:
    """``rms`` (linear, full scale 1.0) in dBFS, never below :data:`FLOOR_DB`."""
    return max(FLOOR_DB, 20.0 * math.log10(rms)) if rms > 0 else FLOOR_DB


@dataclass(frozen=True, eq=False)
class InputLoop:
    """``bars`` bars of captured input: ``audio`` is ``(frames, 2)`` float32 (read-only),
    starting on bar ``start_bar`` at JACK frame ``start_jack_frame``."""

    audio: np.ndarray
    sample_rate: int
    start_bar: int
    bars: int
    start_jack_frame: int

    @property
    def end_bar(self) -> int:
        """The bar line this loop ends on (the first bar after it)."""
        return self.start_bar + self.bars

    @property
    def frames(self) -> int:
        """Length in frames."""
        return int(self.audio.shape[0])

    @property
    def key(self) -> str:
        """A name unique to this cut of the input (start frame, bars, length)."""
        return f"input@{self.start_jack_frame}+{self.frames}/{self.bars}"

    def rms_db(self) -> float:
        """RMS level of the loop (both channels) in dBFS."""
        return level_db(float(np.sqrt(np.mean(np.square(self.audio, dtype=np.float64)))))

    def mono(self) -> np.ndarray:
        """``(frames,)`` float32 mix of both channels."""
        return self.audio.mean(axis=1, dtype=np.float32)


class LevelMeter:
    """Running RMS (exponential, :data:`METER_SECONDS`) and the peak since the last read."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.mean_square = 0.0
        self.peak = 0.0

    def add(self, audio: np.ndarray) -> None:
        """Take one block of ``(n, channels)`` samples into account."""
        if audio.size == 0:
            return
        weight = math.exp(-len(audio) / (METER_SECONDS * self.sample_rate))
        block = float(np.mean(np.square(audio, dtype=np.float64)))
        self.mean_square = weight * self.mean_square + (1.0 - weight) * block
        self.peak = max(self.peak, float(np.abs(audio).max()))

    def rms_db(self) -> float:
        """The running RMS in dBFS."""
        return level_db(math.sqrt(self.mean_square))

    def take_peak_db(self) -> float:
        """The peak since the last call, in dBFS; resets it."""
        peak, self.peak = self.peak, 0.0
        return level_db(peak)


class FrameRing:
    """Stereo samples indexed by absolute JACK frame, the newest ``capacity`` frames kept;
    a forward jump of at most ``max_gap`` frames is filled with silence."""

    def __init__(self, capacity: int, max_gap: int = 0) -> None:
        self.max_gap = max_gap
        self.data = np.zeros((capacity, 2), np.float32)
        self.end: int | None = None          # JACK frame after the newest sample
        self.valid_from: int | None = None   # first frame of the gap-free run ending at ``end``
        self.dropped = 0
        self.overlapped = 0
        #: The newest breaks in the capture: (frame expected next, frame that came).
        self.breaks: deque[tuple[int, int]] = deque(maxlen=8)

    @property
    def capacity(self) -> int:
        """Frames held."""
        return int(self.data.shape[0])

    def write(self, jack_frame: int, audio: np.ndarray) -> None:
        """Store ``audio`` (``(n, 2)``) captured from ``jack_frame`` on; a short gap before it
        becomes silence, a short overlap is overwritten, a longer jump starts a new run."""
        end = self.end
        if end is not None and end < jack_frame <= end + self.max_gap:
            self.dropped += jack_frame - end
            self._put(end, np.zeros((jack_frame - end, 2), np.float32))
        elif end is not None and end - self.max_gap <= jack_frame < end:
            self.breaks.append((end, jack_frame))  # stamped again (seen after xruns): newest wins
            self.overlapped += min(end - jack_frame, len(audio))
            self._put(jack_frame, audio)
            self.end = max(end, jack_frame + len(audio))
            return
        elif end is None or jack_frame != end:
            if end is not None:
                self.breaks.append((end, jack_frame))
                self.dropped += max(0, jack_frame - end)
            self.valid_from = jack_frame
        self._put(jack_frame, audio)

    def _put(self, jack_frame: int, audio: np.ndarray) -> None:
        frames = len(audio)
        if frames > self.capacity:
            audio, jack_frame = audio[-self.capacity:], jack_frame + frames - self.capacity
            frames = self.capacity
        start = jack_frame % self.capacity
        first = min(frames, self.capacity - start)
        self.data[start:start + first] = audio[:first]
        self.data[:frames - first] = audio[first:]
        self.end = jack_frame + frames

    def oldest(self) -> int | None:
        """The oldest JACK frame still held (None before any write)."""
        if self.end is None or self.valid_from is None:
            return None
        return max(self.valid_from, self.end - self.capacity)

    def read(self, start: int, stop: int) -> np.ndarray:
        """A copy of frames ``[start, stop)``; InputUnavailable unless all are held."""
        oldest = self.oldest()
        if oldest is None or start < oldest or stop > (self.end or 0):
            raise InputUnavailable(f"input frames {start}..{stop} are not all captured "
                                   f"(held: {oldest}..{self.end}; breaks: {list(self.breaks)[-3:]})")
        index = np.arange(start, stop) % self.capacity
        return self.data[index]

    def grow(self, capacity: int) -> None:
        """Hold at least ``capacity`` frames from now on, keeping what is held."""
        if capacity <= self.capacity:
            return
        held = None
        oldest = self.oldest()
        if oldest is not None and self.end is not None and self.end > oldest:
            held = (oldest, self.read(oldest, self.end))
        self.data = np.zeros((capacity, 2), np.float32)
        end, valid = self.end, self.valid_from
        if held is not None:
            self.end = None
            self.write(*held)
            self.valid_from = valid if valid is not None and valid >= held[0] else held[0]
        else:
            self.end, self.valid_from = end, valid


class InputRecorder:
    """Captured input and bar lines from the live engine's monitor (see the module docstring)."""

    def __init__(self, sample_rate: int = 44100, seconds: float = DEFAULT_SECONDS,
                 threshold_db: float = -50.0) -> None:
        self.sample_rate = sample_rate
        #: Input loops quieter than this (RMS, dBFS) are not restyled (see InputSelector).
        self.threshold_db = threshold_db
        self.meter = LevelMeter(sample_rate)
        self._ring = FrameRing(max(1, round(seconds * sample_rate)), round(MAX_GAP_SECONDS * sample_rate))
        self._bars: deque[BarLine] = deque(maxlen=BAR_LINES_KEPT)
        self._lock = threading.Lock()
        self.blocks = 0

    # -- the monitor's side ---------------------------------------------------------------

    def feed(self, blocks: Sequence[InputBlock], bar_lines: Iterable[BarLine]) -> None:
        """Take what the core captured since the last call (oldest first)."""
        with self._lock:
            for block in blocks:
                audio = stereo(block.audio)
                self._ring.write(int(block.jack_frame), audio)
                self.meter.add(audio)
                self.blocks += 1
            self._bars.extend(bar_lines)

    # -- readers --------------------------------------------------------------------------

    def use_rate(self, sample_rate: int) -> None:
        """The JACK server's rate, once the client is open (loops and the meter use it)."""
        self.sample_rate = self.meter.sample_rate = int(sample_rate)

    @property
    def dropped(self) -> int:
        """Frames missing between captured blocks so far."""
        return self._ring.dropped

    def latest_bar(self) -> BarLine | None:
        """The newest bar line seen (None before the first)."""
        with self._lock:
            return self._bars[-1] if self._bars else None

    def bar_line(self, bar: int) -> BarLine | None:
        """The newest bar line with index ``bar`` (None when not seen or forgotten)."""
        with self._lock:
            return self._find(bar)

    def _find(self, bar: int) -> BarLine | None:
        for line in reversed(self._bars):
            if line.bar == bar:
                return line
        return None

    def reserve(self, frames: float) -> None:
        """Make the ring hold at least ``frames`` (e.g. two loops) from now on."""
        with self._lock:
            self._ring.grow(int(math.ceil(frames)))

    def loop(self, end_bar: int, bars: int) -> InputLoop:
        """The ``bars`` bars ending on bar line ``end_bar``; InputUnavailable when they were not
        all captured, a bar line is unknown, or the bars were not played in one stretch
        (InputPending, a subclass, when ``end_bar`` is the bar line right after the newest seen)."""
        with self._lock:
            start, end = self._find(end_bar - bars), self._find(end_bar)
            newest = self._bars[-1] if self._bars else None
            if end is None and newest is not None and end_bar == newest.bar + 1:
                raise InputPending(f"bar line {end_bar} not seen yet (the newest is {newest.bar})")
            if start is None or end is None:
                raise InputUnavailable(f"bar lines {end_bar - bars} and {end_bar} not both seen yet")
            _check_stretch(start, end, bars)
            audio = self._ring.read(int(start.jack_frame), int(end.jack_frame))
        audio.setflags(write=False)
        return InputLoop(audio, self.sample_rate, int(start.bar), bars, int(start.jack_frame))


def _check_stretch(start: BarLine, end: BarLine, bars: int) -> None:
    """InputUnavailable unless ``start`` .. ``end`` spans ``bars`` bars played in one go."""
    frames = end.jack_frame - start.jack_frame
    expected = bars * 0.5 * (start.frames_per_bar + end.frames_per_bar)
    if frames <= 0 or abs(frames - expected) > 0.25 * expected:
        raise InputUnavailable(f"bars {start.bar}..{end.bar} were not played in one stretch "
                               f"({frames} frames, about {expected:.0f} expected)")
