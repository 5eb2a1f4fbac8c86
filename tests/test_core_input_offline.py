"""Input capture of the native core, offline: every in_L/in_R sample comes back with its frame.

OfflineOutput plays a known signal into the core's inputs block by block; ``drain_input``
must return every sample, bit for bit, stamped with the JACK frame of its block, at every
block size. When Python stops draining for longer than the ring holds (2^20 frames, 23.8 s
at 44.1 kHz, or 16384 blocks), whole blocks are dropped and counted in ``input_dropped``;
what was kept stays intact and capture resumes once Python drains again.
"""

from __future__ import annotations

import numpy as np
import pytest

from bridge.live.core import Core, InputBlock
from bridge.live.crossfade import Crossfade
from bridge.live.offline import OfflineOutput, OfflineTransport

RATE = 44100
RING_FRAMES, RING_BLOCKS = 1 << 20, 16384


def signal(frames: int, seed: int = 2) -> np.ndarray:
    """Left: the frame index + 1 (exact in float32 below 2^24); right: seeded noise in [-1, 1)."""
    left = np.arange(1, frames + 1, dtype=np.float32)
    right = np.random.default_rng(seed).uniform(-1.0, 1.0, frames).astype(np.float32)
    return np.stack([left, right], axis=1)


def _output(audio: np.ndarray, rolling: bool = True) -> OfflineOutput:
    output = OfflineOutput(RATE, 256, OfflineTransport(RATE, rolling=rolling), audio_in=audio)
    output.attach(Core(RATE, 88200.0, Crossfade.for_rate(RATE)))
    return output


def _sizes(name: str, frames: int) -> list[int]:
    if name.isdigit():
        return [int(name)] * (frames // int(name))
    rng, sizes = np.random.default_rng(3), []
    while sum(sizes) < frames:
        sizes.append(int(min(frames - sum(sizes), rng.integers(1, 4097))))
    return sizes


def _check_contiguous(blocks: list[InputBlock], audio: np.ndarray, first: int = 0) -> int:
    """Assert the blocks tile [first, ...) in order with the input's samples; returns the end."""
    at = first
    for block in blocks:
        assert block.jack_frame == at, f"block stamped {block.jack_frame}, expected {at}"
        want = audio[at:at + len(block.audio)]
        assert np.array_equal(block.audio[:len(want)], want), f"samples differ in the block at {at}"
        assert not block.audio[len(want):].any()  # silence after the signal's end
        at += len(block.audio)
    return at


@pytest.mark.parametrize("sizes", ["16", "256", "1024", "4096", "mixed"])
def test_every_input_sample_comes_back_with_its_frame(sizes: str) -> None:
    frames = 3 * RATE
    audio = signal(frames)
    output = _output(audio, rolling=sizes != "256")  # capture runs whether or not the transport rolls
    blocks: list[InputBlock] = []
    for k, size in enumerate(_sizes(sizes, frames)):
        output.run(1, size)
        if k % 37 == 0:  # drain now and then, as the engine's monitor thread does
            blocks += output.core.drain_input()  # type: ignore[union-attr]
    blocks += output.core.drain_input()  # type: ignore[union-attr]
    assert _check_contiguous(blocks, audio) == output.jack_frame
    assert len(blocks) == len(output.block_frames)
    assert output.core.counter("input_dropped") == 0  # type: ignore[union-attr]
    assert output.core.drain_input() == []  # type: ignore[union-attr]


def test_input_overflow_is_counted_and_never_corrupts_what_was_kept() -> None:
    block = 4096
    frames = RING_FRAMES + 40 * block  # ~24.5 s without a drain
    audio = signal(frames + 10 * block)
    output = _output(audio)
    output.run(frames // block, block)
    core = output.core
    kept_blocks = RING_FRAMES // block
    dropped = frames - kept_blocks * block
    assert core.counter("input_dropped") == dropped  # type: ignore[union-attr]
    kept = core.drain_input()  # type: ignore[union-attr]
    assert _check_contiguous(kept, audio) == kept_blocks * block  # the oldest ring-full, intact
    resume = output.jack_frame
    output.run(10, block)
    later = core.drain_input()  # type: ignore[union-attr]
    assert _check_contiguous(later, audio, resume) == resume + 10 * block  # capture resumed
    assert core.counter("input_dropped") == dropped  # type: ignore[union-attr]


def test_small_blocks_overflow_the_block_stamps_and_are_counted() -> None:
    block = 16  # 16384 stamps fill after 262144 frames, before the frame ring does
    audio = signal(RING_BLOCKS * block + 200 * block)
    output = _output(audio)
    output.run(RING_BLOCKS + 100, block)
    core = output.core
    assert core.counter("input_dropped") == 100 * block  # type: ignore[union-attr]
    kept = core.drain_input()  # type: ignore[union-attr]
    assert len(kept) == RING_BLOCKS
    assert _check_contiguous(kept, audio) == RING_BLOCKS * block
    resume = output.jack_frame
    output.run(100, block)
    assert _check_contiguous(core.drain_input(), audio, resume) == resume + 100 * block  # type: ignore[union-attr]
