"""The diffusion engine on the tiny random model: determinism, interpolation, img2img,
inpainting, negative prompts, cancellation, exact lengths, loading and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.engine.protocol import GenerationCancelled
from bridge.engine.request import GenerationRequest
from bridge.errors import InputFileError, ParameterError

# diffusers' DPM-Solver calls np.array(copy=False) on tensors (NumPy 2 deprecation), not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

BASE = dict(prompt_a="funky synth solo", seed_a=3, width=256, steps=6, guidance=7.0)


def render(engine, **changes):
    return engine.render(GenerationRequest(**{**BASE, **changes}))


def pixels(clip) -> np.ndarray:
    return np.asarray(clip.image, dtype=np.int16)


def test_same_request_twice_gives_identical_audio(tiny_engine) -> None:
    first, second = render(tiny_engine), render(tiny_engine)
    assert np.array_equal(first.audio, second.audio)
    assert np.array_equal(pixels(first), pixels(second))
    assert not np.array_equal(pixels(first), pixels(render(tiny_engine, seed_a=4)))


def test_alpha_zero_and_one_reproduce_the_endpoints(tiny_engine) -> None:
    between = dict(prompt_b="sad piano", seed_b=9)
    a = render(tiny_engine)
    b = render(tiny_engine, prompt_a="sad piano", seed_a=9)
    assert np.array_equal(render(tiny_engine, alpha=0.0, **between).audio, a.audio)
    assert np.array_equal(render(tiny_engine, alpha=1.0, **between).audio, b.audio)
    middle = pixels(render(tiny_engine, alpha=0.5, **between))
    assert not np.array_equal(middle, pixels(a)) and not np.array_equal(middle, pixels(b))


def test_clip_has_exact_length_stereo_audio_mel_and_timings(tiny_engine) -> None:
    request = GenerationRequest(**{**BASE, "width": None, "bars": 1, "bpm": 97})
    clip = tiny_engine.generate(request, 54_321, 48000)
    assert clip.audio.shape == (54_321, 2) and clip.audio.dtype == np.float32
    assert np.array_equal(clip.audio[:, 0], clip.audio[:, 1]) and np.abs(clip.audio).max() > 0.5
    assert clip.sample_rate == 48000 and clip.image.size == (request.generation_width(), 512)
    assert clip.mel.shape == (1, 512, request.generation_width())
    assert {"text_encoder", "unet", "vae", "codec"} <= set(clip.timings)


def test_strength_zero_returns_the_seed_image(tiny_engine) -> None:
    from bridge.engine.seeds import seed_image

    request = GenerationRequest(**BASE, seed_image="grid", denoising=0.0, bpm=120)
    clip = tiny_engine.render(request)
    assert np.array_equal(pixels(clip), np.asarray(seed_image("grid", request), dtype=np.int16))
    assert "unet" not in clip.timings


def test_img2img_changes_the_seed_and_follows_strength(tiny_engine) -> None:
    seed = np.asarray(render(tiny_engine, seed_image="grid", denoising=0.0).image, np.float32)
    light = np.asarray(render(tiny_engine, seed_image="grid", denoising=0.3).image, np.float32)
    heavy = np.asarray(render(tiny_engine, seed_image="grid", denoising=1.0).image, np.float32)
    assert 0 < np.abs(light - seed).mean() < np.abs(heavy - seed).mean()


def test_mask_keeps_its_black_region_exactly(tiny_engine) -> None:
    seed = pixels(render(tiny_engine, seed_image="grid", denoising=0.0))
    clip = render(tiny_engine, seed_image="grid", mask="keep-low", denoising=0.9)
    out = pixels(clip)
    assert np.array_equal(out[-128:], seed[-128:])  # kept: the lowest quarter (bottom rows)
    assert np.abs(out[:-128] - seed[:-128]).mean() > 5  # regenerated


def test_negative_prompt_changes_the_output(tiny_engine) -> None:
    plain = render(tiny_engine)
    steered = render(tiny_engine, negative="drums")
    assert not np.array_equal(pixels(plain), pixels(steered))


def test_prompt_embeddings_are_cached(tiny_engine) -> None:
    encoder = tiny_engine.prompts
    encoder.encode("a prompt nobody used before")
    hits = encoder.hits
    assert encoder.encode("a prompt nobody used before") is encoder.encode("a prompt nobody used before")
    assert encoder.hits == hits + 2


def test_cancel_stops_between_steps(tiny_engine) -> None:
    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(GenerationCancelled):
        tiny_engine.render(GenerationRequest(**BASE), cancel=cancel)
    assert len(polls) == 3


def test_cancel_stops_phase_recovery_part_way(tiny_engine) -> None:
    """A clip made stale while its audio is being recovered stops there, a few Griffin-Lim
    iterations in, instead of finishing the codec's work."""
    from bridge.audio.phase import STOP_EVERY

    polls: list[int] = []
    limit = [10**9]

    def cancel() -> bool:
        polls.append(1)
        return len(polls) > limit[0]

    tiny_engine.render(GenerationRequest(**BASE), cancel=cancel)
    total = len(polls)
    in_codec = 1 + -(-tiny_engine.codec.iterations // STOP_EVERY)  # one before it, one every STOP_EVERY iterations
    assert total > in_codec
    polls.clear()
    limit[0] = total - in_codec + 2  # true on the third of those: 4 iterations into phase recovery
    with pytest.raises(GenerationCancelled, match="during phase recovery"):
        tiny_engine.render(GenerationRequest(**BASE), cancel=cancel)
    assert len(polls) == limit[0] + 1 < total


def test_bad_inputs_fail_before_generation(tiny_engine, tmp_path) -> None:
    with pytest.raises(ParameterError, match="seed_image: expected a built-in name"):
        render(tiny_engine, seed_image="nope")
    with pytest.raises(InputFileError, match="no such file"):
        render(tiny_engine, seed_image=str(tmp_path / "gone.flac"))
    with pytest.raises(InputFileError, match="no such file"):
        render(tiny_engine, seed_image="grid", mask=str(tmp_path / "gone.png"))


def test_tiny_model_is_saved_as_safetensors_and_loaded_from_disk(tiny_engine, tiny_model_dir) -> None:
    files = {p.relative_to(tiny_model_dir).as_posix() for p in tiny_model_dir.rglob("*") if p.is_file()}
    assert {"unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
            "text_encoder/model.safetensors", "model_index.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".ckpt"))]
    parts = tiny_engine.components
    assert parts.folder == tiny_model_dir and parts.vae_scale_factor == 8
    assert type(parts.unet.attn_processors[next(iter(parts.unet.attn_processors))]).__name__ == "AttnProcessor2_0"


def test_tiny_model_is_built_deterministically(tiny_engine) -> None:
    import torch

    from bridge.engine.tiny import build_tiny_pipeline

    rebuilt = build_tiny_pipeline().unet.state_dict()
    loaded = tiny_engine.components.unet.state_dict()
    assert all(torch.equal(rebuilt[k], loaded[k]) for k in rebuilt)


# -- CLI ------------------------------------------------------------------------------------

@pytest.fixture
def tiny_cache(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RIFF_BRIDGE_CACHE", str(tiny_model_dir.parent))
    return tiny_model_dir


def test_render_cli_writes_exactly_four_seconds(tiny_cache, tmp_path, capsys) -> None:
    from bridge.cli import main

    out, image = tmp_path / "x.wav", tmp_path / "x.png"
    argv = ["render", "--prompt", "techno", "--model", "tiny", "--bars", "2", "--bpm", "120",
            "--out", str(out), "--image", str(image)]  # the command, default 50 steps
    assert main(argv) == 0
    info = sf.info(str(out))
    assert info.frames == 176_400 and info.samplerate == 44100 and info.channels == 2
    assert f"{info.frames / info.samplerate:.3f}" == "4.000"
    from PIL import Image

    assert Image.open(image).size == (400, 512)
    before = out.read_bytes()
    assert main(argv) == 2  # refuses to overwrite
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_render_cli_reports_bad_values_in_one_line(tiny_cache, tmp_path, capsys) -> None:
    from bridge.cli import main

    out = str(tmp_path / "y.wav")
    for extra, message in ((["--alpha", "1.5"], "alpha: expected a number in [0, 1], got 1.5"),
                           (["--width", "500"], "width: expected a multiple of 8"),
                           (["--seed-image", "nope"], "seed_image: expected a built-in name")):
        assert main(["render", "--prompt", "x", "--model", "tiny", "--out", out, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not Path(out).exists()


def test_interpolate_cli_joins_clips_to_exact_length(tiny_cache, tmp_path) -> None:
    from bridge.cli import main

    out = tmp_path / "long.wav"
    assert main(["interpolate", "--prompt", "a", "--to-prompt", "b", "--seed", "1", "--to-seed", "2",
                 "--clips", "3", "--bars", "1", "--bpm", "120", "--steps", "3", "--model", "tiny",
                 "--out", str(out)]) == 0
    audio, rate = sf.read(str(out))
    assert audio.shape == (3 * 88_200, 2) and rate == 44100


def test_tiny_model_cli_writes_a_loadable_folder(tmp_path, capsys) -> None:
    from bridge.cli import main

    folder = tmp_path / "tiny"
    assert main(["tiny-model", str(folder)]) == 0
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert main(["tiny-model", str(folder)]) == 2
    assert "pass --force" in capsys.readouterr().err
