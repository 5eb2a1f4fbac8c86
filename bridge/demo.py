"""The demo session that ``riff-bridge demo`` (the README's main-job command) runs.

Recipe:
  1. a private JACK server (dummy backend) unless one is running;
  2. a :class:`~bridge.session.Session` with the mini model (or ``--model``), riff-bridge as
     JACK timebase master, OSC on a free loopback port, clips recorded to ``OUT/clips``;
  3. a capture client (a separate JACK client, as a DAW track) records the outputs and the
     public transport position; the transport rolls;
  4. a scripted session over OSC, paced by clips actually played: prompt change, an alpha
     sweep, a tempo change, a preset load;
  5. a summary table (clips, bar alignment error, gaps, late clips, xruns, real-time factor,
     beat contrast of the recording at the final tempo: :func:`bridge.mini.evaluation.beat_contrast`)
     and ``OUT/session.wav`` + ``OUT/session.png`` (the recording as a spectrogram strip).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.live.server import PRIVATE_PERIOD, ensure_server

#: (clips played before the step, OSC address, value): the scripted performance.
SCRIPT: tuple[tuple[int, str, Any], ...] = (
    (1, "/riff/set/prompt_b", "rock drums with piano chords"),
    (2, "/riff/set/alpha", 0.25),
    (3, "/riff/set/alpha", 0.5),
    (3, "/riff/set/bpm", 100.0),
    (4, "/riff/set/alpha", 0.75),
    (5, "/riff/set/alpha", 1.0),
    (6, "/riff/preset/load", "house"),
    (7, "/riff/set/alpha", 0.5),
    (8, "/riff/set/alpha", 1.0),
)
DEMO_CLIPS = 9


@dataclass(frozen=True)
class DemoResult:
    """Figures of one demo run (also printed as the summary table)."""

    clips_generated: int
    clips_played: int
    max_alignment_frames: float
    longest_gap_frames: int
    late_clips: int
    xruns: int
    real_time_factor: float
    failures: int
    tempo_bpm: float
    seconds: float
    sample_rate: int
    beat_contrast: float = float("nan")
    #: Overruns of riff-bridge's own callback (:mod:`bridge.live.overruns`); the xruns above
    #: count every client's, the demo's Python recorder included.
    overruns: int = 0
    #: jackd's attribution of the xruns ("client state: count"), when the demo started jackd.
    xrun_causes: str = ""


def run_demo(out_dir: str | Path, model: str = "mini", bpm: float = 120.0, bars: int = 2,
             clips: int = DEMO_CLIPS, timeout: float = 240.0, period: int = PRIVATE_PERIOD) -> DemoResult:
    """Run the scripted session; writes into ``out_dir`` and returns the figures. ``period``:
    frames per period of the private JACK server, when one is started."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with ensure_server(period=period) as private:
        if private is not None:
            print(f"started a private JACK server {private.name!r} (dummy backend, "
                  f"{private.sample_rate} Hz, {private.period} frames)")
        session, osc = _session(out, model, bpm, bars)
        with session:
            capture = _capture(session, timeout)
            began = time.monotonic()
            with _overrun_watch(session, private) as watch:
                _perform(session, osc, clips, timeout)
            metrics = session.live.metrics()
            boundaries = session.live.boundaries()
            recorded = capture.stop()
        causes = ", ".join(f"{k}: {v}" for k, v in sorted(private.xrun_causes().items())) if private else ""
    result = replace(_result(metrics, boundaries, recorded, time.monotonic() - began),
                     overruns=watch.report().busy, xrun_causes=causes)
    _write(out, recorded)
    return result


def _overrun_watch(session: Any, server: Any) -> Any:
    """An :class:`~bridge.live.overruns.OverrunWatch` over riff-bridge's client (jackd's log
    read too when ``server`` is the private server the demo started)."""
    from bridge.live.overruns import watch_core

    output = session.parts.output
    return watch_core(session.live.core, output.client.name, server, output.block_size, output.sample_rate)


def _session(out: Path, model: str, bpm: float, bars: int) -> tuple[Any, Any]:
    """The session under test and an OSC client pointed at it."""
    from pythonosc.udp_client import SimpleUDPClient

    from bridge.engine.factory import start_engine
    from bridge.control.presets import PresetStore
    from bridge.control.surfaces import ControlSurfaces
    from bridge.live.engine import LiveOptions
    from bridge.live.jackoutput import JackOutput
    from bridge.recording import ClipRecorder
    from bridge.session import Session, SessionParts
    from bridge.state import ControlState, StateStore

    store = StateStore(ControlState(prompt_a="house drums with bass line",
                                    prompt_b="house drums with bass line", bpm=bpm, bars=bars,
                                    steps=12, seed_image="accent", denoising=0.5))
    surfaces = ControlSurfaces(store, presets=PresetStore(out / "presets"), osc_port=0, midi=None,
                               controller=None)
    parts = SessionParts(store, start_engine(model), JackOutput("riff-bridge", timebase_master=True),
                         LiveOptions(prime_seconds=120.0), surfaces, ClipRecorder(out / "clips"))
    session = Session(parts)
    return session, _LazyOsc(surfaces, SimpleUDPClient)


