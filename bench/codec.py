"""Benchmark: image-to-audio speed and quality, the plain Riffusion recipe against ours.

Clips: the reference song clips from ../shared/riffusion (when present) and FluidSynth
renderings of a GM song at two tempos, each cut to 5.11 s (512 px) and encoded to an image
first. Quality is spectral convergence of the 0-10 kHz mel magnitude (lower is better).
Prints one table; ratios are against the plain recipe measured in the same run.

    .venv/bin/python bench/codec.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bridge.audio.codec import SpectrogramCodec
from bridge.audio.image import decode_image
from bridge.audio.quality import plain_mel_to_audio, spectral_convergence
from bridge.audio.song import compose, render
from bridge.audio.wav import read_audio

SHARED = Path(__file__).resolve().parents[2] / "shared" / "riffusion" / "test_data" / "clips"
CLIP_SAMPLES = 225351  # 512 px


def load_clips(folder: Path) -> dict[str, np.ndarray]:
    """Name -> mono 5.11 s clip (first channel) of every benchmark source."""
    clips = {}
    for wav in sorted(SHARED.glob("*.wav")):
        audio, _ = read_audio(wav)
        clips[wav.name[:6]] = audio[:CLIP_SAMPLES, 0]
    for bpm in (96, 128):
        audio, _ = read_audio(render(compose(bpm, 4), folder / f"song{bpm}.wav"))
        clips[f"gm{bpm}"] = audio[44100 : 44100 + CLIP_SAMPLES, 0]
    return clips


def timed(fn, repeats: int) -> tuple[float, torch.Tensor]:
    """Best wall time of ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(clips: dict[str, np.ndarray], repeats: int) -> dict[str, dict[str, list[float]]]:
    """Seconds and convergence per method per clip."""
    codec = SpectrogramCodec()
    methods = {
        "plain recipe (torch.stft, GL32, 17640)": lambda mel: plain_mel_to_audio(mel, codec)[0],
        "plain math on our STFT loop": lambda mel: plain_mel_to_audio(mel, codec, fast_loop=True)[0],
        f"ours (PGHI + GL{codec.iterations} @ 21 kHz, 2x pad)": lambda mel: codec.mel_to_audio(mel)[0],
        "ours, 24 iterations": lambda mel: SpectrogramCodec(iterations=24).mel_to_audio(mel)[0],
    }
    results = {name: {"sec": [], "sc": []} for name in methods}
    for audio in clips.values():
        mel, _ = decode_image(codec.audio_to_image(audio, 44100))
        for name, fn in methods.items():
            fn(mel)  # warm caches (filterbanks, pseudo-inverse)
            seconds, out = timed(lambda: fn(mel), 1 if name.startswith("plain") else repeats)
            results[name]["sec"].append(seconds)
            results[name]["sc"].append(spectral_convergence(mel[0], out, codec))
    return results


def batched_seconds(clips: dict[str, np.ndarray], repeats: int) -> float:
    """Seconds per clip when all clips decode in one batch."""
    codec = SpectrogramCodec()
    mels = np.stack([decode_image(codec.audio_to_image(a, 44100))[0] for a in clips.values()])
    seconds, _ = timed(lambda: codec.mel_to_audio(mels), repeats)
    return seconds / len(clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        clips = load_clips(Path(tmp))
    results = measure(clips, args.repeats)
    plain = statistics.mean(next(iter(results.values()))["sec"])
    clip_seconds = CLIP_SAMPLES / 44100
    print(f"clips: {', '.join(clips)} ({clip_seconds:.2f} s each), torch threads: {torch.get_num_threads()}")
    names = "".join(f" {n:>7}" for n in clips)
    print(f"{'method':<40} {'s/clip':>8} {'x realtime':>10} {'vs plain':>9} {'SC mean':>8}{names}")
    for name, r in results.items():
        sec = statistics.mean(r["sec"])
        per_clip = "".join(f" {v:7.4f}" for v in r["sc"])
        print(f"{name:<40} {sec:8.3f} {clip_seconds / sec:10.1f} {plain / sec:8.1f}x "
              f"{statistics.mean(r['sc']):8.4f}{per_clip}")
    sec = batched_seconds(clips, args.repeats)
    print(f"{'ours, batch of ' + str(len(clips)) + ' (per clip)':<40} {sec:8.3f} {clip_seconds / sec:10.1f} {plain / sec:8.1f}x")


if __name__ == "__main__":
    main()
