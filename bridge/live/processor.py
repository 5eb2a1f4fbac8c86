"""The realtime block logic, shared by the JACK client and the offline output.

Per block, :meth:`Processor.process`:
1. reads ``midi_in``: clock bytes (F8/FA/FB/FC/F2) go to the :class:`MidiClock`, every other
   message's raw bytes to a :class:`MidiRing` for the control layer;
2. places the block on the bar grid from the first tempo source available: JACK transport
   with BBT (a timebase master), then MIDI clock, then our own clock (control API tempo or
   ``--bpm``; on the transport's frames while it rolls, or on our own counter with
   ``free_run`` while it is stopped);
3. lets the :class:`Player` render the loops, applies the gain (ramped per block), copies to
   the output arrays, and counts blocks and callback time.

Outside threads set ``gain``, request our own tempo with :meth:`set_own_tempo`, and read
the counters and ``tempo_source``/``transport_*`` attributes; each is one attribute.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import numpy as np

from bridge.live.crossfade import Crossfade
from bridge.live.grid import BarGrid, BlockPosition, OwnClock
from bridge.live.midiclock import SONG_POSITION, MidiClock
from bridge.live.midiring import MAX_MESSAGE_BYTES, MidiRing
from bridge.live.player import Player
from bridge.live.timebase import POSITION_BBT, POSITION_BBT_FRAME_OFFSET, TRANSPORT_ROLLING
from bridge.timing import Tempo, beats_to_frames

#: Tempo sources, in priority order (index into SOURCE_NAMES).
SOURCE_NONE, SOURCE_TRANSPORT, SOURCE_MIDI, SOURCE_OWN = 0, 1, 2, 3
SOURCE_NAMES = ("none", "transport", "midi", "control")
#: Largest block the preallocated buffers hold without a resize.
DEFAULT_MAX_BLOCK = 8192
#: Callback-time histogram: HISTOGRAM_BUCKETS buckets of HISTOGRAM_NS each (the last one open).
HISTOGRAM_BUCKETS, HISTOGRAM_NS = 400, 25_000


class Processor:
    """Everything the process callback does (see the module docstring).

    Realtime contract of :meth:`process`: no allocation of arrays, no lock, no logging, no
    exception for any block up to ``max_block`` frames; writes only preallocated buffers and
    the caller's output arrays.
    """

    def __init__(self, sample_rate: int, block_size: int, tempo: Tempo = Tempo(),
                 crossfade: Crossfade | None = None, free_run: bool = False,
                 max_block: int = DEFAULT_MAX_BLOCK) -> None:
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.free_run = free_run
        self.player = Player(crossfade or Crossfade.for_rate(sample_rate), max(max_block, block_size))
        self.grid = BarGrid()
        self.own = OwnClock(tempo.frames_per_bar(sample_rate))
        self.midi_clock = MidiClock()
        self.midi_ring = MidiRing()
        self.position = BlockPosition()
        self.gain = 1.0
        self._gain = 1.0
        self._allocate(max(max_block, block_size))
        self._midi_bytes = bytearray(MAX_MESSAGE_BYTES)
        self.own_frame = 0
        self.tempo_source = SOURCE_NONE
        self.transport_bpm, self.transport_beats_per_bar, self.transport_beat_type = 0.0, 4.0, 4.0
        self.blocks = self.callback_ns_total = self.callback_ns_max = self.xruns = 0
        self.start_delay_max = 0
        self.callback_histogram = [0] * HISTOGRAM_BUCKETS

    def _allocate(self, max_block: int) -> None:
        self.max_block = max_block
        self._block = np.zeros((2, max_block), np.float32)
        self._gains = np.zeros(max_block, np.float32)
        self._ramp = _ramp(self.block_size)
        self.player.resize(max_block)

    # -- outside the realtime thread ------------------------------------------------------

    def set_block_size(self, block_size: int) -> None:
        """Follow a new JACK block size (grows the buffers when needed)."""
        self.block_size = block_size
        if block_size > self.max_block:
            self._allocate(block_size)
        self._ramp = _ramp(block_size)

    def set_sample_rate(self, sample_rate: int) -> None:
        """Follow a new sample rate (loops are refitted by the worker; the crossfade keeps its frames)."""
        self.sample_rate = sample_rate

    def set_own_tempo(self, tempo: Tempo) -> None:
        """Tempo of our own clock, applied from its next bar line."""
        self.own.request(tempo.frames_per_bar(self.sample_rate))

    # -- realtime -------------------------------------------------------------------------

    def process(self, frames: int, transport_state: int, pos: Any, midi_events: Iterable[tuple[int, Any]],
                jack_frame: int, left: np.ndarray, right: np.ndarray, started_ns: int = 0,
                start_delay: int = 0) -> None:
        """One block: MIDI in, bar grid, loops out to ``left``/``right`` (``frames`` each).

        ``started_ns``: when the caller's callback began (perf_counter_ns; default now);
        ``start_delay``: frames of the cycle that had passed when it began (JACK's
        ``frames_since_cycle_start``: scheduling and GIL wait before our code ran).
        """
        started_ns = started_ns or time.perf_counter_ns()
        if start_delay > self.start_delay_max:
            self.start_delay_max = start_delay
        self._read_midi(midi_events, jack_frame)
        self._locate(frames, transport_state, pos, jack_frame)
        block = self._block[:, :frames]
        self.player.render(block, frames, self.position)
        self._apply_gain(block, frames)
        np.copyto(left, block[0])
        np.copyto(right, block[1])
        self.own_frame += frames
        self._count(time.perf_counter_ns() - started_ns)

    def _read_midi(self, events: Iterable[tuple[int, Any]], jack_frame: int) -> None:
        clock, scratch = self.midi_clock, self._midi_bytes
        clock.begin_block()
        for offset, data in events:
            size = len(data)
            if size == 0 or size > MAX_MESSAGE_BYTES:
                self.midi_ring.push(jack_frame + offset, data)
                continue
            scratch[0:size] = data
            status = scratch[0]
            if status >= 0xF8 or status == SONG_POSITION:
                clock.handle(status, scratch[1], scratch[2], offset, jack_frame + offset)
            else:
                self.midi_ring.push(jack_frame + offset, data)

    def _locate(self, frames: int, transport_state: int, pos: Any, jack_frame: int) -> None:
        position = self.position
        if _bbt_usable(pos):
            self._follow_transport(position, frames, transport_state, pos)
        elif self.midi_clock.present(jack_frame, self.sample_rate):
            self.tempo_source = SOURCE_MIDI
            position.clear(jack_frame, SOURCE_MIDI)
            self.midi_clock.fill(position)
        else:
            self.tempo_source = SOURCE_OWN
            self._follow_own(position, frames, pos.frame, transport_state == TRANSPORT_ROLLING)
        if not position.rolling and self.free_run:
            self._follow_own(position, frames, self.own_frame, True)
        position.jack_frame = jack_frame

    def _follow_transport(self, position: BlockPosition, frames: int, state: int, pos: Any) -> None:
        self.tempo_source = SOURCE_TRANSPORT
        bpm, beats_per_bar, ticks = pos.beats_per_minute, pos.beats_per_bar, pos.ticks_per_beat
        self.transport_bpm, self.transport_beats_per_bar = bpm, beats_per_bar
        self.transport_beat_type = pos.beat_type
        position.clear(pos.frame, SOURCE_TRANSPORT)
        position.rolling = state == TRANSPORT_ROLLING
        if not position.rolling:
            return
        frames_per_beat = beats_to_frames(1.0, bpm, self.sample_rate)
        into = ((pos.beat - 1) + pos.tick / ticks) * frames_per_beat
        if pos.valid & POSITION_BBT_FRAME_OFFSET:
            into += pos.bbt_offset
        self.grid.update(position, pos.frame, frames, pos.bar - 1, pos.frame - into,
                         frames_per_beat * beats_per_bar, 2.0 * frames_per_beat / ticks + 2.0)

    def _follow_own(self, position: BlockPosition, frames: int, frame: int, rolling: bool) -> None:
        position.clear(frame, SOURCE_OWN)
        position.rolling = rolling
        if not rolling:
            return
        bar, start = self.own.locate(frame)
        self.grid.update(position, frame, frames, bar, start, self.own.frames_per_bar, 1.0)
        if position.bar_offset >= 0:
            self.own.on_bar_line(position.bar, frame + position.bar_offset)

    def _apply_gain(self, block: np.ndarray, frames: int) -> None:
        target, current, ramp = self.gain, self._gain, self._ramp
        if target == current or frames != ramp.shape[0]:
            if target != 1.0:
                np.multiply(block, target, out=block)
            self._gain = target
            return
        gains = self._gains[:frames]
        np.multiply(ramp, target - current, out=gains)
        np.add(gains, current, out=gains)
        np.multiply(block, gains, out=block)
        self._gain = target

    def _count(self, elapsed_ns: int) -> None:
        self.blocks += 1
        self.callback_ns_total += elapsed_ns
        if elapsed_ns > self.callback_ns_max:
            self.callback_ns_max = elapsed_ns
        self.callback_histogram[min(elapsed_ns // HISTOGRAM_NS, HISTOGRAM_BUCKETS - 1)] += 1

    def callback_percentile(self, fraction: float) -> float:
        """Callback time (microseconds, bucket upper edge) below which ``fraction`` of blocks ran."""
        counts = list(self.callback_histogram)
        total, seen = sum(counts), 0
        for bucket, count in enumerate(counts):
            seen += count
            if total and seen >= fraction * total:
                return (bucket + 1) * HISTOGRAM_NS / 1000.0
        return 0.0


def _ramp(frames: int) -> np.ndarray:
    """``1/frames, 2/frames, ..., 1``: a gain change spread over one block."""
    return np.arange(1, frames + 1, dtype=np.float32) / np.float32(frames)


def _bbt_usable(pos: Any) -> bool:
    """True when a timebase master filled BBT with sane values (realtime safe)."""
    return bool(pos.valid & POSITION_BBT) and pos.beats_per_minute > 0 and pos.ticks_per_beat > 0 \
        and pos.beats_per_bar > 0 and pos.beat >= 1
