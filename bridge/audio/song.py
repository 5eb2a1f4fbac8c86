"""Real music for tests, benchmarks and demos: a short General MIDI song rendered by FluidSynth.

The song (drums, bass, chords, a lead) is composed here with mido, so no recording needs to
ship; FluidSynth with the Debian GM soundfont turns it into audio.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mido

from bridge.errors import BridgeError

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
TICKS = 480
CHORDS = ((57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62))  # Am F C G
DRUMS = {0: (36,), 1: (42,), 2: (38, 42), 3: (42,)}  # kick, hat, snare+hat, hat per beat


def compose(bpm: float = 120.0, bars: int = 4, lead_program: int = 81) -> mido.MidiFile:
    """A ``bars``-bar 4/4 song at ``bpm``: GM drums, bass, pad chords and a lead line."""
    song = mido.MidiFile(ticks_per_beat=TICKS)
    song.tracks.append(_tempo_track(bpm))
    song.tracks.append(_part(9, 0, _drum_notes(bars)))
    song.tracks.append(_part(1, 33, [(b * 4.0, 2.0, CHORDS[b % 4][0] - 24, 100) for b in range(bars)]
                              + [(b * 4.0 + 2, 2.0, CHORDS[b % 4][2] - 24, 90) for b in range(bars)]))
    song.tracks.append(_part(2, 89, [(b * 4.0, 4.0, p, 60) for b in range(bars) for p in CHORDS[b % 4]]))
    song.tracks.append(_part(3, lead_program, _lead_notes(bars)))
    return song


def _tempo_track(bpm: float) -> mido.MidiTrack:
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    return track


def _drum_notes(bars: int) -> list[tuple[float, float, int, int]]:
    return [(bar * 4.0 + beat + half, 0.25, note, 110 if half == 0 else 70)
            for bar in range(bars) for beat in range(4) for half in (0.0, 0.5)
            for note in (DRUMS[beat] if half == 0 else (42,))]


def _lead_notes(bars: int) -> list[tuple[float, float, int, int]]:
    scale = (69, 72, 74, 76, 79, 76, 74, 72)
    return [(bar * 4.0 + step * 0.5, 0.45, scale[(bar * 3 + step) % 8], 85)
            for bar in range(bars) for step in range(8) if (bar + step) % 3]


def _part(channel: int, program: int, notes: list[tuple[float, float, int, int]]) -> mido.MidiTrack:
    """A track from ``(start_beat, length_beats, note, velocity)`` tuples."""
    events: list[tuple[int, mido.Message]] = [(0, mido.Message("program_change", channel=channel, program=program))]
    for start, length, note, velocity in notes:
        on = round(start * TICKS)
        events.append((on, mido.Message("note_on", channel=channel, note=note, velocity=velocity)))
        events.append((on + round(length * TICKS), mido.Message("note_off", channel=channel, note=note)))
    events.sort(key=lambda item: (item[0], item[1].type == "note_on"))
    track, now = mido.MidiTrack(), 0
    for tick, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    return track


def render(song: mido.MidiFile, wav_path: str | Path, sample_rate: int = 44100) -> Path:
    """Render ``song`` to a stereo WAV with FluidSynth; raises BridgeError if it is missing."""
    soundfont = next((s for s in SOUNDFONTS if Path(s).is_file()), None)
    if shutil.which("fluidsynth") is None or soundfont is None:
        raise BridgeError("fluidsynth with a GM soundfont is needed (apt-get install fluidsynth fluid-soundfont-gm)")
    wav_path = Path(wav_path)
    midi_path = wav_path.with_suffix(".mid")
    song.save(str(midi_path))
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sample_rate), "-F", str(wav_path),
                    soundfont, str(midi_path)], check=True, capture_output=True, timeout=120)
    return wav_path


#: Drum loops for restyling checks: per bar, (beat, GM drum note, velocity); kick 36, snare 38.
DRUM_LOOPS = {
    "backbeat": ((0.0, 36, 120), (1.0, 38, 110), (2.0, 36, 120), (3.0, 38, 110)),
    "syncopated": ((0.0, 36, 120), (0.75, 36, 110), (1.5, 38, 110), (2.5, 36, 120), (3.25, 38, 110)),
    "halftime": ((0.0, 36, 120), (0.5, 36, 100), (2.0, 38, 120), (3.5, 36, 110)),
}


def compose_drums(bpm: float, bars: int, pattern: str = "backbeat") -> mido.MidiFile:
    """``bars`` bars of the GM drum loop ``pattern`` (a key of :data:`DRUM_LOOPS`) at ``bpm``."""
    hits = DRUM_LOOPS[pattern]
    song = mido.MidiFile(ticks_per_beat=TICKS)
    song.tracks.append(_tempo_track(bpm))
    song.tracks.append(_part(9, 0, [(bar * 4.0 + beat, 0.2, note, velocity)
                                    for bar in range(bars) for beat, note, velocity in hits]))
    return song
