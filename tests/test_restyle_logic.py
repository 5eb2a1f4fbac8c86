"""Live restyling without JACK: input recorder, input selector, worker planning, capture, file restyle.

Synthetic InputBlock/BarLine feeds stand in for the native core's drains (same contract).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.errors import BridgeError, ParameterError
from bridge.live.inputloop import BarLine, FrameRing, InputBlock, InputRecorder, InputUnavailable
from bridge.live.inputselector import InputSelector

RATE = 44100
BLOCK = 256


def ramp_feed(recorder: InputRecorder, start: int, frames: int, bar_frames: float, first_bar: int = 0,
              level: float = 0.5, origin: int | None = None) -> None:
    """Feed ``frames`` frames of a ramp (sample value encodes its JACK frame) from ``start``,
    with bar lines every ``bar_frames`` from ``origin`` (default ``start``), in blocks."""
    origin = start if origin is None else origin
    for block_start in range(start, start + frames, BLOCK):
        n = min(BLOCK, start + frames - block_start)
        frame_ids = np.arange(block_start, block_start + n)
        audio = np.stack([level * np.sin(frame_ids * 0.01), (frame_ids % 100000) / 100000.0], axis=1)
        lines = []
        k0 = int(np.ceil((block_start - origin) / bar_frames))
        k = k0
        while origin + round(k * bar_frames) < block_start + n:
            lines.append(BarLine(origin + round(k * bar_frames), round(k * bar_frames), first_bar + k,
                                 bar_frames, "own"))
            k += 1
        recorder.feed([InputBlock(block_start, audio.astype(np.float32))], lines)


def test_recorder_cuts_loops_exactly_on_bar_lines() -> None:
    recorder = InputRecorder(RATE, seconds=10)
    bar = 22050.0
    ramp_feed(recorder, 1000, 5 * 22050 + 500, bar)
    loop = recorder.loop(4, 2)
    assert (loop.start_bar, loop.bars, loop.end_bar) == (2, 2, 4)
    assert loop.start_jack_frame == 1000 + 2 * 22050 and loop.frames == 2 * 22050
    expected = (np.arange(loop.start_jack_frame, loop.start_jack_frame + loop.frames) % 100000) / 100000.0
    assert np.allclose(loop.audio[:, 1], expected, atol=1e-6)
    with pytest.raises(InputUnavailable, match="not both seen"):
        recorder.loop(7, 2)
    assert not loop.audio.flags.writeable


def test_recorder_fills_short_gaps_with_silence_and_refuses_loops_across_long_ones() -> None:
    recorder = InputRecorder(RATE, seconds=10)
    ramp_feed(recorder, 0, 2 * 22050, 22050.0)
    ramp_feed(recorder, 2 * 22050 + 1000, 22050, 22050.0, origin=0)  # 1000 frames lost (xrun)
    assert recorder.dropped == 1000
    loop = recorder.loop(3, 2)
    assert np.all(loop.audio[22050:22050 + 1000] == 0) and np.all(loop.audio[22050 + 1000:, 1] > 0)
    ramp_feed(recorder, 5 * 22050, 2 * 22050 + 1, 22050.0, origin=0)  # 1 s lost: a new run
    with pytest.raises(InputUnavailable, match="not all captured"):
        recorder.loop(5, 2)  # bars 3-4 span the break
    assert recorder.loop(7, 2).start_bar == 5


def test_ring_wraps_and_grows_keeping_what_it_holds() -> None:
    ring = FrameRing(1000)
    data = np.arange(3000, dtype=np.float32)[:, None].repeat(2, axis=1)
    for start in range(0, 3000, 300):
        ring.write(start, data[start:start + 300])
    assert np.array_equal(ring.read(2100, 3000)[:, 0], np.arange(2100, 3000))
    with pytest.raises(InputUnavailable):
        ring.read(1900, 2100)
    ring.grow(5000)
    assert np.array_equal(ring.read(2000, 3000)[:, 0], np.arange(2000, 3000))
    ring.write(3000, data[:1500])
    assert ring.read(2000, 4500).shape == (2500, 2)


def test_relocated_bars_are_not_cut_as_one_loop() -> None:
    recorder = InputRecorder(RATE, seconds=10)
    ramp_feed(recorder, 0, 3 * 22050 + 1, 22050.0)  # bars 0, 1, 2 and the line of bar 3
    ramp_feed(recorder, 3 * 22050 + 1, 3 * 22050, 22050.0, first_bar=0)  # transport jumped back to bar 0
    with pytest.raises(InputUnavailable, match="one stretch"):
        recorder.loop(3, 2)  # the newest bar 1 is after the jump, bar 3 before it
    assert recorder.loop(2, 2).start_jack_frame == 3 * 22050 + 1


def test_level_meter_reads_the_input_level() -> None:
    recorder = InputRecorder(RATE)
    loud = np.full((BLOCK, 2), 0.5, np.float32)
    for k in range(200):
        recorder.feed([InputBlock(k * BLOCK, loud)], [])
    assert recorder.meter.rms_db() == pytest.approx(20 * np.log10(0.5), abs=0.1)
    for k in range(200, 1200):  # 5.8 s: the 0.3 s mean square falls 84 dB
        recorder.feed([InputBlock(k * BLOCK, np.zeros((BLOCK, 2), np.float32))], [])
    assert recorder.meter.rms_db() < -60


def test_selector_skips_silent_loops_and_reports_why() -> None:
    recorder = InputRecorder(RATE, seconds=10)
    ramp_feed(recorder, 0, 4 * 22050 + 10, 22050.0, level=0.0)
    selector = InputSelector(recorder, threshold_db=-50.0)
    # the ramp channel alone is loud; make both silent
    recorder2 = InputRecorder(RATE, seconds=10)
    for k in range(0, 4 * 22050 + 300, BLOCK):
        recorder2.feed([InputBlock(k, np.full((BLOCK, 2), 1e-4, np.float32))],
                       [BarLine(b * 22050, b * 22050, b, 22050.0, "own") for b in range(5) if k <= b * 22050 < k + BLOCK])
    silent = InputSelector(recorder2, threshold_db=-50.0)
    assert silent.choose(4, 2) is None
    status = silent.status()
    assert status.state == "silent" and status.skipped == 1 and status.loop_db == pytest.approx(-80, abs=0.5)
    assert "below -50 dBFS" in status.detail and "keeps playing" in status.detail
    assert silent.choose(4, 2) is None and silent.status().skipped == 1  # counted once per loop
    # at the next boundary the player is on bar 6 before the monitor brought bar line 6
    # (the newest seen is 4 here, so bar 5 is the one a few blocks away): the status stands
    assert silent.choose(5, 2) is None and silent.status().state == "silent"
    assert silent.choose(6, 2) is None and silent.status().state == "waiting"  # two bar lines missing: a fault
    seed = selector.choose(4, 2)
    assert seed is not None and selector.status().state == "ready"
    assert seed.key == recorder.loop(4, 2).key and seed.audio.shape == (2 * 22050, 2)
    assert selector.choose(4, 2) is seed  # the same loop is not cut again
    assert selector.choose(9, 2) is None and selector.status().state == "waiting"
    selector.observe(seed, 5)  # one bar after its end (the first clip, from silence): within a loop
    assert selector.status().latency_loops == 1
    selector.observe(seed, 6)
    assert selector.status().latency_loops == 1
    selector.observe(seed, 8)
    assert selector.status().latency_loops == 2


# -- the worker's planning with source = input --------------------------------------------

class _HandPlayer:
    """The worker's view of a player (offer, current loop, bar, bar in loop), moved by hand."""

    def __init__(self) -> None:
        from bridge.live.player import Offer

        self.offer, self.current, self.bar, self.bar_in_loop, self.silent = Offer(), None, 0, 0, True


