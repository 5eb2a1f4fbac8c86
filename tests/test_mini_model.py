"""The shipped riff-bridge-mini model through the real engine: a small version of the
bench/mini_model.py table (beat, frequency profile, novelty), negative prompts, interpolation.

References are real training loops: all 30 loops of each tested class in the shipped model's
dataset (seed 1, 480 loops), rendered again by FluidSynth. Fewer references would not be a
smaller version of the table: a class's average profile from a handful of loops is noisy, and
the typical nearest-neighbour distance among a handful of loops is far larger than among the
training set (so clips would look like copies against it)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from bridge.mini import assessment as check
from bridge.mini import evaluation as ev

# About 25 generations and 90 FluidSynth renders: about 80 s here; the module-scoped fixtures run inside
# the first test's time limit, so the limit is generous.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
CLASSES = ("house drums", "piano chords", "bass line")
SEEDS = (1, 2)
BPM = 100.0  # off the training grid's centre (125 BPM)


@pytest.fixture(scope="module")
def engine() -> object:
    from bridge.engine.diffusion import DiffusionEngine

    return DiffusionEngine("mini", device="cpu")


@pytest.fixture(scope="module")
def references() -> object:
    """A Dataset of the training loops of the tested classes."""
    from bridge.mini.dataset import Dataset, image_rows, loop_specs, render_batch

    pairs = [p for p in loop_specs(480, 1) if p[0] in CLASSES]
    with tempfile.TemporaryDirectory() as work:
        clips = render_batch([spec for _, spec in pairs], Path(work))
    return Dataset(np.stack([image_rows(c) for c in clips]), tuple(n for n, _ in pairs),
                   tuple(s for _, s in pairs))


@pytest.fixture(scope="module")
def table(engine: object, references: object) -> list:
    return check.class_table(engine, references, CLASSES, SEEDS, BPM)


def test_clips_keep_the_beat_far_above_random_images(table: list) -> None:
    for row in table:
        assert row.beat_ac > row.random_beat_ac + 0.1, row


def test_each_class_sounds_like_its_own_training_loops(table: list) -> None:
    for row in table:
        assert row.nearest_class == row.name, row


def test_clips_are_not_copies_of_training_loops(table: list) -> None:
    for row in table:  # farther than the class's training loops lie from their nearest other loop
        assert row.nearest_train > row.class_typical_train, row


def test_negative_prompt_drums_lowers_the_drum_band(engine: object) -> None:
    plain, negated = check.negative_effect(engine, "house drums with bass line", "drums", SEEDS, BPM)
    assert negated < plain * 0.95


def test_interpolation_moves_the_profile_from_chords_to_drums_monotonically(engine: object, references: object) -> None:
    steps = check.interpolation_steps(engine, references, "piano chords", "house drums", (0.0, 0.5, 1.0), SEEDS, BPM)
    positions = [step.position for step in steps]
    assert positions[0] < positions[1] < positions[2], steps


def test_random_images_have_no_beat_to_speak_of(engine: object) -> None:
    _, audio = check.random_clip(engine, 3, BPM)
    assert ev.beat_autocorrelation(audio, BPM) < 0.4
