"""Benchmark of the generation engine.

1. Tiny model on CPU, per stage (text encoder, UNet steps, VAE, codec): our pipeline against
   plain diffusers ``StableDiffusionImg2ImgPipeline`` built from the same components with the
   same settings (img2img from the built-in drum grid), in the same run; ratio ours/diffusers
   (target <= 1.0). Stage times come from forward hooks on the shared modules, so both sides
   are measured the same way; the codec turns both images into audio.
2. One UNet step of the full Stable Diffusion v1.5 architecture (random weights, built in
   code, nothing downloaded) on CPU at 512x512 with guidance (batch 2), fp32 and bf16.
3. Where CUDA is available: a whole 512x512 clip (5.11 s of audio) with the full architecture
   (random weights) through our engine, in fp16 with and without ``torch.compile``, at a few
   step counts of DPM-Solver++, as seconds per clip and real-time factor (goal: 20x on one
   H100). Without CUDA it says so.

    .venv/bin/python bench/engine.py [--repeats N] [--steps K] [--skip-full]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.audio.codec import SpectrogramCodec  # noqa: E402
from bridge.audio.image import decode_image  # noqa: E402
from bridge.engine.diffusion import DiffusionEngine  # noqa: E402
from bridge.engine.loader import ModelComponents, ModelSpec, load_model, quiet_libraries  # noqa: E402
from bridge.engine.request import GenerationRequest  # noqa: E402
from bridge.engine.seeds import seed_image  # noqa: E402
from bridge.engine.tiny import SD_SCHEDULER_CONFIG, build_tokenizer, write_tiny_model  # noqa: E402

CLIP_SECONDS = 511 * 441 / 44100  # a 512 px clip
STAGES = ("text_encoder", "unet", "vae", "other", "codec", "total")


class StageHooks:
    """Wall time spent inside given modules' forward calls, per stage name."""

    def __init__(self, modules: dict[str, list[torch.nn.Module]], cuda: bool = False) -> None:
        self.seconds: dict[str, float] = {}
        self._cuda = cuda
        self._handles = []
        for stage, group in modules.items():
            for module in group:
                self._handles.append(module.register_forward_pre_hook(self._start(stage)))
                self._handles.append(module.register_forward_hook(self._stop(stage)))
        self._started: dict[str, float] = {}

    def _start(self, stage: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            self._sync()
            self._started[stage] = time.perf_counter()
        return hook

    def _stop(self, stage: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            self._sync()
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - self._started[stage]
        return hook

    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize()

    def reset(self) -> None:
        """Forget the accumulated times."""
        self.seconds = {}

    def remove(self) -> None:
        """Unregister every hook."""
        for handle in self._handles:
            handle.remove()


def stage_modules(parts: ModelComponents) -> dict[str, list[torch.nn.Module]]:
    """Modules whose forward time is each stage's."""
    return {"text_encoder": [parts.text_encoder], "unet": [parts.unet],
            "vae": [parts.vae.encoder, parts.vae.decoder]}


@contextmanager
def timed(into: dict[str, float], name: str) -> Iterator[None]:
    """Add the block's wall time to ``into[name]``."""
    started = time.perf_counter()
    yield
    into[name] = into.get(name, 0.0) + time.perf_counter() - started


# -- 1. tiny model: ours against diffusers --------------------------------------------------

def diffusers_img2img(parts: ModelComponents) -> Any:
    """Plain diffusers img2img over the same component objects, DPM-Solver++ scheduler."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline

    pipe = StableDiffusionImg2ImgPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
        scheduler=DPMSolverMultistepScheduler.from_config(parts.scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_ours(engine: DiffusionEngine, request: GenerationRequest, hooks: StageHooks) -> dict[str, float]:
    """One clip through our engine with cold caches (prompt, seed latents); stage seconds."""
    engine.prompts._cache.clear()
    engine.pipeline._latents.clear()
    hooks.reset()
    times: dict[str, float] = {}
    with timed(times, "total"):
        clip = engine.render(request)
    times.update(hooks.seconds, codec=clip.timings["codec"])
    return times


def run_diffusers(pipe: Any, request: GenerationRequest, image: Any, codec: SpectrogramCodec,
                  hooks: StageHooks) -> dict[str, float]:
    """One clip through diffusers img2img plus our codec; stage seconds."""
    hooks.reset()
    times: dict[str, float] = {}
    with timed(times, "total"):
        generator = torch.Generator("cpu").manual_seed(request.seed_a)
        out = pipe(request.prompt_a, image=image, strength=request.denoising,
                   num_inference_steps=request.steps, guidance_scale=request.guidance,
                   negative_prompt=request.negative, generator=generator).images[0]
        with timed(times, "codec"):
            mel, _ = decode_image(out, stereo=False)
            codec.mel_to_audio(mel, request.num_samples(44100), 44100)
    times.update(hooks.seconds)
    return times


def median_stages(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-stage medians, with ``other`` = total minus the named stages."""
    named = ("text_encoder", "unet", "vae", "codec")
    result = {stage: statistics.median(r.get(stage, 0.0) for r in runs) for stage in STAGES if stage != "other"}
    result["other"] = statistics.median(r["total"] - sum(r.get(s, 0.0) for s in named) for r in runs)
    return result


def tiny_comparison(repeats: int, steps: int) -> None:
    """Section 1."""
    folder = write_tiny_model(Path(tempfile.mkdtemp(prefix="riff-bench-")) / "tiny")
    parts = load_model(ModelSpec(str(folder), device="cpu"))
    engine = DiffusionEngine.from_components(parts)
    request = GenerationRequest(prompt_a="funky synth solo", negative="", seed_a=42, width=512, bpm=120,
                                steps=steps, denoising=0.75, guidance=7.0, seed_image="grid")
    image = seed_image("grid", request, engine.codec)
    pipe, hooks = diffusers_img2img(parts), StageHooks(stage_modules(parts))
    run_ours(engine, request, hooks), run_diffusers(pipe, request, image, engine.codec, hooks)  # warm-up
    ours, theirs = [], []
    for _ in range(repeats):  # alternate so load changes hit both alike
        ours.append(run_ours(engine, request, hooks))
        theirs.append(run_diffusers(pipe, request, image, engine.codec, hooks))
    hooks.remove()
    a, b = median_stages(ours), median_stages(theirs)
    print(f"\n## 1. Tiny model on CPU: img2img 512x512 (5.11 s clip), {steps} steps x strength 0.75 "
          f"= {int(steps * 0.75)} UNet calls, guidance 7, DPM-Solver++; median of {repeats}")
    print(f"{'stage':<14}{'ours (s)':>10}{'diffusers (s)':>15}{'ours/diffusers':>16}")
    for stage in STAGES:
        ratio = a[stage] / b[stage] if b[stage] > 1e-6 else float("nan")
        print(f"{stage:<14}{a[stage]:>10.4f}{b[stage]:>15.4f}{ratio:>16.2f}")
    warm = statistics.median(run_time(lambda: engine.render(request)) for _ in range(repeats))
    print(f"total, ours with warm caches (prompt embeddings and seed-image latents reused, as in a "
          f"live stream; no text encoder, no VAE encode): {warm:.4f} s, ratio {warm / b['total']:.2f}")


def run_time(work: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


# -- full SD1.5 architecture, random weights ------------------------------------------------

SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, norm_num_groups=32)
SD15_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
    block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32)
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
              projection_dim=768)


