"""Benchmark of the generation engine.

1. Tiny model on CPU, per stage (text encoder, UNet steps, VAE, codec): our pipeline against
   plain diffusers ``StableDiffusionImg2ImgPipeline`` built from the same components with the
   same settings (img2img from the built-in drum grid), in the same run; ratio ours/diffusers
   (target <= 1.0). Stage times come from forward hooks on the shared modules, so both sides
   are measured the same way; the codec turns both images into audio.
2. ``--full``: the full-size Stable Diffusion v1.5 architecture (UNet 860M, VAE 84M, CLIP-L
   text encoder 123M parameters, random weights) written to disk as a diffusers folder
   (float32 safetensors, as a downloaded model) and loaded through the product's own path
   (``load_model``), then whole clips through the engine (img2img from the drum grid at
   denoising 0.75, guidance 7, a 512 px clip = 5.11 s):
   - on CPU: seconds per UNet step (batch 2, 64x64 latents) and per clip, fp32 and bf16;
   - on CUDA: the whole table, seconds per clip, per UNet step and real-time factor for
     each dtype (fp16, bf16, fp32 with TF32), scheduler and step count, and torch.compile
     off and on (fp16). About 5 minutes on one H100.
3. ``--layout``: the shipped riff-bridge-mini model's UNet step (batch 2, a 2-bar clip's
   latents at 128 BPM) and VAE decode with the weights in the default layout against
   channels-last (what the loader now always does), median of ``--repeats`` x 10 calls.

    .venv/bin/python bench/engine.py [--repeats N] [--steps K] [--full] [--skip-tiny] [--layout] [--device cuda:N]
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
from bridge.engine.tiny import build_tokenizer, write_tiny_model  # noqa: E402

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


# -- 2. full SD1.5 architecture, random weights, through load_model ---------------------------

def random_module(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``factory()`` built without initialisation (meta device), then filled quickly:
    matrices ~ N(0, 0.02), norm scales 1, biases 0. Only for modules without buffers."""
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 0.02)
            elif name.endswith("weight") and "norm" in name:
                param.fill_(1.0)
            else:
                param.zero_()
    return module


def write_full_model(folder: Path) -> Path:
    """The SD1.5 architecture with random weights as a diffusers folder (reused when present)."""
    if (folder / "model_index.json").is_file():
        return folder
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from bridge.engine.architecture import SD15

    staging = Path(tempfile.mkdtemp(prefix=".sd15-", dir=folder.parent))
    SD15.write_configs(staging)
    config = {k: v for k, v in SD15.unet.items() if not k.startswith("_")}
    random_module(lambda: UNet2DConditionModel(**config)).save_pretrained(str(staging / "unet"))
    config = {k: v for k, v in SD15.vae.items() if not k.startswith("_")}
    random_module(lambda: AutoencoderKL(**config)).save_pretrained(str(staging / "vae"))
    CLIPTextModel(CLIPTextConfig(**SD15.text_encoder)).save_pretrained(str(staging / "text_encoder"))
    build_tokenizer().save_pretrained(str(staging / "tokenizer"))  # ids < 514 of CLIP's 49408
    staging.rename(folder)
    return folder


def full_model_folder() -> Path:
    """Where the random full-size model lives (riff-bridge's cache)."""
    from bridge.engine.tiny import cache_root

    folder = cache_root() / "bench-sd15-random"
    folder.parent.mkdir(parents=True, exist_ok=True)
    return write_full_model(folder)


def parameter_counts(parts: ModelComponents) -> str:
    """``UNet 860M, VAE 84M, text 123M``."""
    count = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
    return (f"UNet {count(parts.unet):.0f}M, VAE {count(parts.vae):.0f}M, "
            f"text encoder {count(parts.text_encoder):.0f}M parameters")


def clip_request(scheduler: str, steps: int) -> GenerationRequest:
    """A 512 px clip (5.11 s), img2img from the drum grid at denoising 0.75 (the live default)."""
    return GenerationRequest(prompt_a="funky synth solo", width=512, bpm=120, steps=steps,
                             scheduler=scheduler, seed_image="grid", denoising=0.75, guidance=7.0)


def timed_clip(engine: DiffusionEngine, request: GenerationRequest) -> tuple[float, float]:
    """(wall seconds of one clip, seconds per UNet call) with warm caches."""
    started = time.perf_counter()
    clip = engine.render(request)
    seconds = time.perf_counter() - started
    calls = max(1, int(request.steps * request.denoising))
    return seconds, clip.timings.get("unet", 0.0) / calls


def cpu_full(folder: Path, steps: int) -> None:
    """Section 2 on CPU: s/step and s/clip, fp32 and bf16."""
    print(f"\n## 2. Full SD1.5 architecture (random weights) from {folder} through load_model, CPU; "
          f"img2img 512 px clip (5.11 s), {steps} steps x 0.75, guidance 7 (UNet batch 2)")
    print(f"{'dtype':<8}{'s/UNet step':>13}{'s/clip':>10}{'x real time':>13}{'load s':>9}")
    for dtype in ("fp32", "bf16"):
        started = time.perf_counter()
        parts = load_model(ModelSpec(str(folder), device="cpu", dtype=dtype))
        loaded = time.perf_counter() - started
        if dtype == "fp32":
            print(f"# {parameter_counts(parts)}")
        engine = DiffusionEngine.from_components(parts)
        engine.render(clip_request("dpm", 2))  # warm-up: oneDNN kernels, prompt and seed caches
        seconds, per_step = timed_clip(engine, clip_request("dpm", steps))
        print(f"{dtype:<8}{per_step:>13.2f}{seconds:>10.2f}{CLIP_SECONDS / seconds:>13.3f}{loaded:>9.1f}")
        del engine, parts


