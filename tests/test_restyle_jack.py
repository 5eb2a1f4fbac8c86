"""Live restyling end to end: a drummer on in_L/in_R under a timebase master, the tiny model.

One session (module fixture) on the private JACK server:
  - riff-bridge is the JACK timebase master (its native core) at 90 BPM; the test's drum
    player locates to frame 0 and rolls the transport;
  - that JACK drum player plays FluidSynth-rendered 2-bar drum loops into riff-bridge:in_L/in_R,
    by transport frame: loop k of the transport plays pattern k mod 3 (backbeat, syncopated,
    halftime), so which input loop a clip came from can be told by ear (well, by onsets);
  - riff-bridge (Session: live engine with input capture, OSC on loopback) with source =
    input, 2-bar loops, the tiny model in process (its realtime callback is the native core);
  - phase 1, denoising 0: clips must reproduce their input loop's onsets; a capture over OSC;
  - phase 2, denoising 0.3: onset envelopes must follow their own input loop;
  - phase 3, the drummer stops: silent loops are skipped and reported, the loop keeps playing.
A recorder client takes riff-bridge's outputs by transport frame; every check is on frames.

Needs the native core's input capture (bridge.live.core, issue 10): skipped without it.
About 75 s here; on a saturated 2-core machine the model takes several loops per clip and the
Python peers xrun (the checks allow both; see the report printed with -s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from live_fixtures import LoopBook, Recorder
from stall_watch import stall_retried

pytestmark = pytest.mark.jack

BPM, BARS, RATE, BLOCK = 90.0, 2, 44100, 256
LOOP = round(BARS * 4 * 60 / BPM * RATE)  # 235200 frames, exact at 90 BPM
PATTERNS = ("backbeat", "syncopated", "halftime")
PHASE_SECONDS = 150.0  # longest wait for a phase's clips


def _core_missing() -> str | None:
    """Why the test cannot run (None when the native core with input capture is here)."""
    import inspect

    try:
        import bridge.live.core as core  # noqa: F401
    except Exception as err:  # noqa: BLE001
        return f"native core bridge.live.core (issue 10) not available: {err}"
    from bridge.live.engine import LiveEngine

    if "input_recorder" not in inspect.signature(LiveEngine).parameters:
        return "LiveEngine has no input_recorder hook yet (native core, issue 10)"
    return None


def tiny_engine(folder: str) -> Any:
    """The tiny model with 16 phase-recovery iterations (runs in the model process)."""
    from bridge.audio.codec import SpectrogramCodec
    from bridge.engine.diffusion import DiffusionEngine

    return DiffusionEngine(folder, device="cpu", codec=SpectrogramCodec(iterations=16))


class FinishedClips:
    """Wraps an engine and keeps the request of every clip it finished (not cancelled ones)."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.codec, self.requests, self.seconds = engine, engine.codec, [], []

    def generate(self, request: Any, num_samples: int, sample_rate: int, cancel: Any = None) -> Any:
        began = time.monotonic()
        clip = self.engine.generate(request, num_samples, sample_rate, cancel)
        self.requests.append(request)
        self.seconds.append(time.monotonic() - began)
        return clip


class DrumPlayer:
    """A JACK client playing ``sequence`` (cycled) by transport frame, silent from ``silent_from``."""

    def __init__(self, sequence: np.ndarray, destinations: list[str], name: str = "test-drums") -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.ports = [self.client.outports.register(f"out_{k}") for k in range(2)]
        self.sequence = np.ascontiguousarray(sequence, dtype=np.float32)
        self.silent_from = 1 << 62
        self.silent_jack: int | None = None  # JACK frame of the first block silenced by silent_from
        self.destinations = destinations
        self.client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        state, pos = self.client.transport_query_struct()
        left, right = self.ports[0].get_array(), self.ports[1].get_array()
        if state != 1 or pos.frame >= self.silent_from:
            left.fill(0.0)
            right.fill(0.0)
            if state == 1 and self.silent_jack is None:
                self.silent_jack = self.client.last_frame_time
            return
        index = (pos.frame + np.arange(frames)) % len(self.sequence)
        left[:] = self.sequence[index, 0]
        right[:] = self.sequence[index, 1]

    def start(self) -> "DrumPlayer":
        """Activate, connect, locate to frame 0 and roll the transport."""
        self.client.activate()
        for port, destination in zip(self.ports, self.destinations):
            self.client.connect(port, destination)
        self.client.transport_frame = 0
        self.client.transport_start()
        return self

    def transport_frame(self) -> int:
        """Current transport frame."""
        return int(self.client.transport_frame)

    def close(self) -> None:
        self.client.transport_stop()
        self.client.deactivate()
        self.client.close()


