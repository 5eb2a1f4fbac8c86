"""An independent, frame-level reference for the native core's loop player (tests only).

The core works block by block; this model works frame by frame from a :class:`Timeline`
that each test computes on its own (bar lines from a tempo map or a tick list, rolling
intervals, relocations with their offset into the bar, offers and gain commands). It states
the player's rules as a musician would check them:

- every bar starts on its bar line; a loop boundary starts the offered clip when it is new,
  else the current loop again (late when the worker is busy), or a refit of it;
- inside a loop, a refit is taken on the bar line at the same bar; a cursor more than 16
  frames away from its bar's start is moved there;
- a bar that outlasts its material (64 frames of slack) repeats its last beat;
- a start or locate inside a bar plays from the matching offset; a restart of the same clip
  there keeps the loop's phase (it resumes in the loop bar that bar falls on, counted from the
  bar where the loop's first bar last started);
- a stop fades to silence; a start after it, like a locate, plays from the matching offset;
- every jump is an equal-power crossfade of ``fade.frames`` frames from what was playing
  (a fade still running is part of what was playing);
- the gain ramps linearly over the block after a command, then holds.

Loops made by :func:`index_loop` encode their own frame index (left: frame + 1, right:
serial * 1e6 + frame + 1), so a failing sample names the loop frame that played.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from bridge.live.crossfade import Crossfade
from bridge.live.loop import SLACK_FRAMES, Loop, LoopTempo

RATE = 44100
RESYNC_FRAMES = 16


def index_loop(serial: int, frames_per_bar: float, bars: int = 1, beats_per_bar: int = 4,
               version: int = 0, tail: int = 220 + SLACK_FRAMES, rate: int = RATE) -> Loop:
    """A loop whose samples are their own frame index (see the module docstring)."""
    frames = round(bars * frames_per_bar)
    k = np.arange(frames, dtype=np.float64) + 1
    audio = np.stack([k, serial * 1_000_000 + k]).astype(np.float32)
    out = np.empty((2, frames + tail), np.float32)
    out[:, :frames] = audio
    out[:, frames:] = audio[:, frames - 2:frames - 2 - tail:-1]
    out.setflags(write=False)
    bpm = beats_per_bar * 60.0 * rate / frames_per_bar
    return Loop(out, frames, bars, LoopTempo(bpm, beats_per_bar, rate), serial, version)


@dataclass
class Timeline:
    """What the core should see, in output (JACK) frames, computed by the test itself.

    ``rolling``: per-frame transport state; ``lines``: ``(frame, bar)`` of every bar line;
    ``relocations``: frame -> ``(into, frames_per_bar, bar)`` for each block where the
    position jumped while rolling; ``offers``: frame -> ``(next, refit, busy)``; ``gains``:
    frame -> target; ``blocks``: the block sizes the core is driven with.
    """

    frames: int
    rolling: np.ndarray
    lines: list[tuple[int, int]]
    relocations: dict[int, tuple[int, float, int]] = field(default_factory=dict)
    offers: dict[int, tuple[Loop | None, Loop | None, bool]] = field(default_factory=dict)
    gains: dict[int, float] = field(default_factory=dict)
    blocks: Sequence[int] = ()


@dataclass(frozen=True)
class Start:
    """One expected loop start (compare with the core's ClipStart)."""

    jack_frame: int
    bar: int
    serial: int
    new: bool
    into: int
    version: int = 0
    offset: int = 0


@dataclass
class Expected:
    """The model's output: audio ``(frames, 2)``, loop starts, jump frames, counters."""

    audio: np.ndarray
    starts: list[Start]
    joints: list[int]
    late: int
    repeats: int
    resyncs: int
    ramps: list[tuple[int, int]] = field(default_factory=list)

    def mixed_mask(self, fade: int) -> np.ndarray:
        """True on frames computed by arithmetic rather than copied: inside a crossfade
        (``fade`` frames from each jump) or a gain ramp."""
        mask = np.zeros(len(self.audio), bool)
        for joint in self.joints:
            mask[joint:joint + fade] = True
        for start, size in self.ramps:
            mask[start:start + size] = True
        return mask


def bar_frame(loop: Loop, bar_in_loop: int) -> int:
    return round(bar_in_loop * loop.frames / loop.bars)


class PlayerModel:
    """Runs a :class:`Timeline` through the player rules (module docstring)."""

    def __init__(self, fade: Crossfade) -> None:
        self.fade = fade

    def run(self, tl: Timeline) -> Expected:
        self.tl = tl
        self.cur: Loop | None = None
        self.next: Loop | None = None
        self.refit: Loop | None = None
        self.busy = False
        self.cursor = 0
        self.bar_in_loop = 0
        self.silent = self.restart = True
        self.located = False
        self.segments: list[tuple[int, Loop | None, int]] = []
        self.starts: list[Start] = []
        self.late = self.repeats = self.resyncs = 0
        lines = dict(tl.lines)
        block_starts = set(tl.relocations) | set(tl.offers) | set(tl.gains) | _changes(tl.rolling)
        events = sorted(set(lines) | block_starts | {tl.frames})
        t = 0
        for stop in events:
            self._advance(t, stop)
            t = stop
            if t >= tl.frames:
                break
            if t in block_starts:
                self._block_start(t, t in lines)
            if t in lines and tl.rolling[t]:
                self._on_bar_line(t, lines[t])
            self._check_limit(t)
        self.ramps: list[tuple[int, int]] = []
        audio = self._render()
        return Expected(audio, self.starts, [s[0] for s in self.segments], self.late,
                        self.repeats, self.resyncs, self.ramps)

    # -- rules ------------------------------------------------------------------------------

    def _block_start(self, t: int, line_here: bool) -> None:
        if t in self.tl.offers:
            self._offer(*self.tl.offers[t])
        if not self.tl.rolling[t]:
            if not self.silent:
                self._jump(t, None, 0)
                self.silent = True
            self.restart = True
            return
        if t in self.tl.relocations:
            self.restart = self.located = True
            into, fpb, bar = self.tl.relocations[t]
            if into > 0 and not line_here:
                self._start_loop(t, bar, into, fpb)

    def _offer(self, next_loop: Loop | None, refit: Loop | None, busy: bool) -> None:
        self.next, self.refit, self.busy = next_loop, refit, busy

    def _take_refit(self) -> Loop | None:
        r, c = self.refit, self.cur
        if r is None or c is None or r.serial != c.serial or r.version <= c.version:
            return None
        return r

    def _start_loop(self, t: int, bar: int, into: int, fpb: float) -> None:
        nxt = self.next
        # a restart inside a bar resumes the current clip; the offered one waits for a bar line
        is_new = nxt is not None and (self.cur is None or (nxt.serial != self.cur.serial and into == 0))
        if is_new:
            loop = nxt
        else:
            loop = self._take_refit() or self.cur
            if loop is None:
                return
            if self.busy and not self.silent and not self.restart:
                self.late += 1
        bar_in_loop = bar % loop.bars  # loops are locked to the grid's phrases
        offset = bar_frame(loop, bar_in_loop)
        if into > 0 and fpb > 0:
            offset += min(round(into * loop.frames / loop.bars / fpb), bar_frame(loop, bar_in_loop + 1) - offset - 1)
        self.restart = False
        self.bar_in_loop = bar_in_loop
        self._jump(t, loop, offset)
        self.starts.append(Start(t, bar, loop.serial, is_new, into, loop.version, offset))

    def _on_bar_line(self, t: int, bar: int) -> None:
        self.located = False
        loop = self.cur
        if loop is None or self.restart or self.silent or bar % loop.bars == 0:
            self._start_loop(t, bar, 0, 0.0)
            return
        self.bar_in_loop = bar % loop.bars
        refit = self._take_refit()
        if refit is not None:
            self._jump(t, refit, bar_frame(refit, self.bar_in_loop))
        elif abs(self.cursor - bar_frame(loop, self.bar_in_loop)) > RESYNC_FRAMES:
            self.resyncs += 1
            self._jump(t, loop, bar_frame(loop, self.bar_in_loop))

    def _limit(self) -> int:
        return bar_frame(self.cur, self.bar_in_loop + 1) + SLACK_FRAMES  # type: ignore[arg-type]

    def _check_limit(self, t: int) -> None:
        if self.silent or self.cur is None or self.cursor < self._limit():
            return
        loop, limit = self.cur, self._limit()
        begin = bar_frame(loop, self.bar_in_loop)
        beat = (limit - SLACK_FRAMES - begin) // max(1, loop.tempo.beats_per_bar)
        self.repeats += 1
        self._jump(t, loop, max(begin, self.cursor - SLACK_FRAMES - beat))

    def _advance(self, t: int, stop: int) -> None:
        """Play from ``t`` to ``stop``, repeating last beats where a bar outlasts its material."""
        while t < stop:
            if self.silent or self.cur is None:
                return
            self._check_limit(t)
            step = min(stop - t, self._limit() - self.cursor)
            self.cursor += step
            t += step

    def _jump(self, t: int, loop: Loop | None, cursor: int) -> None:
        self.segments.append((t, loop, cursor))
        if loop is not None:
            self.cur, self.cursor, self.silent = loop, cursor, False

    # -- audio ------------------------------------------------------------------------------

    def _render(self) -> np.ndarray:
        n, fi, fo = self.fade.frames, self.fade.fade_in, self.fade.fade_out
        total = self.tl.frames
        out = np.zeros((total, 2), np.float32)
        src = np.zeros((n, 2), np.float32)
        fade_pos = n
        prev: tuple[int, Loop | None, int] | None = None
        segments = self.segments
        for i, (t, loop, cursor) in enumerate(segments):
            end = segments[i + 1][0] if i + 1 < len(segments) else total
            new_src = np.zeros((n, 2), np.float32)
            if prev is not None:
                p_t, p_loop, p_cursor = prev
                fade_pos = min(n, fade_pos + (t - p_t))
                if p_loop is not None:
                    start = min(p_cursor + (t - p_t), p_loop.frames + p_loop.tail - n)
                    new_src = p_loop.audio[:, start:start + n].T.copy()
                rest = n - fade_pos
                if rest > 0:
                    new_src[:rest] = new_src[:rest] * fi[fade_pos:, None] + src[fade_pos:] * fo[fade_pos:, None]
            src, fade_pos, prev = new_src, 0, (t, loop, cursor)
            length = end - t
            raw = np.zeros((length, 2), np.float32) if loop is None else loop.audio[:, cursor:cursor + length].T.copy()
            k = min(n, length)
            raw[:k] = raw[:k] * fi[:k, None] + src[:k] * fo[:k, None]
            out[t:end] = raw
        return self._gain(out)

    def _gain(self, out: np.ndarray) -> np.ndarray:
        current = np.float32(1.0)
        at = 0
        for size in self.tl.blocks:
            target = np.float32(self.tl.gains.get(at, current)) if at in self.tl.gains else current
            block = out[at:at + size]
            if target != current:
                step = np.float32(target - current) / np.float32(size)
                g = current + step * np.arange(1, size + 1, dtype=np.float32)
                block *= g[:, None]
                current = target
                self.ramps.append((at, size))
            elif target != np.float32(1.0):
                block *= target
            at += size
        return out


def _changes(rolling: np.ndarray) -> set[int]:
    """Frames where the rolling state changes (and frame 0)."""
    flips = np.flatnonzero(np.diff(rolling.astype(np.int8))) + 1
    return {0, *(int(f) for f in flips)}
