"""The diffusion canvas: clip widths rounded up to multiples of 64 px, cropped back after."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bridge.engine.canvas import CANVAS_STEP, Canvas, canvas_width
from bridge.engine.request import GenerationRequest
from bridge.engine.stopwatch import Stopwatch

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

BASE = dict(prompt_a="funky synth solo", seed_a=3, steps=6, guidance=7.0)


@pytest.mark.parametrize("width, canvas", [(64, 64), (176, 192), (400, 448), (448, 448), (456, 512)])
def test_canvas_width_rounds_up_to_a_multiple_of_the_step(width: int, canvas: int) -> None:
    assert canvas_width(width) == canvas and canvas % CANVAS_STEP == 0


def test_padding_wraps_the_first_columns_on_and_crop_takes_them_back_off() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (512, 200, 3), dtype=np.uint8)
    canvas = Canvas(200)
    padded = np.asarray(canvas.pad_image(Image.fromarray(pixels)))
    assert padded.shape == (512, 256, 3)
    assert np.array_equal(padded[:, :200], pixels) and np.array_equal(padded[:, 200:], pixels[:, :56])
    mask = np.linspace(0, 1, 200, dtype=np.float32)[None].repeat(8, 0)
    assert np.array_equal(canvas.pad_mask(mask)[:, 200:], mask[:, :56])
    assert np.array_equal(np.asarray(canvas.crop(Image.fromarray(padded))), pixels)
    with pytest.raises(ValueError, match="200 px wide, got 256"):
        canvas.pad_mask(np.zeros((8, 256), np.float32))


def test_widths_in_one_bucket_share_one_noise_shape(tiny_engine) -> None:
    shapes = {tiny_engine.job(GenerationRequest(**BASE, width=w), None, None, Stopwatch()).noise.shape
              for w in (200, 208, 248, 256)}
    assert shapes == {(1, 4, 64, 32)}


def test_a_clip_is_the_first_columns_of_its_canvas(tiny_engine) -> None:
    narrow = tiny_engine.render(GenerationRequest(**BASE, width=200))
    full = tiny_engine.render(GenerationRequest(**BASE, width=256))
    assert narrow.image.size == (200, 512) and narrow.mel.shape == (1, 512, 200)
    assert np.array_equal(np.asarray(narrow.image), np.asarray(full.image)[:, :200])
    assert narrow.image.getexif() == full.image.getexif()


def test_a_padded_mask_still_keeps_its_seed_region_exactly(tiny_engine) -> None:
    from bridge.engine.seeds import seed_image

    request = GenerationRequest(**BASE, bars=1, bpm=133.0, seed_image="grid", mask="keep-start", denoising=0.9)
    assert canvas_width(request.generation_width()) > request.generation_width()
    clip = tiny_engine.render(request)
    seed = np.asarray(seed_image("grid", request, tiny_engine.codec))
    kept = request.generation_width() // 4
    assert np.array_equal(np.asarray(clip.image)[:, :kept], seed[:, :kept])
    assert not np.array_equal(np.asarray(clip.image), seed)