class _LazyOsc:
    """An OSC client that connects to the surfaces' bound port once they have started."""

    def __init__(self, surfaces: Any, client_type: Any) -> None:
        self.surfaces, self.client_type, self.client = surfaces, client_type, None

    def send(self, address: str, value: Any) -> None:
        if self.client is None:
            self.client = self.client_type(*self.surfaces.osc.address)
        self.client.send_message(address, value)


def _capture(session: Any, seconds: float) -> Any:
    """Start recording riff-bridge's outputs and roll the transport."""
    from bridge.capture import JackCapture

    name = session.parts.output.name
    print(f"riff-bridge: JACK ports {name}:out_L, {name}:out_R, {name}:midi_in; "
          f"OSC on udp://{session.parts.surfaces.osc.address[0]}:{session.parts.surfaces.osc.address[1]}")
    capture = JackCapture([f"{name}:out_L", f"{name}:out_R"], seconds).start()
    capture.client.transport_start()
    return capture


def _perform(session: Any, osc: Any, clips: int, timeout: float) -> None:
    """Send the script's steps as clips are played; ends after ``clips`` new clips."""
    deadline = time.monotonic() + timeout
    pending = list(SCRIPT)
    while time.monotonic() < deadline:
        metrics = session.tick()
        while pending and metrics.clips_started >= pending[0][0]:
            _, address, value = pending.pop(0)
            print(f"  bar {metrics.current_bar:3d}: {address} {value!r}")
            osc.send(address, value)
        if metrics.clips_started >= clips:
            return
        time.sleep(0.05)
    raise TimeoutError(f"demo: only {session.live.metrics().clips_started} of {clips} clips in "
                       f"{timeout:g} s; {session.live.metrics().summary()}")


def _result(metrics: Any, boundaries: Any, capture: Any, seconds: float) -> DemoResult:
    from bridge.capture import alignment_errors, longest_silence

    errors = alignment_errors(boundaries, capture.bar_starts())
    first = next((b.jack_frame for b in boundaries if b.new), capture.first_frame)
    played = capture.audio[max(0, first - capture.first_frame):]
    return DemoResult(metrics.clips_generated, metrics.clips_started, max(errors, default=float("nan")),
                      longest_silence(played), metrics.late_clips, metrics.xruns,
                      metrics.real_time_factor, metrics.failures, metrics.bpm, seconds, capture.sample_rate,
                      final_tempo_contrast(capture))


def final_tempo_contrast(capture: Any) -> float:
    """Beat contrast (:func:`bridge.mini.evaluation.beat_contrast`) of the recording since the
    transport last changed tempo, at that tempo; NaN when that stretch is under 2 s."""
    from bridge.mini.evaluation import beat_contrast

    rows = capture.transport
    rolling = rows[(rows[:, 1] > 0) & (rows[:, 7] > 0)]
    if len(rolling) == 0:
        return float("nan")
    bpm = float(rolling[-1, 7])
    changed = np.nonzero(np.abs(rolling[:, 7] - bpm) > 1e-6)[0]
    start_frame = int(rolling[changed[-1] + 1, 0] if len(changed) else rolling[0, 0])
    audio = capture.audio[max(0, start_frame - capture.first_frame):].mean(axis=1)
    if len(audio) < 2 * capture.sample_rate:
        return float("nan")
    return beat_contrast(audio, bpm, capture.sample_rate)


def _write(out: Path, capture: Any) -> None:
    """The recording as WAV and as a spectrogram strip (never overwriting earlier runs)."""
    from bridge.audio.codec import SpectrogramCodec
    from bridge.audio.wav import write_audio
    from bridge.recording import next_free_path

    wav = write_audio(next_free_path(out / "session.wav"), capture.audio, capture.sample_rate)
    image = SpectrogramCodec().audio_to_image(capture.audio, capture.sample_rate)
    png = next_free_path(out / "session.png")
    image.save(png, exif=image.getexif())
    print(f"wrote {wav} and {png} ({len(capture.audio) / capture.sample_rate:.1f} s)")


def print_summary(result: DemoResult) -> None:
    """The demo's summary table."""
    ms = 1000.0 / result.sample_rate
    rows = [
        ("clips generated / played", f"{result.clips_generated} / {result.clips_played}"),
        ("bar alignment error (max)", f"{result.max_alignment_frames:.0f} frames ({result.max_alignment_frames * ms:.2f} ms)"),
        ("longest silence while rolling", f"{result.longest_gap_frames} frames"),
        ("late clips", str(result.late_clips)),
        ("xruns (any client)", f"{result.xruns}" + (f" (jackd: {result.xrun_causes})" if result.xrun_causes else "")),
        ("overruns of riff-bridge", str(result.overruns)),
        ("generation real-time factor", f"{result.real_time_factor:.3f} (seconds per second of audio)"),
        ("generation failures", str(result.failures)),
        ("final tempo", f"{result.tempo_bpm:.2f} BPM"),
        ("beat contrast at final tempo", f"{result.beat_contrast:.2f} (onset autocorrelation at the beat "
                                         f"minus its 0.2-1.8 beat mean; noise ~0)"),
        ("session length", f"{result.seconds:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\n{'measure':<{width}}  value\n{'-' * width}  {'-' * 30}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
