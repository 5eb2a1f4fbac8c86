"""Seed images for img2img: built-in drum grids of our own making, image files, audio files.

Every seed image comes back as an RGB spectrogram image ``n_mels`` high and exactly the
request's generation width wide:
  - built-in names (:data:`BUILTIN_SEEDS`): ``grid`` (kick, snare, eighth hats), ``kick``
    (four on the floor) and ``pulse`` (a broadband click on each beat) synthesized at the request's tempo (120 BPM when it has none) for its
    exact length, encoded with the codec; ``silence`` is a blank (white) image; ``accent``
    is drawn by the model itself (the prompt's own sound accented on every beat,
    :mod:`bridge.engine.accent`), so it needs the ``paint`` callable of an engine;
  - image files are resized to the generation width (a 512 px Riffusion seed holding two
    bars becomes two bars at the request's tempo);
  - audio files (see :data:`AUDIO_SUFFIXES`) are cut or padded to the clip's duration at
    their own rate, then encoded with the codec, so their tempo is kept.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from bridge.audio.codec import SpectrogramCodec
from bridge.audio.image import load_image
from bridge.audio.wav import read_audio
from bridge.engine.accent import accent_image, first_pass
from bridge.engine.drums import DrumPattern
from bridge.engine.request import GenerationRequest
from bridge.errors import InputFileError, ParameterError

#: The built-in seed the model paints itself (see :mod:`bridge.engine.accent`).
ACCENT = "accent"
BUILTIN_SEEDS = ("grid", "kick", "pulse", "silence", ACCENT)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".mp3")
#: Tempo of built-in grids for requests that give a width but no tempo.
DEFAULT_BPM = 120.0
_RATE = 44100
_ALLOWED = "a built-in name (" + ", ".join(BUILTIN_SEEDS) + ") or an image or audio file"
#: Seed images kept per kind (one per tempo and length: a 4-bar image is up to 1.6 MB, and a
#: live session only reuses the current tempo's and the one before).
CACHED_SEEDS = 4


def seed_image(source: str, request: GenerationRequest, codec: SpectrogramCodec | None = None,
               paint: Callable[[GenerationRequest], Image.Image] | None = None) -> Image.Image:
    """The seed image ``source`` stands for, fitted to ``request`` (see the module doc).
    ``paint``: a request's spectrogram image by the model (needed for ``accent`` only).

    Raises ParameterError for an unknown name, or for ``accent`` without ``paint``;
    InputFileError for a missing or unreadable file.
    """
    codec = codec or SpectrogramCodec()
    width, height = request.generation_width(), codec.params.n_mels
    if source == ACCENT:
        if paint is None:
            raise ParameterError("seed_image", "a seed image that needs no model here (accent is drawn by an engine)", source)
        return fit_image(accent_image(paint(first_pass(request)), request), width, height)
    if source in BUILTIN_SEEDS:
        bpm = float(request.bpm or DEFAULT_BPM)
        return _builtin(source, bpm, request.beats_per_bar, request.num_samples(_RATE), width, height).copy()
    path = check_seed_source(source)
    assert path is not None
    stamp = path.stat().st_mtime_ns
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return _from_audio(str(path), stamp, request.num_samples(_RATE) / _RATE, width, codec).copy()
    return _from_image(str(path), stamp, width, height).copy()


def check_seed_source(source: str) -> Path | None:
    """None for a built-in name, the file for an existing path; else the clearest error
    (InputFileError for what looks like a path, ParameterError for an unknown name)."""
    if source in BUILTIN_SEEDS:
        return None
    return existing_file(source, "seed_image", _ALLOWED)


def existing_file(source: str, name: str, allowed: str) -> Path:
    """``source`` as an existing file; InputFileError if it looks like a path, else
    ParameterError naming ``name`` and the ``allowed`` values."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.suffix or "/" in source or "\\" in source:
        raise InputFileError(path, "no such file")
    raise ParameterError(name, allowed, source)


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` as RGB of exactly ``width`` x ``height`` (resampled when it differs)."""
    rgb = image.convert("RGB")
    if rgb.size == (width, height):
        return rgb
    return rgb.resize((width, height), Image.Resampling.BICUBIC)


@lru_cache(maxsize=CACHED_SEEDS)
def _builtin(name: str, bpm: float, beats_per_bar: int, samples: int, width: int, height: int) -> Image.Image:
    if name == "silence":
        return Image.new("RGB", (width, height), (255, 255, 255))
    audio = DrumPattern(name, bpm, beats_per_bar).render(samples, _RATE)
    return fit_image(SpectrogramCodec().audio_to_image(audio, _RATE), width, height)


@lru_cache(maxsize=CACHED_SEEDS)
def _from_image(path: str, stamp: int, width: int, height: int) -> Image.Image:
    return fit_image(load_image(path), width, height)


@lru_cache(maxsize=CACHED_SEEDS)
def _from_audio(path: str, stamp: int, seconds: float, width: int, codec: SpectrogramCodec) -> Image.Image:
    audio, rate = read_audio(path)
    frames = round(seconds * rate)
    fitted = np.zeros((frames, audio.shape[1]), dtype=np.float32)
    fitted[: min(frames, len(audio))] = audio[:frames]
    image = codec.audio_to_image(fitted, rate)
    return fit_image(image, width, codec.params.n_mels)

