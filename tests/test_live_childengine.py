"""ChildProcessEngine: the engine protocol across a process boundary."""

from __future__ import annotations

import time
from functools import partial
from typing import Iterator

import numpy as np
import pytest

from bridge.engine.fake import FakeEngine
from bridge.engine.protocol import GenerationCancelled
from bridge.engine.request import GenerationRequest
from bridge.live.childengine import ChildProcessEngine, ChildProcessError
from live_fixtures import FailingEngine

REQUEST = GenerationRequest(prompt_a="organ", bars=1, bpm=120.0, steps=5)


@pytest.fixture(scope="module")
def child() -> Iterator[ChildProcessEngine]:
    with ChildProcessEngine(partial(FakeEngine, iterations=4, delay=0.0)) as engine:
        yield engine


def test_clips_from_the_child_match_the_engine_in_process(child: ChildProcessEngine) -> None:
    clip = child.generate(REQUEST, 88200, 44100)
    local = FakeEngine(iterations=4).generate(REQUEST, 88200, 44100)
    assert clip.audio.shape == (88200, 2) and clip.request == REQUEST
    np.testing.assert_allclose(clip.mel, local.mel)


def test_the_child_runs_under_the_model_policy(child: ChildProcessEngine) -> None:
    import os

    from bridge.live.priority import MODEL_POLICY, POLICIES

    child.start()
    assert os.sched_getscheduler(child._process.pid) == POLICIES[MODEL_POLICY]


def test_codec_runs_in_the_child(child: ChildProcessEngine) -> None:
    mel = FakeEngine(iterations=4).draw_mel(REQUEST)
    audio = child.codec.mel_to_audio(mel, 50000, 44100)
    assert isinstance(audio, np.ndarray) and audio.shape == (1, 50000)


def test_cancel_is_forwarded_to_the_child() -> None:
    with ChildProcessEngine(partial(FakeEngine, iterations=4, delay=30.0)) as engine:
        started = time.monotonic()
        with pytest.raises(GenerationCancelled):
            engine.generate(REQUEST, 88200, 44100, cancel=lambda: time.monotonic() - started > 0.3)
        assert time.monotonic() - started < 5.0


def test_engine_errors_are_raised_in_the_parent() -> None:
    with ChildProcessEngine(FailingEngine) as engine:
        with pytest.raises(RuntimeError, match="model exploded"):
            engine.generate(REQUEST, 88200, 44100)


def test_a_dead_child_is_reported_then_restarted(child: ChildProcessEngine) -> None:
    child._process.kill()
    with pytest.raises(ChildProcessError, match="died"):
        child.generate(REQUEST, 88200, 44100)
    assert child.generate(REQUEST, 88200, 44100).audio.shape == (88200, 2)


def test_a_factory_that_fails_is_a_start_error() -> None:
    with pytest.raises(ValueError):
        ChildProcessEngine(partial(int, "not a number")).start()
