"""Half-precision safety: a non-finite VAE result is retried in fp32, and a clip that stays
non-finite is a failure the live loop survives (never noise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import torch

from bridge.engine.protocol import NonFiniteError
from bridge.engine.request import GenerationRequest
from live_fixtures import RATE, longest_silence, wait_until

REQUEST = GenerationRequest(prompt_a="organ", bars=1, bpm=120.0, steps=3)


@pytest.fixture()
def bf16_engine(tiny_model_dir: Path) -> Any:
    """The tiny model in bf16 on the CPU (a half-precision model, as fp16 is on a GPU)."""
    from bridge.engine.diffusion import DiffusionEngine

    return DiffusionEngine(str(tiny_model_dir), device="cpu", dtype="bf16")


def _overflow_below_fp32(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
    """What fp16 overflow does to SD1.5's VAE decoder: NaN out, unless it runs in float32."""
    return output if output.dtype == torch.float32 else torch.full_like(output, float("nan"))


def test_a_nan_half_precision_decode_is_retried_in_fp32_and_gives_finite_audio(bf16_engine) -> None:
    handle = bf16_engine.components.vae.decoder.register_forward_hook(_overflow_below_fp32)
    try:
        clip = bf16_engine.render(REQUEST)
    finally:
        handle.remove()
    assert bf16_engine.pipeline.fp32_retries == 1
    assert np.isfinite(clip.audio).all() and np.abs(clip.audio).max() > 0.1
    image = np.asarray(clip.image, np.float32)
    assert image.std() > 1.0  # a real picture, not a flat black or white one


def _poison(module: torch.nn.Module) -> None:
    with torch.no_grad():
        module.bias.fill_(float("nan"))


def test_a_vae_that_stays_nan_in_fp32_fails_the_clip(bf16_engine) -> None:
    _poison(bf16_engine.components.vae.decoder.conv_out)
    with pytest.raises(NonFiniteError, match="non-finite image .* also in fp32"):
        bf16_engine.render(REQUEST)
    assert bf16_engine.pipeline.fp32_retries == 1


def test_non_finite_latents_fail_before_the_vae(bf16_engine) -> None:
    _poison(bf16_engine.components.unet.conv_out)
    with pytest.raises(NonFiniteError, match="non-finite latents"):
        bf16_engine.render(REQUEST)
    assert bf16_engine.pipeline.fp32_retries == 0


@pytest.fixture()
def live_rig(bf16_engine) -> Iterator[tuple[Any, Any, Any, list[BaseException]]]:
    from bridge.live.engine import LiveEngine, LiveOptions
    from bridge.live.offline import OfflineOutput, OfflineTransport
    from bridge.state import ControlState, StateStore
    from bridge.timing import Tempo

    store = StateStore(ControlState(bpm=120.0, bars=1, prompt_a="organ", prompt_b="organ", steps=3))
    output = OfflineOutput(RATE, 256, OfflineTransport(RATE, Tempo(120.0)))
    errors: list[BaseException] = []
    with LiveEngine(store, bf16_engine, output, LiveOptions(retry_seconds=0.05), on_error=errors.append) as live:
        yield live, output, bf16_engine, errors


def _next_ready(live: Any) -> bool:
    player = live.player if hasattr(live, "player") else live.processor.player  # native core / before
    following, current = player.offer.next, player.current
    return following is not None and (current is None or following.serial != current.serial)


def _play_bar(live: Any, output: Any) -> None:
    frames_per_bar = live.tempo().tempo.frames_per_bar(RATE)
    frame = output.transport.frame
    line = (int(frame // frames_per_bar) + 1) * frames_per_bar
    output.run(int(np.ceil((line - frame + 1) / 256)))


def test_a_clip_that_stays_nan_is_a_reported_failure_while_the_loop_plays_on(live_rig) -> None:
    live, output, engine, errors = live_rig
    output.run(1)
    for _ in range(2):
        assert wait_until(lambda: _next_ready(live), 120), live.metrics().summary()
        _play_bar(live, output)
    good = live.metrics().clips_generated
    _poison(engine.components.vae.decoder.conv_out)
    assert wait_until(lambda: live.metrics().failures >= 1, 120), live.metrics().summary()
    for _ in range(3):
        _play_bar(live, output)
    metrics = live.metrics()
    starts = live.boundaries()
    played = output.recording()[starts[0].jack_frame + 1:]
    assert any(isinstance(e, NonFiniteError) and "also in fp32" in str(e) for e in errors)
    assert "non-finite" in metrics.last_error
    assert metrics.clips_generated <= good + 1  # at most the clip already decoding when poisoned
    assert longest_silence(played) == 0 and np.isfinite(played).all()
    assert np.abs(output.recording()[-44100:]).max() > 0.05  # still playing the last good loop
