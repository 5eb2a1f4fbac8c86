"""Procedurally composed MIDI loops: drums, bass, chords, pads and a lead, in 4/4 or 3/4.

A :class:`LoopSpec` says what plays (its caption class's parts), at which tempo, in which
meter and key, with which mood; :func:`loop_notes` turns it into General MIDI notes
``(start_seconds, length_seconds, channel, note, velocity)`` over ``seconds`` of time, with
small random variations drawn from the spec's own seed, so every spec composes the same loop
on every machine. Channel 9 is GM percussion.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bridge.errors import ParameterError, check_int, check_range

#: GM percussion notes.
KICK, SNARE, RIM, CLAP, CLOSED_HAT, OPEN_HAT, RIDE, TOM = 36, 38, 37, 39, 42, 46, 51, 45
#: Drum styles: per beat-fraction step (16ths), the notes of one 4/4 bar (3/4 drops the last beat).
DRUM_STYLES = ("rock", "house", "techno", "breakbeat")
#: Melodic parts and their GM programs (one chosen per loop).
PROGRAMS: dict[str, tuple[int, ...]] = {
    "bass": (33, 34, 38, 39), "piano": (0, 1, 4), "organ": (16, 17, 18),
    "pad": (88, 89, 91, 94), "lead": (80, 81, 73, 85),
}
CHANNELS = {"bass": 1, "piano": 2, "organ": 3, "pad": 4, "lead": 5}
PARTS = DRUM_STYLES + tuple(PROGRAMS)
MOODS = ("bright", "dark", "mellow", "energetic")
#: Chord progressions as scale degrees (0-based) for major and minor keys.
PROGRESSIONS = {"major": ((0, 4, 5, 3), (0, 3, 4, 4), (0, 5, 3, 4)),
                "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6))}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}

Note = tuple[float, float, int, int, int]


@dataclass(frozen=True)
class LoopSpec:
    """One loop: ``parts`` (drum style and/or melodic parts), ``bpm`` 60-200, ``beats`` per
    bar (3 or 4), ``key`` root 0-11, ``mood`` (one of :data:`MOODS`), ``seed`` for variations."""

    parts: tuple[str, ...]
    bpm: float
    beats: int = 4
    key: int = 0
    mood: str = "bright"
    seed: int = 0

    def __post_init__(self) -> None:
        for part in self.parts:
            if part not in PARTS:
                raise ParameterError("parts", "names from " + ", ".join(PARTS), part)
        check_range("bpm", self.bpm, 60.0, 200.0)
        if self.beats not in (3, 4):
            raise ParameterError("beats", "3 or 4", self.beats)
        check_int("key", self.key, 0, 11)
        if self.mood not in MOODS:
            raise ParameterError("mood", "one of " + ", ".join(MOODS), self.mood)

    @property
    def mode(self) -> str:
        """``minor`` for dark loops, else major (bright) or a seeded choice (mellow, energetic)."""
        if self.mood in ("bright", "dark"):
            return "major" if self.mood == "bright" else "minor"
        return ("major", "minor")[self.seed % 2]

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.bpm

    @property
    def velocity_scale(self) -> float:
        return {"mellow": 0.7, "energetic": 1.15}.get(self.mood, 1.0)


def loop_notes(spec: LoopSpec, seconds: float) -> list[Note]:
    """The loop's notes, bars repeated until ``seconds`` is covered (later notes dropped)."""
    rng = random.Random(spec.seed)
    bars = int(seconds / (spec.beat_seconds * spec.beats)) + 1
    chords = _chords(spec, rng)
    notes: list[Note] = []
    for part in spec.parts:
        if part in DRUM_STYLES:
            notes += _drums(spec, part, bars, rng)
        else:
            notes += _PART_WRITERS[part](spec, chords, bars, rng)
    scale = spec.velocity_scale
    return sorted((s, l, c, n, max(1, min(127, round(v * scale)))) for s, l, c, n, v in notes if s < seconds)


def programs(spec: LoopSpec) -> dict[int, int]:
    """Channel -> GM program for the melodic parts (a seeded choice per part)."""
    rng = random.Random(spec.seed + 7919)
    return {CHANNELS[p]: rng.choice(PROGRAMS[p]) for p in spec.parts if p in PROGRAMS}


def _chords(spec: LoopSpec, rng: random.Random) -> list[tuple[int, int, int]]:
    """Four triads (MIDI notes around middle C) of a seeded progression in the spec's key."""
    scale = SCALES[spec.mode]
    degrees = rng.choice(PROGRESSIONS[spec.mode])
    return [tuple(60 + spec.key - (12 if spec.key > 6 else 0) + _degree(scale, d + i * 2) for i in range(3))
            for d in degrees]