@dataclass
class Run:
    """What the session produced."""

    sequence: np.ndarray
    audio: np.ndarray
    first: int
    starts: tuple
    requests: list
    book: Any = None  # every loop offered to the core, with the request it was made from
    phases: list[int] = field(default_factory=list)
    silent_jack: int | None = None  # JACK frame where the drummer fell silent
    skipped_replies: list = field(default_factory=list)
    status_silent: tuple = ()
    status_ready: tuple = ()
    capture_reply: Any = None
    seeds: Path | None = None
    seed_image: str = ""
    seconds: list = field(default_factory=list)
    runs: list = field(default_factory=list)  # every gap-free run of the recording: (audio, transport frame)


def _drum_sequence(folder: Path) -> np.ndarray:
    from bridge.audio import song
    from bridge.audio.wav import read_audio

    loops = []
    for name in PATTERNS:
        wav = song.render(song.compose_drums(BPM, BARS + 1, name), folder / f"{name}.wav")
        audio, rate = read_audio(wav)
        assert rate == RATE
        loops.append(audio[:LOOP, :2])
    return np.concatenate(loops)


if _core_missing():
    pytest.skip(_core_missing(), allow_module_level=True)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """A private jackd at 1024 frames (as demo and soak run): on a 2-core machine under load,
    256-frame periods make the dummy driver itself wake late and skip cycles."""
    from bridge.live.server import PRIVATE_PERIOD
    from live_fixtures import private_server

    yield from private_server(RATE, PRIVATE_PERIOD)


