"""The bar grid: where bar lines fall in each process block (pure logic, realtime safe).

Every tempo source reduces to the same question per block: is there a bar line inside this
block, at which offset, and which bar starts there? :class:`BlockPosition` is the answer
(one preallocated instance refilled each block). :class:`BarGrid` derives it from position
reports (transport BBT or our own clock) and keeps the lines stable: it anchors the grid on
one bar and extrapolates ``anchor + round(k * frames_per_bar)`` while reports agree, so
BBT tick quantisation never makes bar lines jitter. :class:`OwnClock` is the grid of a
tempo we keep ourselves (control API / ``--bpm``), changing tempo only on a bar line.
"""

from __future__ import annotations

import math


class BlockPosition:
    """Where one block lies on the bar grid; refilled in place by the realtime thread.

    ``rolling``: music time advances in this block. ``frame``: position frame of the block's
    first frame (transport frame, or our own counter). ``bar_offset``: offset of a bar line
    inside the block, -1 for none. ``bar``: index of the bar starting at ``bar_offset`` (or
    of the current bar when there is no line). ``relocated``: the position jumped (locate,
    start, song position); the player restarts its loop on the next bar line. ``jack_frame``:
    JACK frame time of the block's first frame. ``source``: the tempo source that placed it.
    """

    __slots__ = ("rolling", "frame", "jack_frame", "bar_offset", "bar", "relocated", "source")

    def __init__(self) -> None:
        self.rolling = False
        self.frame = 0
        self.jack_frame = 0
        self.bar_offset = -1
        self.bar = 0
        self.relocated = False
        self.source = 0

    def clear(self, frame: int, source: int) -> None:
        """Reset for a new block whose position frame is ``frame``, placed by ``source``."""
        self.rolling = False
        self.frame = frame
        self.bar_offset = -1
        self.relocated = False
        self.source = source


class BarGrid:
    """Stable bar lines from per-block position reports (see the module docstring).

    ``update`` takes the block's first frame, the bar containing it, the (fractional)
    frame where that bar started, and frames per bar; it fills a :class:`BlockPosition`.
    At most one bar line is reported per block (a bar is always longer than a block).
    A line computed just before the block (missed by rounding) is reported at offset 0,
    never twice. Realtime safe: arithmetic on attributes only.
    """

    def __init__(self) -> None:
        self.anchor_bar = 0
        self.anchor_frame = 0.0
        self.frames_per_bar = 0.0
        self.next_bar = 0
        self.expected_frame = -1

    def update(self, out: BlockPosition, frame: int, frames: int, bar: int, bar_start: float,
               frames_per_bar: float, tolerance: float) -> None:
        """Fill ``out`` for a block of ``frames`` frames (``out.rolling`` set by the caller)."""
        continuous = frame == self.expected_frame
        if not continuous or not self._agrees(bar, bar_start, frames_per_bar, tolerance):
            jumped = self._anchor(frame, bar, bar_start, frames_per_bar, continuous)
            out.relocated = out.relocated or jumped
        elif bar_start < self.start_of(bar):
            self.anchor_frame -= self.start_of(bar) - bar_start
        self.expected_frame = frame + frames
        self._report(out, frame, frames)

    def start_of(self, bar: int) -> float:
        """Frame where ``bar`` starts on the current anchor."""
        return self.anchor_frame + (bar - self.anchor_bar) * self.frames_per_bar

    def _agrees(self, bar: int, bar_start: float, frames_per_bar: float, tolerance: float) -> bool:
        return frames_per_bar == self.frames_per_bar and abs(self.start_of(bar) - bar_start) <= tolerance

    def _anchor(self, frame: int, bar: int, bar_start: float, frames_per_bar: float,
                continuous: bool) -> bool:
        """Re-anchor on ``bar``; True when the musical position jumped (not just the tempo)."""
        jumped = not continuous or not self.next_bar - 1 <= bar <= self.next_bar
        self.anchor_bar, self.anchor_frame, self.frames_per_bar = bar, bar_start, frames_per_bar
        first = bar if round(bar_start) >= frame else bar + 1
        self.next_bar = first if jumped else max(self.next_bar, first)
        return jumped

    def _report(self, out: BlockPosition, frame: int, frames: int) -> None:
        line = round(self.start_of(self.next_bar)) - frame
        if line < frames:
            out.bar_offset = line if line > 0 else 0
            out.bar = self.next_bar
            self.next_bar += 1
        else:
            out.bar_offset = -1
            out.bar = self.next_bar - 1


class OwnClock:
    """A bar grid we keep ourselves: ``frames_per_bar`` from an origin, retempo on bar lines.

    ``locate(frame)`` gives ``(bar, bar_start)`` for any frame; ``request(frames_per_bar)``
    stores a new tempo that ``on_bar_line`` applies at the next line, so a tempo change never
    shortens or stretches the bar in progress. Realtime safe.
    """

    def __init__(self, frames_per_bar: float) -> None:
        self.origin_bar = 0
        self.origin_frame = 0.0
        self.frames_per_bar = frames_per_bar
        self.requested = frames_per_bar

    def request(self, frames_per_bar: float) -> None:
        """Ask for a new bar length (applied at the next bar line)."""
        self.requested = frames_per_bar

    def locate(self, frame: int) -> tuple[int, float]:
        """``(bar, frame where that bar starts)`` for ``frame``."""
        bar = self.origin_bar + math.floor((frame - self.origin_frame) / self.frames_per_bar)
        return bar, self.start_of(bar)

    def start_of(self, bar: int) -> float:
        """Frame where ``bar`` starts at the current tempo."""
        return self.origin_frame + (bar - self.origin_bar) * self.frames_per_bar

    def on_bar_line(self, bar: int, frame: float) -> None:
        """Apply a requested tempo from bar ``bar``, which starts on ``frame``."""
        if self.requested != self.frames_per_bar:
            self.origin_bar, self.origin_frame = bar, float(frame)
            self.frames_per_bar = self.requested