def random_module(factory: Callable[[], torch.nn.Module], device: str, dtype: torch.dtype) -> torch.nn.Module:
    """``factory()`` built without initialisation (meta device), then filled quickly:
    matrices ~ N(0, 0.02), norm scales 1, biases 0. Only for modules without buffers."""
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device=device).to(dtype)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 0.02)
            elif name.endswith("weight") and "norm" in name:
                param.fill_(1.0)
            else:
                param.zero_()
    return module.eval().requires_grad_(False)


def sd15_unet(device: str, dtype: torch.dtype) -> Any:
    """The SD1.5 UNet architecture with random weights, SDPA attention."""
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet = random_module(lambda: UNet2DConditionModel(**SD15_UNET), device, dtype)
    unet.set_attn_processor(AttnProcessor2_0())
    return unet


def cpu_unet_step(repeats: int) -> None:
    """Section 2."""
    print("\n## 2. Full SD1.5 UNet (860M parameters, random weights), one step on CPU, "
          "512x512 latents 64x64, batch 2 (guidance)")
    print(f"{'dtype':<8}{'seconds/step':>14}")
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        unet = sd15_unet("cpu", dtype)
        latents = torch.randn(2, 4, 64, 64, dtype=dtype)
        text = torch.randn(2, 77, 768, dtype=dtype)
        with torch.no_grad():
            step = lambda: unet(latents, torch.tensor(500), encoder_hidden_states=text)  # noqa: E731
            step()
            seconds = min(run_time(step) for _ in range(repeats))
        print(f"{name:<8}{seconds:>14.2f}")
        del unet