@pytest.fixture(scope="module")
def run(server: Any, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The whole three-phase session (module docstring), once more if the host stalled in it."""
    return stall_retried(lambda: _restyle_session(server, tiny_model_dir, tmp_path_factory), "restyle session")


def _restyle_session(server: Any, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    from control_fixtures import OscPeer

    from bridge.control.surfaces import ControlSurfaces
    from bridge.live.childengine import ChildProcessEngine
    from bridge.live.engine import LiveOptions
    from bridge.live.inputloop import InputRecorder
    from bridge.live.inputcapture import InputCapture, SeedFolder
    from bridge.live.jackoutput import JackOutput
    from bridge.session import Session, SessionParts
    from bridge.state import ControlState, StateStore

    folder = tmp_path_factory.mktemp("restyle-jack")
    sequence = _drum_sequence(folder)
    name = "rb-restyle"
    store = StateStore(ControlState(bpm=BPM, bars=BARS, prompt_a="drums", prompt_b="drums", steps=10,
                                    source="input", denoising=0.0))
    # the model process at normal priority: on a saturated shared machine SCHED_IDLE starves it
    child = ChildProcessEngine(partial(tiny_engine, str(tiny_model_dir)), nice=None, policy=None).start()
    engine = FinishedClips(child)
    recorder_in = InputRecorder(threshold_db=-50.0)
    parts = SessionParts(store, engine, JackOutput(name, audio_in=True, timebase_master=True), LiveOptions(), warm_up=False,
                         input_recorder=recorder_in)
    session = Session(parts)
    parts.surfaces = ControlSurfaces(store, status=session.status, osc_host="127.0.0.1", osc_port=0)
    seeds = SeedFolder(folder / "seeds")
    parts.surfaces.actions.capture = InputCapture(
        recorder_in, store, seeds, lambda: session.live.worker.loop_start() if session.live else None).capture
    drums = recorder = None
    try:
        session.start()
        book = LoopBook(session.live)
        drums = DrumPlayer(sequence, [f"{name}:in_L", f"{name}:in_R"]).start()
        recorder = Recorder([f"{name}:out_L", f"{name}:out_R"], 3 * PHASE_SECONDS + 60).start()
        peer = OscPeer(parts.surfaces.osc.address)
        peer.send("/riff/ping")
        peer.expect("/riff/pong")
        result = Run(sequence, np.zeros(0), 0, (), engine.requests, book, seeds=seeds.folder, seconds=engine.seconds)
        _play(session, drums, peer, result, recorder, server.period)
        result.audio, result.first = recorder.take(server.period)
        result.runs = recorder.runs(server.period)
        result.starts = session.live.boundaries()
        result.seed_image = store.snapshot().seed_image
        print("\nrestyle session: clip starts (transport loop, bar, serial, new, into):",
              [(s.frame / LOOP, s.bar, s.serial, s.new, s.into) for s in result.starts])
        print("finished clips (input key, denoising):",
              [(r.seed_audio.key if r.seed_audio is not None else None, r.denoising) for r in result.requests])
        print("phases (transport loops):", [p / LOOP for p in result.phases], "input status:",
              session.live.inputs.status(), "capture breaks:", list(recorder_in._ring.breaks),
              "dropped", recorder_in.dropped, "overlapped", recorder_in._ring.overlapped,
              "xruns", session.live.metrics().xruns, "jackd:", server.xrun_causes(),
              "generation s:", session.live.metrics().generation_seconds_last)
        return result
    finally:
        for client in (drums, recorder):
            if client is not None:
                client.close()
        session.stop()
        child.close()


def _play(session: Any, drums: DrumPlayer, peer: Any, result: Run, recorder: Recorder, period: int) -> None:
    """Phase 1 (denoising 0, with a capture) until two of its clips were recorded whole,
    phase 2 (0.3) likewise, phase 3 (silence) for three loops. Generation here may take several
    loops on a loaded machine, so phases end on events, each within PHASE_SECONDS."""
    def loop_now() -> int:
        return drums.transport_frame() // LOOP

    def tick_until(done: Any, seconds: float = PHASE_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            session.tick()
            time.sleep(0.05)

    def started(denoising: float) -> int:
        return sum(1 for s in session.live.boundaries() if s.new and not s.into
                   and _request(result, s).denoising == pytest.approx(denoising))

    def recorded(denoising: float) -> int:
        """Clips of ``denoising`` started on a bar line whose whole loop the recorder holds in
        one gap-free run (the Python recorder may miss a block on a busy machine)."""
        spans = recorder.spans(period)
        return sum(1 for s in session.live.boundaries() if s.new and not s.into
                   and _request(result, s).denoising == pytest.approx(denoising)
                   and any(first <= s.frame and s.frame + LOOP <= first + frames for first, frames in spans))

    result.phases.append(loop_now() * LOOP)
    tick_until(lambda: started(0.0) >= 1)
    peer.send("/riff/input/capture", "groove")
    result.capture_reply = peer.recv(timeout=30.0)
    result.status_ready = tuple(session.status()[k] for k in ("input_state", "input_latency_loops", "input_level_db"))
    tick_until(lambda: recorded(0.0) >= 2)
    peer.send("/riff/set/denoising", 0.3)
    result.phases.append(loop_now() * LOOP)
    tick_until(lambda: started(0.3) >= 2)
    drums.silent_from = (loop_now() + 1) * LOOP
    result.phases.append(drums.silent_from)
    silent_end = loop_now() + 4
    tick_until(lambda: loop_now() >= silent_end)
    result.silent_jack = drums.silent_jack
    session.tick()
    result.status_silent = tuple(session.status()[k] for k in ("input_state", "input_detail", "input_level_db"))
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            message = peer.recv(timeout=0.2)
        except OSError:
            continue
        if message.address == "/riff/input/skipped":
            result.skipped_replies.append(message.args)


def _request(result: Run, start: Any) -> Any:
    """The request the clip of ``start`` was made from (the loop the core was offered)."""
    return result.book.loops[(start.serial, start.version)].request


def _played(result: Run, lo: int, hi: int) -> list[tuple[int, Any, int]]:
    """New clips that started on a bar line in transport frames [lo, hi): (frame, request,
    transport frame where its input loop started). Input keys hold JACK frames; the transport
    started rolling with us, so the offset between the two clocks is read from the clip starts."""
    played = []
    for start in result.starts:
        if not start.new or start.into or not lo <= start.frame < hi:
            continue
        request = _request(result, start)
        input_start = int(request.seed_audio.key.split("@")[1].split("+")[0]) - (start.jack_frame - start.frame)
        bars = (start.frame - input_start) / (LOOP / BARS)
        assert abs(bars - round(bars)) * LOOP / BARS < BLOCK, (start, request.seed_audio.key)  # on its bars
        played.append((start.frame, request, input_start))
    return played


def _segments(result: Run, frame: int, source: int) -> tuple[np.ndarray, np.ndarray]:
    """(output loop played from transport ``frame``, input loop played from transport ``source``).
    The output loop is read from the gap-free run of the recording that holds all of it (empty
    when the Python recorder missed a block inside it)."""
    out = result.audio[:0]
    for audio, first in result.runs:
        if first <= frame and frame + LOOP <= first + len(audio):
            out = audio[frame - first:frame - first + LOOP]
    index = np.arange(source, source + LOOP) % len(result.sequence)
    return out, result.sequence[index]


def test_denoising_zero_plays_each_input_loop_back_with_its_onsets_one_loop_later(run: Run) -> None:
    from bridge.audio.onsets import onset_offsets

    played = [p for p in _played(run, 0, run.phases[2]) if p[1].denoising == 0.0]
    assert len(played) >= 2, played
    loop_seconds = LOOP / RATE
    slowest = max(run.seconds)
    # 1 loop when a clip is made within a loop, 2 when slower; a machine slower still adds loops
    allowed = (1, 2) if slowest < 2 * loop_seconds else tuple(range(1, 2 + int(slowest // loop_seconds)))
    report = []
    for frame, request, input_start in played:
        out, source = _segments(run, frame, input_start)
        if len(out) < LOOP:
            continue
        offsets = onset_offsets(source, out)
        latency = round((frame - input_start - LOOP) / LOOP, 2)  # loops from the input's end to the clip's start
        report.append((frame // LOOP, latency, len(offsets), float(np.abs(offsets).max() * 1000)))
        # the first clip, from silence, starts on the first bar line after it is made
        first = request is run.book.loops[min(run.book.loops)].request
        assert (0 < latency if first else min(allowed) <= latency) and latency <= max(allowed), \
            (report, allowed, run.seconds)
        assert len(offsets) >= 4 and np.abs(offsets).max() <= 0.010, report
    print("restyle denoising 0: (transport loop, latency loops, onsets, max |offset| ms):", report,
          "generation s:", [round(x, 1) for x in run.seconds], "loop s:", round(loop_seconds, 2))
    assert len(report) >= 2


@pytest.mark.xfail(reason="tiny-v1 has a random-weight VAE: encode->decode keeps no timing (see "
                          "test_restyle_model.py), so no denoising above 0 keeps the beat with it", strict=False)
def test_denoising_point_three_keeps_the_beat_of_its_own_input_loop(run: Run) -> None:
    from bridge.audio.onsets import envelope_correlation, onset_envelope

    played = [p for p in _played(run, 0, 1 << 62) if p[1].denoising == pytest.approx(0.3)]
    assert len(played) >= 1, played
    report = []
    for frame, request, input_start in played:
        out, own = _segments(run, frame, input_start)
        if len(out) < LOOP:
            continue
        envelope = onset_envelope(out)
        mine = envelope_correlation(envelope, onset_envelope(own))
        others = [envelope_correlation(envelope, onset_envelope(_segments(run, frame, input_start + k * LOOP)[1]))
                  for k in (1, 2)]
        report.append((frame // LOOP, round(mine, 3), [round(o, 3) for o in others]))
    print("restyle denoising 0.3: (transport loop, r with own input, r with the other patterns):", report)
    assert report and all(mine > max(others) for _, mine, others in report), report


def test_silent_input_keeps_the_loop_playing_and_is_reported(run: Run) -> None:
    from bridge.capture import longest_silence

    state, detail, level = run.status_silent
    assert state == "silent" and "below -50 dBFS" in detail and level < -60, (state, detail, level)
    assert run.skipped_replies and run.skipped_replies[-1][1] == pytest.approx(-50.0)
    silent_from = run.phases[2]
    # input keys hold JACK frames: compared with the JACK frame where the drummer fell silent
    # (not through a transport-to-JACK offset: xruns move one clock against the other)
    assert run.silent_jack is not None
    from_silence = [r for r in run.requests if r.seed_audio is not None
                    and int(r.seed_audio.key.split("@")[1].split("+")[0]) >= run.silent_jack]
    assert not from_silence  # no clip was made from a silent loop...
    # ...the loop plays on: three loops recorded after the input fell silent, none of it silent
    # (checked on every gap-free run of the recording: the Python recorder may miss a block)
    later = [(audio[max(0, silent_from + LOOP - first):], first) for audio, first in run.runs]
    assert max(first + len(audio) for audio, first in run.runs) >= silent_from + 3 * LOOP
    assert sum(len(audio) for audio, _ in later) >= LOOP
    assert all(longest_silence(audio) == 0 for audio, _ in later if len(audio))


def test_capture_over_osc_writes_a_seed_inside_the_folder_and_selects_it(run: Run) -> None:
    from bridge.audio.codec import SpectrogramCodec
    from bridge.audio.image import decode_image, load_image

    message = run.capture_reply
    assert message.address == "/riff/input/captured", message
    path = Path(message.args[0])
    assert path.parent == run.seeds.resolve() and path.name == "groove.png"
    assert run.seed_image == str(path)
    mel, params = decode_image(load_image(path))
    audio = SpectrogramCodec(iterations=4).mel_to_audio(mel, LOOP, RATE)
    assert tuple(audio.shape) == (1, LOOP) and float(audio.abs().max()) > 0
    state, latency, level = run.status_ready
    assert state == "ready" and latency in (1, 2) and level > -40
