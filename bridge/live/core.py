"""The Python side of the native realtime core (``core.c``; contract in ``core.h``).

:class:`Core` owns one preallocated ``rb_core`` struct. The JACK client registers the core's
C callbacks (:meth:`Core.attach`), so no Python runs in the audio thread; offline, the same
C block function is driven by :meth:`Core.process` with simulated transport positions, so
tests and the demo check the very code that plays live.

Python talks to the core only through the struct: commands (loop offers, gain, tempo
requests) go in through a single-producer ring (:meth:`Core.send`, serialised by a lock on
the Python side), and what the core produces (retired loops, non-clock MIDI, bar lines,
input samples, loop starts, counters) is read back here, on ordinary threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from bridge.errors import BridgeError
from bridge.live.crossfade import Crossfade
from bridge.live.loop import Loop

#: Tempo source names by the core's ``rb_source`` index.
SOURCE_NAMES = ("none", "transport", "midi", "link", "control")
SOURCE_NONE, SOURCE_TRANSPORT, SOURCE_MIDI, SOURCE_EXTERNAL, SOURCE_OWN = range(5)


class CoreError(BridgeError):
    """The native core is missing or refused a command."""


def native() -> Any:
    """The compiled extension (``bridge.live._core``); CoreError naming the fix when absent."""
    try:
        from bridge.live import _core
    except ImportError as err:
        raise CoreError(f"the native realtime core is not built ({err}); install gcc and the JACK "
                        "headers (Debian: apt-get install gcc libjack-jackd2-dev) and run "
                        "scripts/setup.sh again") from None
    return _core


@dataclass(frozen=True)
class ClipStart:
    """One loop start: position ``frame`` and ``jack_frame`` of its first sample, the ``bar`` it
    started in, the clip ``serial``, ``new`` (False: a repeat), ``into`` (frames into the bar:
    0 on a bar line, more for a start or locate inside a bar), the loop's ``version`` (its
    refit count) and ``offset``, the loop frame it started from (0 on a loop boundary; inside a
    bar, the matching point of the loop bar that bar falls on)."""

    frame: int
    jack_frame: int
    bar: int
    serial: int
    new: bool
    into: int = 0
    version: int = 0
    offset: int = 0


@dataclass(frozen=True)
class BarLine:
    """A bar line that passed: its JACK frame, position frame, bar index, the bar length in
    frames of the grid in force, and the tempo source that placed it."""

    jack_frame: int
    frame: int
    bar: int
    frames_per_bar: float
    source: str


@dataclass(frozen=True)
class InputBlock:
    """Captured input: ``(n, 2)`` float32 ``audio`` whose first sample fell on ``jack_frame``."""

    jack_frame: int
    audio: np.ndarray


@dataclass(frozen=True)
class MidiMessage:
    """One MIDI message as received: raw ``data`` bytes and the JACK ``frame`` it arrived on."""

    data: bytes
    frame: int

    @property
    def status(self) -> int:
        """Status byte (e.g. 0xB0 for a control change on channel 1)."""
        return self.data[0]

    @property
    def channel(self) -> int | None:
        """0-based channel of a channel message, None for system messages."""
        return self.status & 0x0F if self.status < 0xF0 else None

    @property
    def kind(self) -> str:
        """``note_off``, ``note_on``, ``polytouch``, ``control_change``, ``program_change``,
        ``aftertouch``, ``pitchwheel`` or ``system``."""
        if self.status >= 0xF0:
            return "system"
        return _KINDS[(self.status >> 4) - 8]


_KINDS = ("note_off", "note_on", "polytouch", "control_change", "program_change",
          "aftertouch", "pitchwheel")


@dataclass(frozen=True)
class CallbackTimes:
    """The JACK callback's own run time per block, from the core's 1 us histogram."""

    histogram: tuple[int, ...]
    max_us: float

    @property
    def blocks(self) -> int:
        """Blocks counted."""
        return sum(self.histogram)

    def percentile(self, fraction: float) -> float:
        """Microseconds (bucket upper edge) within which ``fraction`` of blocks ran."""
        total, seen = self.blocks, 0
        for bucket, count in enumerate(self.histogram):
            seen += count
            if total and seen >= fraction * total:
                return float(bucket + 1)
        return 0.0

    def mean(self) -> float:
        """Mean microseconds (bucket midpoints)."""
        total = self.blocks
        return sum((k + 0.5) * c for k, c in enumerate(self.histogram)) / total if total else 0.0


class Core:
    """One native core (see the module docstring).

    ``crossfade``: the joint curves; ``own_frames_per_bar``: our own clock's bar length until
    told otherwise; ``free_run``: keep playing on our own clock while the transport is stopped.
    """

    def __init__(self, sample_rate: int, own_frames_per_bar: float, crossfade: Crossfade,
                 free_run: bool = False) -> None:
        self._native = native()
        ffi, lib = self._native.ffi, self._native.lib
        if crossfade.frames > lib.RB_MAX_FADE:
            raise CoreError(f"crossfade: at most {lib.RB_MAX_FADE} frames, got {crossfade.frames}")
        self.ffi, self.lib = ffi, lib
        self._region, self.struct = _huge_struct(ffi)
        lib.rb_init(self.struct, sample_rate, float(own_frames_per_bar), _floats(ffi, crossfade.fade_in),
                    _floats(ffi, crossfade.fade_out), crossfade.frames, int(free_run))
        self.crossfade = crossfade
        self.sample_rate = sample_rate
        self._loops: dict[int, Loop] = {}
        self._next_id = 1
        self._lock = threading.Lock()
        self._command = ffi.new("rb_command *")
        self._input_scratch = np.zeros((2, lib.RB_MAX_BLOCK), np.float32)
        self._client: Any = None
        #: (beats per bar, bpm) of the external tempo source while one is set.
        self.external: tuple[int, float] | None = None

    # -- commands (any ordinary thread) -------------------------------------------------------

    def send(self, kind: str, loop: Loop | None = None, a: float = 0.0, b: float = 0.0, c: float = 0.0,
             i: int = 0) -> None:
        """Queue one command (``kind``: NEXT, REFIT, BUSY, GAIN, OWN_TEMPO, TIMEBASE, FREE_RUN,
        MIDI_METER, SAMPLE_RATE, EXTERNAL, EXTERNAL_CLEAR, BURN); CoreError if the ring stays full."""
        with self._lock:
            command = self._command
            command.kind = getattr(self.lib, f"RB_CMD_{kind}")
            self._fill_loop(command.loop, loop)
            command.a, command.b, command.c, command.i = a, b, c, i
            if not self.lib.rb_push_command(self.struct, command):
                raise CoreError("the core's command ring is full (is the JACK client running?)")

    def _fill_loop(self, slot: Any, loop: Loop | None) -> None:
        if loop is None:
            slot.id = 0
            return
        handle, self._next_id = self._next_id, self._next_id + 1
        self._loops[handle] = loop
        audio = loop.audio
        slot.id = handle
        slot.left = self.ffi.cast("const float *", audio[0].ctypes.data)
        slot.right = self.ffi.cast("const float *", audio[1].ctypes.data)
        slot.frames, slot.tail, slot.bars = loop.frames, loop.tail, loop.bars
        slot.beats_per_bar, slot.serial, slot.version = loop.tempo.beats_per_bar, loop.serial, loop.version

    def set_sample_rate(self, sample_rate: int) -> None:
        """Follow a new server sample rate (loops are refitted by the worker)."""
        self.sample_rate = sample_rate
        self.send("SAMPLE_RATE", i=sample_rate)

    def set_external_grid(self, bar: int, bar_start_jack_frame: float, frames_per_bar: float,
                          beats_per_bar: int, bpm: float, rolling: bool) -> None:
        """An external tempo source (Ableton Link): bar lines at ``bar_start_jack_frame + k *
        frames_per_bar`` in JACK frame time, used after JACK transport and MIDI clock."""
        self.external = (beats_per_bar, bpm)
        self.send("EXTERNAL", a=bar_start_jack_frame, b=frames_per_bar, c=float(rolling), i=bar)

    def clear_external_grid(self) -> None:
        """Remove the external tempo source."""
        self.external = None
        self.send("EXTERNAL_CLEAR")

    # -- what the core hands back (one consumer each) -----------------------------------------

    def release_retired(self) -> int:
        """Drop the loops the core no longer holds (frees their audio here); returns how many."""
        released = 0
        while (handle := self.lib.rb_pop_retired(self.struct)) != 0:
            self._loops.pop(handle, None)
            released += 1
        return released

    def drain_midi(self) -> list[MidiMessage]:
        """Non-clock MIDI messages received since the last drain, oldest first."""
        out, message = [], self.ffi.new("rb_midi_message *")
        while self.lib.rb_pop_midi(self.struct, message):
            out.append(MidiMessage(bytes(message.data[0:message.size]), int(message.jack_frame)))
        return out

    def drain_bar_lines(self) -> list[BarLine]:
        """Bar lines passed since the last drain, oldest first."""
        out, line = [], self.ffi.new("rb_bar_line *")
        while self.lib.rb_pop_bar_line(self.struct, line):
            out.append(BarLine(int(line.jack_frame), int(line.frame), int(line.bar),
                               float(line.frames_per_bar), SOURCE_NAMES[line.source]))
        return out

    def drain_input(self) -> list[InputBlock]:
        """Captured input blocks since the last drain, oldest first (contiguous unless
        ``input_dropped`` grew)."""
        out, block = [], self.ffi.new("rb_input_block *")
        scratch = self._input_scratch
        left = self.ffi.cast("float *", scratch[0].ctypes.data)
        right = self.ffi.cast("float *", scratch[1].ctypes.data)
        while (frames := self.lib.rb_pop_input(self.struct, block, left, right, scratch.shape[1])) > 0:
            out.append(InputBlock(int(block.jack_frame), scratch[:, :frames].T.copy()))
        return out

    # -- readings (any thread) ----------------------------------------------------------------

    def counter(self, name: str) -> int:
        """One of the core's counters (blocks, xruns, late, underruns, resyncs, clips_started,
        repeats, midi_dropped, input_dropped, bars_lost, retired_lost, own_frame)."""
        return int(getattr(self.struct, name))

    def loop(self, handle: int) -> Loop | None:
        """The Python loop behind a core handle (None for 0 or a released one)."""
        return self._loops.get(int(handle)) if handle else None

    def clip_starts(self) -> tuple[ClipStart, ...]:
        """The newest loop starts (up to the log's capacity), oldest first."""
        count, capacity = int(self.struct.clips_written), self.lib.RB_CLIP_LOG
        rows = [self.struct.clips[k % capacity] for k in range(max(0, count - capacity), count)]
        return tuple(ClipStart(int(r.frame), int(r.jack_frame), int(r.bar), int(r.serial), bool(r.is_new),
                               int(r.into), int(r.version), int(r.offset)) for r in rows)

    def callback_times(self) -> CallbackTimes:
        """The callback time histogram since the last :meth:`reset_callback_times`."""
        histogram = tuple(int(v) for v in self.ffi.unpack(self.struct.histogram, self.lib.RB_HIST_BUCKETS))
        return CallbackTimes(histogram, float(self.struct.callback_max_us))

    def long_callbacks(self, microseconds: int) -> int:
        """How many callbacks since the last :meth:`reset_callback_times` took at least
        ``microseconds`` of wall time (read from the histogram: no race with the callback)."""
        first = max(0, min(int(microseconds), self.lib.RB_HIST_BUCKETS - 1))
        tail = self.ffi.unpack(self.struct.histogram + first, self.lib.RB_HIST_BUCKETS - first)
        return int(sum(tail))

    def reset_callback_times(self) -> None:
        """Start a new callback time histogram (and start delay maximum)."""
        self.lib.rb_reset_callback_times(self.struct)

    @property
    def tempo_source(self) -> str:
        """Name of the tempo source that placed the last block."""
        return SOURCE_NAMES[self.struct.tempo_source]

    # -- driving it ---------------------------------------------------------------------------

    def process(self, frames: int, transport_state: int, position: Any, events: Iterable[tuple[int, bytes]],
                jack_frame: int, left: np.ndarray, right: np.ndarray,
                inputs: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """One block offline (tests, render checks): the C block function on a simulated
        transport ``position`` (a ``jack_position_t`` cdata or None) and MIDI ``events``
        (``(offset, bytes)``). ``left``/``right``: float32 output arrays of ``frames``."""
        count = self._load_events(events)
        ins = (self._floats_ptr(inputs[0]), self._floats_ptr(inputs[1])) if inputs else (self.ffi.NULL,) * 2
        self.lib.rb_process(self.struct, frames, transport_state, position if position is not None else self.ffi.NULL,
                            count, jack_frame, self._floats_ptr(left), self._floats_ptr(right), *ins)

    def _load_events(self, events: Iterable[tuple[int, bytes]]) -> int:
        count = 0
        for offset, data in events:
            if count >= self.lib.RB_BLOCK_EVENTS:
                break
            event = self.struct.events[count]
            event.offset, event.size = offset, len(data) if len(data) <= 3 else 0
            for k, byte in enumerate(bytes(data)[:3]):
                event.data[k] = byte
            count += 1
        return count

    def _floats_ptr(self, array: np.ndarray) -> Any:
        if array.dtype != np.float32 or not array.flags.c_contiguous:
            raise CoreError(f"audio buffers: C-contiguous float32 expected, got {array.dtype}")
        return self.ffi.cast("float *", array.ctypes.data)

    def attach(self, client: Any, outputs: tuple[Any, Any], midi_in: Any, inputs: tuple[Any, Any] | None) -> None:
        """Register the core's process and xrun callbacks on a JACK-Client ``client`` (before
        activation), with its ports; ``inputs`` (in_L, in_R) turn input capture on."""
        ffi, lib, struct = self.ffi, self.lib, self.struct
        struct.client = _pointer(ffi, "jack_client_t *", client)
        struct.out_l, struct.out_r = (_pointer(ffi, "jack_port_t *", port) for port in outputs)
        struct.midi_in = _pointer(ffi, "jack_port_t *", midi_in)
        if inputs is not None:
            struct.in_l, struct.in_r = (_pointer(ffi, "jack_port_t *", port) for port in inputs)
            struct.audio_in = 1
        if lib.jack_set_process_callback(struct.client, ffi.addressof(lib, "rb_jack_process"), struct) != 0:
            raise CoreError("jack_set_process_callback failed")
        lib.jack_set_xrun_callback(struct.client, ffi.addressof(lib, "rb_jack_xrun"), struct)
        self._client = client
        # libjack may still call in after a server died under it or while Python exits: the
        # struct, and every loop it may read, outlive this object (one core per client, ~10 MB).
        _ATTACHED.append(self)

    def realtime_clock(self) -> int | None:
        """The Linux clock id of the JACK client's realtime thread's CPU time (for
        ``time.clock_gettime_ns``: time that thread ran, time the host stole excluded), once the
        client is active; None before, or where there is none."""
        if self._client is None:
            return None
        clock = self.lib.rb_thread_cpu_clock(self.struct.client)
        return clock if clock != -1 else None

    def burn(self, microseconds: int) -> None:
        """Fault injection (tests, benchmarks): the next JACK callback spins ``microseconds``
        on the CPU, an overrun of our own as a slow callback would cause."""
        self.send("BURN", i=microseconds)

    def take_timebase(self, bpm: float, beats_per_bar: int, beat_type: int, conditional: bool = True) -> bool:
        """Become JACK timebase master with our own tempo (BBT computed in the core); False when
        another client is master and ``conditional``."""
        self.lib.rb_timebase_init(self.ffi.addressof(self.struct, "timebase"), self.sample_rate,
                                  bpm, beats_per_bar, beat_type)
        result = self.lib.jack_set_timebase_callback(self.struct.client, int(conditional),
                                                     self.ffi.addressof(self.lib, "rb_jack_timebase"), self.struct)
        return result == 0


#: Cores registered with libjack: kept until the process ends (see :meth:`Core.attach`).
_ATTACHED: list[Core] = []


#: Transparent huge page size (x86-64, arm64 with 4 KiB pages).
HUGE_PAGE = 2 << 20


def _huge_struct(ffi: Any) -> tuple[Any, Any]:
    """(the mapping, an ``rb_core *`` inside it): zeroed anonymous memory aligned to
    :data:`HUGE_PAGE` and advised to use huge pages, so the callback's state spans a few TLB
    entries instead of thousands (the kernel may still give small pages)."""
    import mmap

    size = ffi.sizeof("rb_core")
    region = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    start = int(ffi.cast("uintptr_t", ffi.from_buffer(region)))
    offset = -start % HUGE_PAGE
    if hasattr(mmap, "MADV_HUGEPAGE"):
        region.madvise(mmap.MADV_HUGEPAGE, offset)  # from the aligned start to the mapping's end
    return region, ffi.cast("rb_core *", start + offset)


def _floats(ffi: Any, curve: np.ndarray) -> Any:
    return ffi.new("float[]", [float(v) for v in curve])


def _pointer(ffi: Any, ctype: str, jack_object: Any) -> Any:
    """A JACK-Client object's C pointer (``_ptr``, from JACK-Client's own ffi) as our cdata."""
    import jack

    return ffi.cast(ctype, int(jack._ffi.cast("uintptr_t", jack_object._ptr)))
