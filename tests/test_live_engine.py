"""The live engine end to end on the offline output: worker thread, walk, faults, refits."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import pytest

from bridge.engine.fake import FakeEngine
from bridge.live.engine import LiveEngine, LiveOptions
from bridge.live.offline import OfflineOutput, OfflineTransport
from bridge.state import ControlState, StateStore
from bridge.timing import Tempo
from live_fixtures import RATE, NanEngine, RecordingEngine, longest_silence, wait_until

BLOCK = 256


def _next_ready(live: LiveEngine) -> bool:
    player = live.player
    following, current = player.offer.next, player.current
    return following is not None and (current is None or following.serial != current.serial)


def _play_bars(live: LiveEngine, output: OfflineOutput, bars: int, wait: bool = True) -> None:
    """Play ``bars`` bars of the transport's tempo, first waiting (up to 60 s) for the next clip."""
    for _ in range(bars):
        if wait:
            assert wait_until(lambda: _next_ready(live), 60), live.metrics().summary()
        frames_per_bar = live.tempo().tempo.frames_per_bar(RATE)
        frame = output.transport.frame
        line = (int(frame // frames_per_bar) + 1) * frames_per_bar
        output.run(int(np.ceil((line - frame + 1) / BLOCK)))


def _played(output: OfflineOutput, live: LiveEngine) -> np.ndarray:
    """The recording from just after the first loop start on."""
    starts = live.boundaries()
    assert starts, "nothing was played"
    return output.recording()[starts[0].jack_frame + 1:]


@pytest.fixture()
def rig() -> Iterator[tuple[StateStore, OfflineOutput]]:
    store = StateStore(ControlState(bpm=120.0, bars=1, prompt_a="organ", prompt_b="organ", steps=5))
    yield store, OfflineOutput(RATE, BLOCK, OfflineTransport(RATE, Tempo(120.0)))


def test_generates_ahead_walks_seeds_and_switches_on_bar_lines(rig) -> None:
    store, output = rig
    engine = RecordingEngine(FakeEngine(iterations=4))
    with LiveEngine(store, engine, output) as live:
        output.run(1)
        _play_bars(live, output, 5)
        assert wait_until(lambda: len(engine.requests) >= 6, 30)
        metrics = live.metrics()
        starts = live.boundaries()
        played = _played(output, live)
    assert [s.frame for s in starts] == [(k + 1) * 88200 for k in range(len(starts))]
    assert all(s.new for s in starts) and len(starts) == 5
    alphas = [(r.seed_a, r.seed_b, r.alpha) for r in engine.requests[:6]]
    assert alphas == [(42, 43, 0.0), (42, 43, 0.25), (42, 43, 0.5), (42, 43, 0.75), (42, 43, 1.0), (43, 44, 0.25)]
    assert engine.requests[0].num_samples(RATE) == 88200
    assert metrics.clips_generated >= 5 and metrics.late_clips == 0 and metrics.failures == 0
    assert metrics.real_time_factor > 0 and metrics.blocks > 0  # callback time: JACK only (test_live_jack)
    assert longest_silence(played) == 0


def test_late_generation_keeps_the_loop_playing(rig) -> None:
    store, output = rig
    with LiveEngine(store, FakeEngine(iterations=4, delay=30.0), output) as live:
        output.run(2)
        time.sleep(0.2)
        _play_bars(live, output, 3, wait=False)
        metrics = live.metrics()
    assert metrics.clips_generated == 0 and metrics.late_clips == 0 and metrics.underruns > 0
    store2 = StateStore(ControlState(bpm=120.0, bars=1, steps=5))
    output2 = OfflineOutput(RATE, BLOCK, OfflineTransport(RATE, Tempo(120.0)))
    engine = FakeEngine(iterations=4)
    with LiveEngine(store2, engine, output2) as live:
        output2.run(1)
        _play_bars(live, output2, 1)
        assert wait_until(lambda: _next_ready(live), 60)
        engine.delay = 30.0
        _play_bars(live, output2, 1)
        time.sleep(0.2)
        _play_bars(live, output2, 3, wait=False)
        metrics = live.metrics()
        played = _played(output2, live)
    assert metrics.late_clips == 3
    assert longest_silence(played) == 0


def test_failures_are_counted_reported_retried_and_never_silence(rig) -> None:
    store, output = rig
    engine, errors = FakeEngine(iterations=4), []
    engine.fail_next = True
    with LiveEngine(store, engine, output, LiveOptions(retry_seconds=0.05), on_error=errors.append) as live:
        output.run(1)
        _play_bars(live, output, 2)
        engine.fail_next = True
        _play_bars(live, output, 3)
        metrics = live.metrics()
        played = _played(output, live)
    assert metrics.failures == 2 and len(errors) == 2 and "injected" in str(errors[0])
    assert "injected" in metrics.last_error
    assert metrics.clips_generated >= 4
    assert longest_silence(played) == 0


def test_nan_audio_is_a_failure_and_is_retried(rig) -> None:
    store, output = rig
    with LiveEngine(store, NanEngine(), output, LiveOptions(retry_seconds=0.01)) as live:
        assert wait_until(lambda: live.metrics().failures >= 3, 10)
        output.run(50)
        metrics = live.metrics()
    assert metrics.clips_generated == 0 and "non-finite" in metrics.last_error
    assert metrics.underruns == 50 and np.all(output.recording() == 0.0)


def test_newest_control_state_wins_and_stale_work_is_cancelled(rig) -> None:
    store, output = rig
    engine = RecordingEngine(FakeEngine(iterations=4, delay=0.5))
    with LiveEngine(store, engine, output) as live:
        assert wait_until(lambda: len(engine.requests) == 1, 10)
        store.update({"prompt_a": "choir", "prompt_b": "choir"})
        assert wait_until(lambda: _next_ready(live), 30)
        metrics = live.metrics()
        offered = live.player.offer.next
    assert metrics.cancelled >= 1
    assert offered.request.prompt_a == "choir" and engine.requests[0].prompt_a == "organ"


def test_prompt_change_interpolates_from_the_old_prompt(rig) -> None:
    store, output = rig
    engine = RecordingEngine(FakeEngine(iterations=4))
    with LiveEngine(store, engine, output) as live:
        output.run(1)
        _play_bars(live, output, 2)
        store.update({"prompt_a": "choir", "prompt_b": "choir"})
        _play_bars(live, output, 3)
    made = [(r.prompt_a, r.prompt_b, r.alpha) for r in engine.requests if r.prompt_b == "choir"]
    assert made[0] == ("organ", "choir", 0.25) and made[1][2] == 0.5


def test_tempo_change_refits_clips_and_moves_bars(rig) -> None:
    store, output = rig
    with LiveEngine(store, FakeEngine(iterations=4), output) as live:
        output.run(1)
        _play_bars(live, output, 2)
        output.transport.set_tempo(Tempo(100.0))
        _play_bars(live, output, 1, wait=False)
        output.run(1)
        assert wait_until(lambda: live.tempo().tempo.bpm == 100.0, 5)
        assert wait_until(lambda: live.metrics().refits >= 1 and _next_ready(live), 60)
        _play_bars(live, output, 3)
        metrics = live.metrics()
        current = live.player.current
        starts = live.boundaries()
        played = _played(output, live)
    assert metrics.refits >= 1 and current.tempo.bpm == 100.0 and current.frames == 105840
    change = 3 * 88200
    later = [s.frame for s in starts if s.frame >= change]
    assert later == [change + k * 105840 for k in range(len(later))] and len(later) >= 3
    assert longest_silence(played) == 0


def test_bars_setting_changes_the_loop_length(rig) -> None:
    store, output = rig
    with LiveEngine(store, FakeEngine(iterations=4), output) as live:
        output.run(1)
        _play_bars(live, output, 1)
        store.set("bars", 2)
        assert wait_until(lambda: _next_ready(live) and live.player.offer.next.bars == 2, 60)
        _play_bars(live, output, 3, wait=False)
        current = live.player.current
    assert current.bars == 2 and current.frames == 176400


def test_midi_messages_reach_the_callback_and_volume_follows_state(rig) -> None:
    store, output = rig
    received = []
    with LiveEngine(store, FakeEngine(iterations=4), output, on_midi=received.append) as live:
        output.send_midi(100, b"\x90\x3c\x64")
        output.send_midi(300, b"\xf8")
        output.run(3)
        assert wait_until(lambda: len(received) == 1, 5)
        store.set("volume", 0.5)
        output.run(1)
        assert live.core.struct.gain == 0.5
        store.set("mute", True)
        output.run(1)
        assert live.core.struct.gain == 0.0
    assert received[0].data == b"\x90\x3c\x64" and received[0].frame == 100 and received[0].kind == "note_on"


def test_sample_rate_change_refits_loops_to_the_new_rate(rig) -> None:
    store, output = rig
    with LiveEngine(store, FakeEngine(iterations=4), output) as live:
        output.run(1)
        _play_bars(live, output, 1)
        live.core.set_sample_rate(48000)
        assert wait_until(lambda: live.tempo().sample_rate == 48000, 5)
        assert wait_until(lambda: (live.player.offer.refit or live.player.current).frames
                          == 96000, 60)
        output.run(1)
        assert live.core.struct.own.requested == 96000.0
