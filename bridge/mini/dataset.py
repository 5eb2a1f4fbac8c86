"""The mini model's training data: captioned loops rendered by FluidSynth, as Riffusion images.

Recipe of :func:`build_dataset` (deterministic for a seed and a count):
  1. specs: loop ``i`` is of caption class ``i mod len(CLASSES)`` with tempo (70-180 BPM),
     meter (3/4 one time in four), key and mood drawn from ``Random(seed, i)``;
  2. composition: each loop's notes over :data:`SEGMENT_SECONDS` (:mod:`~bridge.mini.composer`);
  3. rendering: loops in batches, one MIDI file per batch (segments separated by silence,
     a fixed MIDI tempo with note times in seconds), one FluidSynth run per batch (loading the
     148 MB soundfont once per batch instead of once per loop);
  4. images: each segment, mixed to mono, encoded by the project's codec
     (:meth:`SpectrogramCodec.audio_to_image`); kept as ``(512, width)`` uint8 grey levels.
The result is cached as one ``.npz`` (images, captions, specs as JSON) per seed and count.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import mido
import numpy as np

from bridge.audio.song import render
from bridge.mini.composer import LoopSpec, MOODS, loop_notes, programs
from bridge.mini.vocabulary import CLASSES, full_caption

#: Seconds of each rendered loop (image width 601 px), and of silence after it.
SEGMENT_SECONDS = 6.0
GAP_SECONDS = 2.0
TEMPO_RANGE = (70.0, 180.0)
BATCH = 48
RATE = 44100
DATA_VERSION = "mini-data-v1"
_TICKS_PER_SECOND = 1920  # 960 ticks per beat at the file's fixed 120 BPM


@dataclass(frozen=True)
class Dataset:
    """``images``: (n, 512, width) uint8 grey levels (255 silence); ``names``: caption class
    of each loop; ``specs``: the loops' :class:`LoopSpec` s."""

    images: np.ndarray
    names: tuple[str, ...]
    specs: tuple[LoopSpec, ...]

    def captions(self) -> list[str]:
        return [full_caption(n, s) for n, s in zip(self.names, self.specs)]

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"names": self.names, "specs": [asdict(s) for s in self.specs]})
        tmp = path.with_suffix(".partial.npz")
        np.savez(tmp, images=self.images, meta=np.array(meta))
        tmp.rename(path)
        return path

    @classmethod
    def load(cls, path: Path) -> "Dataset":
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            specs = tuple(LoopSpec(**{**s, "parts": tuple(s["parts"])}) for s in meta["specs"])
            return cls(data["images"], tuple(meta["names"]), specs)


def loop_specs(count: int, seed: int) -> list[tuple[str, LoopSpec]]:
    """The (class name, spec) of each of ``count`` loops (recipe step 1)."""
    names = list(CLASSES)
    out = []
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + i)
        name = names[i % len(names)]
        spec = LoopSpec(CLASSES[name], bpm=float(round(rng.uniform(*TEMPO_RANGE))),
                        beats=3 if rng.random() < 0.25 else 4, key=rng.randrange(12),
                        mood=rng.choice(MOODS), seed=rng.randrange(2**31))
        out.append((name, spec))
    return out


def batch_midi(specs: list[LoopSpec]) -> mido.MidiFile:
    """One MIDI file holding ``specs`` one after another (recipe step 3)."""
    song = mido.MidiFile(ticks_per_beat=960)
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))
    events: list[tuple[int, int, mido.Message]] = []
    for index, spec in enumerate(specs):
        start = index * (SEGMENT_SECONDS + GAP_SECONDS)
        tick0 = round(start * _TICKS_PER_SECOND)
        for channel, program in programs(spec).items():
            events.append((tick0, 0, mido.Message("program_change", channel=channel, program=program)))
        for at, length, channel, note, velocity in loop_notes(spec, SEGMENT_SECONDS):
            on = round((start + at) * _TICKS_PER_SECOND)
            off = round((start + min(at + length, SEGMENT_SECONDS)) * _TICKS_PER_SECOND)
            events.append((on, 2, mido.Message("note_on", channel=channel, note=note, velocity=velocity)))
            events.append((off, 1, mido.Message("note_off", channel=channel, note=note)))
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    return song


def render_batch(specs: list[LoopSpec], work: Path) -> list[np.ndarray]:
    """Mono float32 audio of each loop, ``SEGMENT_SECONDS`` long, rendered in one run."""
    import soundfile

    wav = render(batch_midi(specs), work / "batch.wav", RATE)
    audio, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    length = round(SEGMENT_SECONDS * RATE)
    clips = []
    for index in range(len(specs)):
        start = round(index * (SEGMENT_SECONDS + GAP_SECONDS) * RATE)
        clip = np.zeros(length, np.float32)
        piece = mono[start:start + length]
        clip[: len(piece)] = piece
        clips.append(clip)
    return clips


def image_rows(audio: np.ndarray) -> np.ndarray:
    """``(512, width)`` uint8 grey levels of mono ``audio`` by the project's codec."""
    from bridge.audio.codec import SpectrogramCodec

    image = SpectrogramCodec().audio_to_image(audio[:, None], RATE)
    return np.asarray(image.convert("RGB"))[:, :, 0].copy()


def build_dataset(count: int, seed: int, progress: Callable[[int], None] | None = None) -> Dataset:
    """Compose, render and encode ``count`` loops (module recipe)."""
    pairs = loop_specs(count, seed)
    images = []
    with tempfile.TemporaryDirectory(prefix="riff-mini-") as work:
        for first in range(0, count, BATCH):
            specs = [spec for _, spec in pairs[first:first + BATCH]]
            for clip in render_batch(specs, Path(work)):
                images.append(image_rows(clip))
                if progress is not None:
                    progress(1)
    return Dataset(np.stack(images), tuple(n for n, _ in pairs), tuple(s for _, s in pairs))


def dataset_path(count: int, seed: int) -> Path:
    from bridge.engine.tiny import cache_root

    return cache_root() / "mini-data" / f"{DATA_VERSION}-seed{seed}-n{count}.npz"


def cached_dataset(count: int, seed: int, progress: Callable[[int], None] | None = None) -> Dataset:
    """The dataset from the cache, built and cached first when missing."""
    path = dataset_path(count, seed)
    if path.is_file():
        return Dataset.load(path)
    dataset = build_dataset(count, seed, progress)
    dataset.save(path)
    return dataset