class _Rig:
    """A GenerationWorker over a player whose position the test moves by hand."""

    def __init__(self, denoising: float = 0.0) -> None:
        from bridge.engine.fake import FakeEngine
        from bridge.live.metrics import GenerationStats
        from bridge.live.refit import Refitter
        from bridge.live.tempo import TempoReading
        from bridge.live.walk import SeedWalk
        from bridge.live.worker import GenerationWorker
        from bridge.state import ControlState, StateStore
        from bridge.timing import Tempo

        self.store = StateStore(ControlState(bpm=120.0, bars=1, prompt_a="x", prompt_b="x", steps=2,
                                             source="input", denoising=denoising))
        self.recorder = InputRecorder(RATE, seconds=20)
        self.selector = InputSelector(self.recorder)
        self.player = _HandPlayer()
        self.engine = FakeEngine(iterations=2)
        reading = TempoReading(Tempo(120.0), "control", RATE)
        self.worker = GenerationWorker(self.engine, self.store, self.player, lambda: reading, SeedWalk(0.25),
                                       Refitter(self.engine.codec), GenerationStats(), 128, inputs=self.selector)

    def play_input(self, bars: int) -> None:
        """Input up to bar line ``bars`` (a loud sine; one bar = 88200 frames at 120 BPM)."""
        fed = getattr(self, "fed", 0)
        ramp_feed(self.recorder, fed, bars * 88200 + 1 - fed, 88200.0, origin=0)
        self.fed = bars * 88200 + 1

    def take_offer(self, start_bar: int) -> object:
        """The player starts the offered clip on ``start_bar``."""
        loop = self.player.offer.next
        self.play_input(start_bar)
        self.player.current, self.player.bar, self.player.bar_in_loop, self.player.silent = loop, start_bar, 0, False
        return loop

    def boundary(self, bar: int) -> None:
        """A loop boundary passes with no new clip: the playing loop repeats from ``bar``."""
        self.play_input(bar)
        self.player.bar, self.player.bar_in_loop = bar, 0


