"""The seed walk: which prompts, seeds and alpha the next clip is made from (pure logic).

With one prompt (``prompt_a == prompt_b``) the stream walks seeds so the music evolves:
clip by clip, alpha steps from (prompt, n) to (prompt, n + 1) in ``alpha_step`` increments,
then on to n + 2, and so on, starting from the performer's ``seed_a``. When the performer
changes the prompt (or ``seed_a``), the walk heads from where it is (the nearer end of its
current segment) to the new prompt, in the same alpha steps, and walks seeds from there.
With two different prompts (or ``alpha_step`` 0) the performer drives A, B and alpha
directly and each clip is exactly the control state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bridge.engine.request import GenerationRequest
from bridge.engine.seedaudio import SeedAudio
from bridge.errors import check_range
from bridge.state import SEED_MAX, ControlState
from bridge.timing import Tempo

#: Reference app's step (4 clips from one seed to the next).
DEFAULT_ALPHA_STEP = 0.25


@dataclass(frozen=True)
class Point:
    """One end of an interpolation: a prompt and a noise seed."""

    prompt: str
    seed: int

    def next_seed(self) -> "Point":
        """The same prompt with the following seed (wrapping at the seed range)."""
        return Point(self.prompt, (self.seed + 1) % (SEED_MAX + 1))


@dataclass(frozen=True)
class WalkStep:
    """Where one clip sits: ``alpha`` of the way from ``start`` to ``end``.

    ``index``/``steps`` count the walk's alpha steps (alpha = index / steps); ``target`` is
    the performer's (prompt_a, seed_a) the walk was following; ``manual`` marks a clip made
    from the control state as given.
    """

    start: Point
    end: Point
    alpha: float
    index: int
    steps: int
    target: Point
    manual: bool = False

    def nearest(self) -> Point:
        """The end of the segment this clip is closer to."""
        return self.start if self.alpha < 0.5 else self.end


@dataclass(frozen=True)
class Plan:
    """Everything that decides a clip's content except the tempo: the walk step and the
    control values that are not walked (bars, negative prompt, guidance...). ``input``: with
    ``source = input``, the live input loop the clip restyles (it replaces the seed image)."""

    step: WalkStep
    negative: str
    guidance: float
    denoising: float
    steps: int
    bars: int
    seed_image: str
    mask: str
    input: SeedAudio | None = None

    def request(self, tempo: Tempo) -> GenerationRequest:
        """The generation request of this plan at ``tempo`` (bars at that tempo and meter)."""
        step = self.step
        return GenerationRequest(
            prompt_a=step.start.prompt, prompt_b=step.end.prompt, seed_a=step.start.seed,
            seed_b=step.end.seed, alpha=step.alpha, negative=self.negative, guidance=self.guidance,
            denoising=self.denoising, steps=self.steps,
            seed_image=None if self.input is not None else self.seed_image or None,
            mask=self.mask or None, bars=self.bars, bpm=tempo.bpm,
            beats_per_bar=tempo.meter.beats_per_bar, seed_audio=self.input,
        )

    def without_input(self) -> "Plan":
        """This plan with no input loop attached (to compare plans apart from their input)."""
        return replace(self, input=None) if self.input is not None else self


class SeedWalk:
    """Plans the next clip from the previous clip's step and the control state."""

    def __init__(self, alpha_step: float = DEFAULT_ALPHA_STEP) -> None:
        check_range("alpha_step", alpha_step, 0.0, 1.0)
        self.alpha_step = alpha_step
        self.steps = max(1, round(1.0 / alpha_step)) if alpha_step > 0 else 0

    def plan(self, previous: WalkStep | None, state: ControlState) -> Plan:
        """The plan of the clip that follows one made at ``previous`` (None: the first)."""
        step = self.next_step(previous, state)
        return Plan(step, state.negative, state.guidance, state.denoising, state.steps,
                    state.bars, state.seed_image, state.mask)

    def next_step(self, previous: WalkStep | None, state: ControlState) -> WalkStep:
        """The walk step after ``previous`` under ``state`` (see the module docstring)."""
        target = Point(state.prompt_a, state.seed_a)
        if self.steps == 0 or state.prompt_a != state.prompt_b:
            return WalkStep(target, Point(state.prompt_b, state.seed_b), state.alpha, 0, 1,
                            target, manual=True)
        if previous is None:
            return self._segment(target, target.next_seed(), 0, target)
        if previous.manual or previous.target != target:
            return self._redirect(previous, target)
        if previous.index < previous.steps:
            return self._segment(previous.start, previous.end, previous.index + 1, target)
        return self._segment(previous.end, previous.end.next_seed(), 1, target)

    def _redirect(self, previous: WalkStep, target: Point) -> WalkStep:
        start = previous.nearest()
        seed = target.seed if target.seed != previous.target.seed else start.seed + 1
        end = Point(target.prompt, seed % (SEED_MAX + 1))
        if end == start:
            end = start.next_seed()
        return self._segment(start, end, 1, target)

    def _segment(self, start: Point, end: Point, index: int, target: Point) -> WalkStep:
        return WalkStep(start, end, index / self.steps, index, self.steps, target)