GPU_RUNS = (("pndm", 50), ("dpm", 25), ("dpm", 20), ("dpm", 12), ("euler", 20), ("ddim", 20))


def gpu_full(folder: Path, device: str, repeats: int) -> None:
    """Section 2 on CUDA: the whole table."""
    name = torch.cuda.get_device_name(device)
    print(f"\n## 2. Full SD1.5 architecture (random weights) through load_model on {device} ({name}); "
          f"img2img 512 px clip (5.11 s) from the drum grid, denoising 0.75, guidance 7; best of {repeats}")
    print(f"{'dtype':<6}{'compile':>8}{'scheduler':>10}{'steps':>6}{'UNet calls':>11}"
          f"{'s/clip':>9}{'s/step':>9}{'x real time':>13}")
    for dtype, compile_ in (("fp16", False), ("bf16", False), ("fp32", False), ("fp16", True)):
        try:
            parts = load_model(ModelSpec(str(folder), device=device, dtype=dtype, compile=compile_))
            engine = DiffusionEngine.from_components(parts)
            for scheduler, steps in GPU_RUNS:
                gpu_row(engine, dtype, compile_, scheduler, steps, repeats)
        except Exception as err:  # noqa: BLE001 - report and go on with the next setup
            print(f"{dtype:<6}{str(compile_):>8}  failed: {type(err).__name__}: {str(err)[:160]}")
        finally:
            parts = engine = None
            torch.cuda.empty_cache()


def gpu_row(engine: DiffusionEngine, dtype: str, compile_: bool, scheduler: str, steps: int,
            repeats: int) -> None:
    """One row: two warm-ups (they compile), then the best of ``repeats``."""
    request = clip_request(scheduler, steps)
    for _ in range(2):
        engine.render(request)
    seconds, per_step = min(timed_clip(engine, request) for _ in range(repeats))
    print(f"{dtype:<6}{str(compile_):>8}{scheduler:>10}{steps:>6}{int(steps * 0.75):>11}"
          f"{seconds:>9.3f}{per_step:>9.4f}{CLIP_SECONDS / seconds:>13.1f}")


def layout_comparison(repeats: int) -> None:
    """Section 3: contiguous vs channels-last weights of the mini model, same inputs."""
    parts = load_model(ModelSpec("mini", device="cpu"))
    unet, vae = parts.unet, parts.vae
    latents = torch.randn(2, unet.config.in_channels, 64, 48).contiguous(memory_format=torch.channels_last)
    text = torch.randn(2, 77, unet.config.cross_attention_dim)
    steps = torch.tensor([500, 500])
    calls = {"UNet step (batch 2)": lambda: unet(latents, steps, encoder_hidden_states=text),
             "VAE decode": lambda: vae.decode(latents[:1])}
    print(f"\n## riff-bridge-mini on CPU: weight layout (latents 64 x 48, median of {repeats} x 10 calls)")
    print(f"{'call':<22}{'contiguous ms':>15}{'channels-last ms':>18}{'ratio':>8}")
    for name, call in calls.items():
        times = {}
        for layout in (torch.contiguous_format, torch.channels_last):
            unet.to(memory_format=layout)
            vae.to(memory_format=layout)
            with torch.no_grad():
                call()
                times[layout] = statistics.median(run_time(lambda: [call() for _ in range(10)]) / 10
                                                  for _ in range(repeats)) * 1000
        base, last = times[torch.contiguous_format], times[torch.channels_last]
        print(f"{name:<22}{base:>15.1f}{last:>18.1f}{last / base:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="steps of the tiny comparison and the CPU full run")
    parser.add_argument("--full", action="store_true", help="also the full-size SD1.5 architecture (section 2)")
    parser.add_argument("--skip-tiny", action="store_true", help="skip the tiny-model comparison")
    parser.add_argument("--layout", action="store_true", help="also the mini model's weight layouts (section 3)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or cuda:N for section 2 (auto: cuda if present)")
    parser.add_argument("--cpu-steps", type=int, default=4, help="steps of the CPU full run (x 0.75 UNet calls)")
    args = parser.parse_args()
    import diffusers

    quiet_libraries(progress=False)
    print(f"# riff-bridge engine benchmark: torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    if not args.skip_tiny:
        tiny_comparison(args.repeats, args.steps)
    if args.layout:
        layout_comparison(args.repeats)
    if args.full:
        device = ModelSpec(device=args.device).resolved_device()
        folder = full_model_folder()
        if device.startswith("cuda"):
            gpu_full(folder, device, args.repeats)
        else:
            cpu_full(folder, args.cpu_steps)
            print("\nno GPU (CUDA) on this machine: the GPU table (dtype x scheduler x steps x compile) "
                  "needs one; run this same command there")


if __name__ == "__main__":
    main()