def test_worker_restyles_the_loop_before_each_boundary_and_nothing_else() -> None:
    rig = _Rig()
    rig.play_input(6)
    rig.worker.step()  # nothing plays yet: the loop before the newest bar line (bar 6)
    first = rig.take_offer(6)
    assert first.request.seed_audio.key == rig.recorder.loop(6, 1).key
    rig.worker.step()  # the playing clip already restyles the newest loop: nothing to make
    assert rig.player.offer.next is first and rig.engine.calls == 1
    rig.boundary(7)
    rig.worker.step()
    second = rig.player.offer.next
    assert second is not first and second.request.seed_audio.key == rig.recorder.loop(7, 1).key
    assert second.request.denoising == 0.0 and second.request.prompt_a == "x"
    rig.worker.step()
    assert rig.engine.calls == 2  # no second clip of the same input loop
    rig.take_offer(8)
    rig.worker.step()
    assert rig.selector.status().latency_loops == 1


def test_worker_keeps_a_late_clip_and_plays_it_two_loops_after_its_input() -> None:
    rig = _Rig()
    rig.play_input(6)
    rig.worker.step()
    rig.take_offer(6)
    rig.boundary(7)
    rig.worker.step()  # made from bars 6..7
    late = rig.player.offer.next
    rig.boundary(8)    # ...but the boundary passed before the player took it (generation too slow)
    rig.worker.step()
    assert rig.player.offer.next is late  # not thrown away for the newer input loop
    rig.take_offer(9)
    rig.worker.step()
    assert rig.selector.status().latency_loops == 2


def test_worker_makes_nothing_from_silence_and_says_why() -> None:
    rig = _Rig()
    for k in range(0, 4 * 88200 + 300, BLOCK):
        rig.recorder.feed([InputBlock(k, np.zeros((BLOCK, 2), np.float32))],
                          [BarLine(b * 88200, b * 88200, b, 88200.0, "own") for b in range(5) if k <= b * 88200 < k + BLOCK])
    rig.worker.step()
    assert rig.player.offer.next is None and rig.engine.calls == 0
    assert rig.selector.status().state == "silent"


def test_worker_switches_back_to_the_prompt() -> None:
    rig = _Rig()
    rig.play_input(3)
    rig.worker.step()
    rig.take_offer(3)
    rig.store.set("source", "prompt")
    rig.worker.step()
    assert rig.player.offer.next.request.seed_audio is None
    assert rig.selector.status().state == "off"


def test_fake_engine_keeps_the_seed_audio_at_denoising_zero() -> None:
    rig = _Rig(denoising=0.0)
    rig.play_input(3)
    rig.worker.step()
    loop = rig.player.offer.next
    source = rig.recorder.loop(3, 1).audio
    assert np.allclose(loop.audio[:, : loop.frames].T, source, atol=1e-4)


# -- capture ------------------------------------------------------------------------------

def _capture(tmp_path: Path, level: float = 0.5):
    from bridge.live.inputcapture import InputCapture, SeedFolder
    from bridge.state import ControlState, StateStore

    store = StateStore(ControlState(bars=1))
    recorder = InputRecorder(RATE, seconds=10)
    ramp_feed(recorder, 0, 3 * 88200 + 1, 88200.0, level=level)
    if level == 0:
        recorder = InputRecorder(RATE, seconds=10)
        for k in range(0, 3 * 88200 + 300, BLOCK):
            recorder.feed([InputBlock(k, np.zeros((BLOCK, 2), np.float32))],
                          [BarLine(b * 88200, b * 88200, b, 88200.0, "own") for b in range(4) if k <= b * 88200 < k + BLOCK])
    return InputCapture(recorder, store, SeedFolder(tmp_path / "seeds"), boundary=lambda: 3), store