# -- 3. GPU ------------------------------------------------------------------------------

def sd15_components(device: str, dtype: torch.dtype) -> ModelComponents:
    """Full SD1.5 architecture (UNet, VAE, CLIP-L text encoder) with random weights."""
    from diffusers import AutoencoderKL
    from diffusers.models.attention_processor import AttnProcessor2_0
    from transformers import CLIPTextConfig, CLIPTextModel

    vae = random_module(lambda: AutoencoderKL(**SD15_VAE), device, dtype)
    vae.set_attn_processor(AttnProcessor2_0())
    text = CLIPTextModel(CLIPTextConfig(**CLIP_L)).to(device, dtype).eval().requires_grad_(False)
    return ModelComponents(unet=sd15_unet(device, dtype), vae=vae, text_encoder=text,
                           tokenizer=build_tokenizer(), scheduler_config=dict(SD_SCHEDULER_CONFIG),
                           device=torch.device(device), dtype=dtype, folder=Path("(built in code)"))


def compiled(parts: ModelComponents) -> ModelComponents:
    """The same components with channels-last, torch.compile'd UNet and VAE decoder."""
    unet = parts.unet.to(memory_format=torch.channels_last)
    parts.vae.to(memory_format=torch.channels_last)
    parts.vae.decoder = torch.compile(parts.vae.decoder, mode="max-autotune-no-cudagraphs", fullgraph=False)
    unet = torch.compile(unet, mode="max-autotune-no-cudagraphs", fullgraph=False)
    return ModelComponents(unet=unet, vae=parts.vae, text_encoder=parts.text_encoder,
                           tokenizer=parts.tokenizer, scheduler_config=parts.scheduler_config,
                           device=parts.device, dtype=parts.dtype, folder=parts.folder)


def clip_seconds(engine: DiffusionEngine, request: GenerationRequest, repeats: int) -> float:
    """Best wall seconds per clip (after two warm-ups, which also compile)."""
    for _ in range(2):
        engine.render(request)
    return min(run_time(lambda: engine.render(request)) for _ in range(repeats))


def gpu_clips(repeats: int) -> None:
    """Section 3."""
    print("\n## 3. GPU: full SD1.5 architecture (random weights), 512x512 clip (5.11 s) end to end "
          "(text encoder, UNet, VAE, codec on GPU)")
    if not torch.cuda.is_available():
        print("no GPU (CUDA) present on this machine: section skipped")
        return
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    print(f"{'setup':<44}{'s/clip':>9}{'x real time':>13}")
    base = sd15_components("cuda", torch.float16)
    for label, parts in (("fp16 eager", base), ("fp16 compiled, channels-last", None)):
        try:
            parts = parts or compiled(base)
        except Exception as err:  # noqa: BLE001 - report and go on
            print(f"{label:<44} failed: {type(err).__name__}: {err}")
            continue
        engine = DiffusionEngine.from_components(parts)
        for scheduler, steps, image in (("pndm", 50, "grid"), ("dpm", 20, "grid"), ("dpm", 12, "grid"),
                                        ("dpm", 8, None)):
            request = GenerationRequest(prompt_a="funky synth solo", width=512, bpm=120, steps=steps,
                                        scheduler=scheduler, seed_image=image)
            calls = int(steps * 0.75) if image else steps
            try:
                seconds = clip_seconds(engine, request, repeats)
            except Exception as err:  # noqa: BLE001
                print(f"{label:<44} failed: {type(err).__name__}: {str(err)[:120]}")
                break
            what = f"{label}, {scheduler} {steps} steps ({calls} UNet calls)"
            print(f"{what:<44}{seconds:>9.3f}{CLIP_SECONDS / seconds:>13.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="steps of the tiny-model comparison")
    parser.add_argument("--skip-full", action="store_true", help="skip the full-architecture CPU step")
    args = parser.parse_args()
    import diffusers

    quiet_libraries(progress=False)
    print(f"# riff-bridge engine benchmark: torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    tiny_comparison(args.repeats, args.steps)
    if not args.skip_full:
        cpu_unet_step(max(1, args.repeats // 3))
    gpu_clips(args.repeats)


if __name__ == "__main__":
    main()