def _degree(scale: tuple[int, ...], degree: int) -> int:
    return scale[degree % 7] + 12 * (degree // 7)


def _at(spec: LoopSpec, bar: int, beat: float) -> float:
    return (bar * spec.beats + beat) * spec.beat_seconds


# -- drums ----------------------------------------------------------------------------------

def _drum_steps(style: str, rng: random.Random) -> dict[float, tuple[tuple[int, int], ...]]:
    """Beat position -> (note, velocity) hits of one 4/4 bar in ``style``."""
    eighths = [i / 2 for i in range(8)]
    sixteenths = [i / 4 for i in range(16)]
    hits: dict[float, list[tuple[int, int]]] = {}

    def add(beat: float, note: int, velocity: int) -> None:
        hits.setdefault(beat, []).append((note, velocity))

    if style == "rock":
        for b in (0, 2) + ((2.5,) if rng.random() < 0.5 else ()):
            add(b, KICK, 115)
        for b in (1, 3):
            add(b, SNARE, 110)
        for b in eighths:
            add(b, CLOSED_HAT if rng.random() < 0.85 else RIDE, 90 if b % 1 == 0 else 65)
    elif style == "house":
        for b in range(4):
            add(b, KICK, 120)
            add(b + 0.5, OPEN_HAT, 80)
        for b in (1, 3):
            add(b, CLAP, 100)
        for b in sixteenths[1::2]:
            add(b, CLOSED_HAT, 45)
    elif style == "techno":
        for b in range(4):
            add(b, KICK, 125)
        for b in sixteenths:
            add(b, CLOSED_HAT, 75 if b % 0.5 == 0 else 50)
        for b in (1, 3):
            add(b, RIM if rng.random() < 0.5 else CLAP, 85)
        add(rng.choice((1.75, 2.75, 3.25)), RIM, 70)
    else:  # breakbeat
        for b in (0, 1.75 if rng.random() < 0.5 else 0.5, 2.5):
            add(b, KICK, 118)
        for b in (1, 3):
            add(b, SNARE, 112)
        add(rng.choice((2.25, 3.75)), SNARE, 60)
        for b in eighths:
            add(b, CLOSED_HAT, 80 if b % 1 == 0 else 60)
    return {beat: tuple(h) for beat, h in hits.items()}


def _drums(spec: LoopSpec, style: str, bars: int, rng: random.Random) -> list[Note]:
    steps = _drum_steps(style, rng)
    notes = []
    for bar in range(bars):
        for beat, hits in steps.items():
            if beat < spec.beats:
                notes += [(_at(spec, bar, beat), 0.1, 9, note, v) for note, v in hits]
        if spec.beats == 3 and style in ("rock", "breakbeat"):
            notes = [n for n in notes if not (n[3] == SNARE and abs(n[0] - _at(spec, bar, 1)) < 1e-9)] \
                + [(_at(spec, bar, 2), 0.1, 9, SNARE, 105)]
    return notes


# -- melodic parts ----------------------------------------------------------------------------

def _bass(spec: LoopSpec, chords: list, bars: int, rng: random.Random) -> list[Note]:
    rhythm = rng.choice(((0, 1, 2, 3), (0, 0.5, 1.5, 2, 2.5, 3.5), (0, 1.5, 2, 3), (0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5)))
    octave = (0, 12, 7)
    notes = []
    for bar in range(bars):
        root = chords[bar % 4][0] - 24
        for i, beat in enumerate(b for b in rhythm if b < spec.beats):
            pitch = root + (octave[i % 3] if rng.random() < 0.3 else 0)
            notes.append((_at(spec, bar, beat), 0.4 * spec.beat_seconds, CHANNELS["bass"], pitch, 105))
    return notes


def _piano(spec: LoopSpec, chords: list, bars: int, rng: random.Random) -> list[Note]:
    rhythm = rng.choice(((0, 1, 2, 3), (0, 1.5, 3), (0, 2), (0, 0.5, 1.5, 2.5)))
    notes = []
    for bar in range(bars):
        for beat in (b for b in rhythm if b < spec.beats):
            for pitch in chords[bar % 4]:
                notes.append((_at(spec, bar, beat), 0.8 * spec.beat_seconds, CHANNELS["piano"], pitch, 95))
    return notes


def _organ(spec: LoopSpec, chords: list, bars: int, rng: random.Random) -> list[Note]:
    hold = rng.choice((1.0, 2.0))
    notes = []
    for bar in range(bars):
        beat = 0.0
        while beat < spec.beats:
            for pitch in chords[bar % 4]:
                notes.append((_at(spec, bar, beat), 0.9 * hold * spec.beat_seconds, CHANNELS["organ"], pitch, 90))
            beat += hold
    return notes


def _pad(spec: LoopSpec, chords: list, bars: int, rng: random.Random) -> list[Note]:
    notes = []
    for bar in range(bars):
        for pitch in chords[bar % 4] + (chords[bar % 4][0] - 12,):
            notes.append((_at(spec, bar, 0), spec.beats * spec.beat_seconds, CHANNELS["pad"], pitch, 80))
    return notes


def _lead(spec: LoopSpec, chords: list, bars: int, rng: random.Random) -> list[Note]:
    scale = SCALES[spec.mode]
    phrase = [rng.randrange(0, 9) for _ in range(8)]
    rests = {i for i in range(8) if rng.random() < 0.3}
    notes = []
    for bar in range(bars):
        for step in range(spec.beats * 2):
            if step % 8 in rests:
                continue
            pitch = 72 + spec.key - (12 if spec.key > 6 else 0) + _degree(scale, phrase[step % 8] + (bar % 2) * 2)
            notes.append((_at(spec, bar, step / 2), 0.45 * spec.beat_seconds, CHANNELS["lead"], pitch, 95))
    return notes


_PART_WRITERS = {"bass": _bass, "piano": _piano, "organ": _organ, "pad": _pad, "lead": _lead}