def test_capture_writes_a_riffusion_png_selects_it_and_never_replaces(tmp_path: Path) -> None:
    from bridge.audio.image import decode_image, load_image

    capture, store = _capture(tmp_path)
    path = capture.capture("groove")
    assert path == (tmp_path / "seeds" / "groove.png").resolve()
    assert store.snapshot().seed_image == str(path)
    image = load_image(path)
    assert image.width == 88200 // 441 + 1 and image.getexif().get(11000) == 44100
    mel, params = decode_image(image)
    assert mel.shape == (1, 512, image.width) and params.sample_rate == 44100
    before = path.read_bytes()
    with pytest.raises(ParameterError, match="never replaced"):
        capture.capture("groove.png")
    assert path.read_bytes() == before
    auto = [capture.capture(None), capture.capture(None)]
    assert len({*auto, path}) == 3 and all(p.parent == path.parent for p in auto)
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(p.name for p in {*auto, path})


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "x" * 65, "..", "/etc/passwd", "a..b", ""])
def test_capture_names_stay_inside_the_seeds_folder(tmp_path: Path, name: str) -> None:
    capture, store = _capture(tmp_path)
    with pytest.raises(ParameterError, match="name"):
        capture.capture(name)
    assert not (tmp_path / "escape.png").exists() and store.snapshot().seed_image == "grid"


def test_capture_of_silence_is_refused(tmp_path: Path) -> None:
    capture, store = _capture(tmp_path, level=0.0)
    with pytest.raises(BridgeError, match="silent"):
        capture.capture("quiet")
    assert store.snapshot().seed_image == "grid"


# -- restyling a file ---------------------------------------------------------------------

class _MarkerEngine:
    """Returns a click at the clip's first frame and a constant level after (per chunk)."""

    def __init__(self) -> None:
        self.requests = []

    def generate(self, request, num_samples, sample_rate, cancel=None):
        from bridge.engine.clip import Clip

        self.requests.append(request)
        audio = np.full((num_samples, 2), 0.1 * (len(self.requests) % 2 + 1), np.float32)
        audio[0] = 0.9
        return Clip(audio, sample_rate, np.zeros((1, 512, 8), np.float32), None, request)


def test_restyler_keeps_the_length_and_starts_every_chunk_on_its_bar() -> None:
    from bridge.engine.request import GenerationRequest
    from bridge.engine.restyler import Restyler

    frames = round(16.4 * 4 * 60 / 97.0 * RATE)  # 16 bars and a bit at 97 BPM (frames_per_bar not whole)
    source = np.random.default_rng(1).normal(0, 0.1, (frames, 2)).astype(np.float32)
    engine = _MarkerEngine()
    out, chunks = Restyler(engine, GenerationRequest(prompt_a="x", bars=4, bpm=97.0, denoising=0.3)).restyle(source, RATE)
    per_bar = 4 * 60 / 97.0 * RATE
    assert out.shape == (frames, 2) and len(chunks) == 5
    for chunk in chunks:
        assert chunk.start == round(chunk.index * 4 * per_bar) and chunk.bar == 4 * chunk.index
        level = 0.1 * ((chunk.index + 1) % 2 + 1)
        before = 0.1 * (chunk.index % 2 + 1)  # the joint starts with the previous clip's continuation
        assert out[chunk.start, 0] == pytest.approx(before if chunk.index else 0.9, abs=1e-6)
        assert out[chunk.start + 400, 0] == pytest.approx(level, abs=1e-6)  # after the 5 ms fade: this chunk
    seeds = [r.seed_audio for r in engine.requests]
    assert np.array_equal(seeds[1].audio[:, 0], source[chunks[1].start:chunks[1].stop, 0])
    assert len(seeds[-1].audio) == chunks[-1].full > chunks[-1].stop - chunks[-1].start  # padded last chunk


def test_restyler_joint_is_the_live_players_crossfade() -> None:
    from bridge.engine.request import GenerationRequest
    from bridge.engine.restyler import Restyler
    from bridge.live.crossfade import Crossfade

    frames = 2 * 88200
    out, chunks = Restyler(_MarkerEngine(), GenerationRequest(prompt_a="x", bars=1, bpm=120.0)).restyle(
        np.zeros((frames, 2), np.float32), RATE)
    fade = Crossfade.for_rate(RATE, 5.0)
    joint = chunks[1].start
    expected = 0.2 * fade.fade_out + np.r_[0.9, np.full(fade.frames - 1, 0.1)] * fade.fade_in
    assert np.allclose(out[joint:joint + fade.frames, 0], expected, atol=1e-6)
