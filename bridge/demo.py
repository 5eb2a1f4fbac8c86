"""The demo session: what ``riff-bridge demo`` (the README's main-job command) runs."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bridge.audio.codec import SpectrogramCodec
from bridge.audio.quality import spectral_convergence
from bridge.audio.song import compose, render
from bridge.audio.wav import read_audio, write_audio
from bridge.audio.image import decode_image
from bridge.recording import next_free_path


def run_codec_demo(out_dir: str | Path, bpm: float = 120.0) -> int:
    """Song -> spectrogram images -> audio, written to ``out_dir``; prints a summary table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    codec = SpectrogramCodec()
    with tempfile.TemporaryDirectory() as tmp:
        song, rate = read_audio(render(compose(bpm, 8), Path(tmp) / "song.wav"))
    clip = 225351
    rows = []
    for index, start in enumerate(range(0, song.shape[0] - clip, clip)):
        image = codec.audio_to_image(song[start:start + clip, 0], rate)
        image.save(next_free_path(out / f"clip{index}.png"), exif=image.getexif())
        began = time.perf_counter()
        mel, _ = decode_image(image)
        audio = codec.mel_to_audio(mel)[0].numpy()
        seconds = time.perf_counter() - began
        write_audio(next_free_path(out / f"clip{index}.wav"), audio, rate)
        rows.append((index, seconds, spectral_convergence(mel[0], audio, codec)))
    print(f"{'clip':>4} {'decode s':>9} {'x realtime':>10} {'SC':>7}")
    for index, seconds, sc in rows:
        print(f"{index:>4} {seconds:9.3f} {clip / rate / seconds:10.1f} {sc:7.4f}")
    print(f"wrote {len(rows)} clips (PNG + WAV) to {out}/")
    return 0
