"""The realtime loop player: plays loops on the bar grid, switching and crossfading on bar lines.

The worker thread offers loops by replacing :attr:`Player.offer` (an immutable
:class:`Offer`); the realtime thread reads it once per bar line. Nothing else is shared:
the player's own state (current loop, cursor, fade) is touched only by the realtime thread,
and outside readers only read single attributes.

Rules, per bar line reported by the grid:
- loop boundary (the current loop's last bar ended, a restart after relocation or transport
  start, or nothing playing yet): start ``offer.next`` if it is a new clip, else repeat the
  current loop (counted late when the worker was busy making a newer one);
- inside a loop: take a refitted version of the current clip if one is offered, and keep the
  cursor on the loop's own bar grid (after a tempo change each bar still starts on its line).
Every jump (switch, repeat, resync, refit, stop, start) is an equal-power crossfade from the
continuation of what was playing, so a joint never clicks and never leaves a gap.

A loop the player leaves is not freed in the realtime thread (freeing megabytes of audio
unmaps memory and can take milliseconds): it goes to a ring of retired loops, and an
ordinary thread drops them with :meth:`Player.release_retired`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.live.crossfade import Crossfade
from bridge.live.grid import BlockPosition
from bridge.live.loop import SLACK_FRAMES, Loop

#: A cursor further than this from its bar's frame at a bar line is moved there (crossfaded).
RESYNC_FRAMES = 16
#: Retired loops held for release outside the realtime thread (at most a few retire per bar).
RETIRED_SLOTS = 32


@dataclass(frozen=True)
class Offer:
    """What the worker offers the player: ``next`` clip for the next loop boundary, a
    ``refit`` of the playing clip (same serial, higher version), and whether it is ``busy``
    making a newer clip (a boundary with no new clip is then late)."""

    next: Loop | None = None
    refit: Loop | None = None
    busy: bool = False


@dataclass(frozen=True)
class ClipStart:
    """One loop start: position ``frame`` (transport or own clock) and ``jack_frame`` of its
    first sample, the ``bar`` it started on, the clip ``serial``, and ``new`` (False: repeat)."""

    frame: int
    jack_frame: int
    bar: int
    serial: int
    new: bool


class BoundaryLog:
    """Preallocated ring of loop starts; ``record`` is realtime safe, ``entries`` is not."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._rows = [[0, 0, 0, 0, 0] for _ in range(capacity)]
        self.count = 0

    def record(self, frame: int, jack_frame: int, bar: int, serial: int, new: bool) -> None:
        """Store one loop start (realtime thread only)."""
        row = self._rows[self.count % self.capacity]
        row[0], row[1], row[2], row[3], row[4] = frame, jack_frame, bar, serial, new
        self.count += 1

    def entries(self) -> tuple[ClipStart, ...]:
        """The newest ``capacity`` loop starts, oldest first."""
        count = self.count
        first = max(0, count - self.capacity)
        rows = [list(self._rows[i % self.capacity]) for i in range(first, count)]
        return tuple(ClipStart(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows)


class Player:
    """Renders loops into blocks (see the module docstring).

    Realtime contract of :meth:`render`: copies from preallocated arrays with numpy
    ``copyto``/``out=`` forms only, takes no lock, logs nothing, raises nothing for any
    block length up to ``max_block``, and frees no loop (left loops are retired, see
    :meth:`release_retired`).
    """

    def __init__(self, crossfade: Crossfade, max_block: int = 8192) -> None:
        self.offer = Offer()
        self.crossfade = crossfade
        self.log = BoundaryLog()
        self.current: Loop | None = None
        self.cursor = 0
        self.bar_in_loop = 0
        self.bar = 0
        self.restart = True
        self.silent = True
        self.taken_serial = -1
        self.late = self.underruns = self.resyncs = self.clips_started = 0
        self._fades = (np.zeros((2, crossfade.frames), np.float32), np.zeros((2, crossfade.frames), np.float32))
        self._fade_which = 0
        self._fade_pos = crossfade.frames
        self._scratch = np.zeros((2, max(max_block, crossfade.frames)), np.float32)
        self._retired: list[Loop | None] = [None] * RETIRED_SLOTS
        self.retired_count = 0
        self._released_count = 0

    def release_retired(self) -> int:
        """Drop the loops the realtime thread has left, freeing them in the calling (ordinary)
        thread; returns how many. Call often (the live engine's monitor does, every poll)."""
        count, released = self.retired_count, 0
        while self._released_count < count:
            self._retired[self._released_count % RETIRED_SLOTS] = None
            self._released_count += 1
            released += 1
        return released

    def resize(self, max_block: int) -> None:
        """Make room for blocks of ``max_block`` frames (call outside the realtime thread)."""
        if max_block > self._scratch.shape[1]:
            self._scratch = np.zeros((2, max_block), np.float32)

    # -- realtime -----------------------------------------------------------------------

    def render(self, out: np.ndarray, frames: int, position: BlockPosition) -> None:
        """Fill ``out`` (``(2, frames)``) for one block at ``position``; realtime safe."""
        if not position.rolling:
            self._stop()
        elif position.relocated:
            self.restart = True
        line = position.bar_offset if position.rolling else -1
        if line < 0:
            self._play(out, 0, frames)
        else:
            self._play(out, 0, line)
            self._on_bar_line(position, line)
            self._play(out, line, frames)
        if self.current is None and position.rolling:
            self.underruns += 1

    def _stop(self) -> None:
        if not self.silent:
            self._begin_fade()
            self.silent = True
        self.restart = True

    def _on_bar_line(self, position: BlockPosition, line: int) -> None:
        self.bar = position.bar
        loop = self.current
        if loop is None or self.restart or self.silent or self.bar_in_loop + 1 >= loop.bars:
            self._start_loop(position, line)
            return
        self.bar_in_loop += 1
        refit = self._refit()
        if refit is not None:
            self._jump(refit, refit.bar_frame(self.bar_in_loop))
        elif abs(self.cursor - loop.bar_frame(self.bar_in_loop)) > RESYNC_FRAMES:
            self.resyncs += 1
            self._jump(loop, loop.bar_frame(self.bar_in_loop))

    def _start_loop(self, position: BlockPosition, line: int) -> None:
        offer, current = self.offer, self.current
        following = offer.next
        new = following is not None and (current is None or following.serial != current.serial)
        if new:
            loop = following
            self.taken_serial = following.serial
            self.clips_started += 1
        else:
            loop = self._refit() or current
            if loop is None:
                return
            if offer.busy and not self.silent and not self.restart:
                self.late += 1
        self.restart = False
        self.bar_in_loop = 0
        self._jump(loop, 0)
        self.log.record(position.frame + line, position.jack_frame + line, position.bar, loop.serial, new)

    def _refit(self) -> Loop | None:
        refit, current = self.offer.refit, self.current
        if refit is None or current is None or refit.serial != current.serial or refit.version <= current.version:
            return None
        return refit

    def _jump(self, loop: Loop, cursor: int) -> None:
        self._begin_fade()
        leaving = self.current
        if leaving is not None and leaving is not loop:
            self._retired[self.retired_count % RETIRED_SLOTS] = leaving
            self.retired_count += 1
        self.current, self.cursor, self.silent = loop, cursor, False

    def _begin_fade(self) -> None:
        """Capture the next ``crossfade.frames`` of what plays now as the fading-out source."""
        fade = self.crossfade
        target = self._fades[self._fade_which ^ 1]
        loop = self.current
        if self.silent or loop is None:
            target.fill(0.0)
        else:
            start = min(self.cursor, loop.frames + SLACK_FRAMES)
            np.copyto(target, loop.audio[:, start:start + fade.frames])
        position = self._fade_pos
        if position < fade.frames:
            self._mix_fade(target, 0, fade.frames - position, self._fades[self._fade_which], position)
        self._fade_which ^= 1
        self._fade_pos = 0

    def _play(self, out: np.ndarray, start: int, stop: int) -> None:
        if self.silent or self.current is None:
            out[:, start:stop] = 0.0
            self._fade(out, start, stop - start)
            return
        while start < stop:
            loop = self.current
            end = loop.frames + SLACK_FRAMES
            if self.cursor >= end:
                self._jump(loop, 0)
            count = min(stop - start, end - self.cursor)
            np.copyto(out[:, start:start + count], loop.audio[:, self.cursor:self.cursor + count])
            self._fade(out, start, count)
            self.cursor += count
            start += count

    def _fade(self, out: np.ndarray, start: int, count: int) -> None:
        position = self._fade_pos
        count = min(count, self.crossfade.frames - position)
        if count > 0:
            self._mix_fade(out, start, count, self._fades[self._fade_which], position)
            self._fade_pos = position + count

    def _mix_fade(self, out: np.ndarray, start: int, count: int, source: np.ndarray, position: int) -> None:
        """``out[:, start:start+count]`` faded in, plus ``source`` from ``position`` faded out."""
        fade = self.crossfade
        segment = out[:, start:start + count]
        np.multiply(segment, fade.fade_in[position:position + count], out=segment)
        tail = self._scratch[:, :count]
        np.multiply(source[:, position:position + count], fade.fade_out[position:position + count], out=tail)
        np.add(segment, tail, out=segment)
