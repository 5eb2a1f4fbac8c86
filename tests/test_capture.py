"""The demo's capture log: bar lines derived from the BBT a timebase master published."""

from __future__ import annotations

import numpy as np

from bridge.capture import Capture, alignment_errors

RATE, BLOCK, BPM = 44100, 256, 120.0
PER_BAR = RATE * 60 / BPM * 4  # 88200 frames


def _row(frame: float, bar_of: float) -> list[float]:
    """One block's log row at ``frame`` whose BBT says ``bar_of`` (bars since 0, fractional)."""
    bar, into = divmod(bar_of, 1.0)
    beats = into * 4
    beat, tick = divmod(beats, 1.0)
    return [frame, 1, 1, bar + 1, beat + 1, tick * 1920, 1920, BPM, 4]


def test_bar_lines_survive_a_block_whose_frame_and_bbt_disagree() -> None:
    frames = np.arange(0, 3 * PER_BAR, BLOCK, dtype=float)
    rows = [_row(f, f / PER_BAR) for f in frames]
    first_of_bar_2 = int(np.searchsorted(frames, PER_BAR))
    # after an xrun: this block's frame is 3 blocks behind the BBT it carries
    odd = frames[first_of_bar_2]
    rows[first_of_bar_2] = _row(odd - 3 * BLOCK, odd / PER_BAR)
    capture = Capture(np.zeros((10, 2), np.float32), 0, np.array(rows), RATE)
    starts = capture.bar_starts()
    assert set(starts) == {1, 2, 3, 4}
    assert max(abs(starts[bar] - (bar - 1) * PER_BAR) for bar in starts) < 1.0

    class Start:
        def __init__(self, frame: float) -> None:
            self.frame, self.new = frame, True

    assert max(alignment_errors([Start(PER_BAR), Start(2 * PER_BAR + 5)], starts)) < 6.0


def test_the_line_ending_the_last_logged_bar_is_known() -> None:
    """The log stops inside the block where a clip starts on the next bar line."""
    block = 1024
    frames = np.arange(0, 3 * PER_BAR - 100, block, dtype=float)
    capture = Capture(np.zeros((10, 2), np.float32), 0, np.array([_row(f, f / PER_BAR) for f in frames]), RATE)
    starts = capture.bar_starts()
    assert max(starts) == 4 and abs(starts[4] - 3 * PER_BAR) < 1.0

    class Start:
        frame, new = 3 * PER_BAR, True

    assert alignment_errors([Start()], starts) == [0.0]
