"""The denoising recipe, over public diffusers components (scheduler, UNet, VAE).

:class:`SpectrogramDiffusion` turns a :class:`DiffusionJob` (text embeddings already
interpolated, noise already slerped) into an image tensor:
  1. a fresh scheduler of the job's kind, ``steps`` timesteps; with a seed image only the
     last ``int(steps * strength)`` of them run (as diffusers' img2img: ``set_begin_index``);
  2. start latents: the seed image's VAE latents (distribution mean, so the result depends on
     the seeds only through the noise; cached per image content) noised to the first
     timestep; without a seed image,
     the noise scaled by the scheduler's ``init_noise_sigma``;
  3. with a mask, its regenerate-weights downsampled to the latent grid (area average);
  4. per timestep: stop if ``cancel()``; UNet on [negative, prompt] (classifier-free guidance
     when guidance > 1); guidance mix; scheduler step; with a mask, the kept region reset to
     the seed latents noised to the next timestep (clean after the last), as diffusers'
     inpainting does for 4-channel UNets;
  5. VAE decode to RGB in [0, 1], guarded against fp16 overflow (SD1.5's VAE overflows in
     fp16 on some latents): non-finite latents are a failure (:class:`NonFiniteError`);
     in fp16 the decode runs in fp32 when the VAE's config sets ``force_upcast``; a
     non-finite image from a half-precision decode is decoded again once in fp32 (a float32
     copy of the VAE made on first need); an image still not finite is a failure. Seed
     image encodes get the same retry.
UNet and VAE inputs are passed channels-last (oneDNN's and cuDNN's fast convolution layout:
1.6x faster VAE decodes on CPU here).
A job with a seed image and no steps to run (strength 0) returns the seed image unchanged.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bridge.engine.loader import ModelComponents
from bridge.engine.protocol import CancelCheck, GenerationCancelled, NonFiniteError
from bridge.engine.scheduler import make_scheduler
from bridge.engine.stopwatch import Stopwatch

#: Seed images whose VAE latents are kept.
LATENT_CACHE_SIZE = 8


@dataclass(frozen=True)
class DiffusionJob:
    """One image to denoise.

    ``text`` and ``negative``: ``(1, context, width)`` embeddings; ``noise``: ``(1, 4, h, w)``
    latent noise (h, w = image size / 8); ``image``: optional ``(1, 3, H, W)`` seed image in
    [-1, 1]; ``mask``: optional ``(1, 1, H, W)`` regenerate-weights in [0, 1] (needs ``image``).
    """

    text: torch.Tensor
    negative: torch.Tensor
    noise: torch.Tensor
    guidance: float = 7.0
    strength: float = 0.75
    steps: int = 50
    scheduler: str = "dpm"
    image: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.mask is not None and self.image is None:
            raise ValueError("a mask needs a seed image")

    def denoising_steps(self) -> int:
        """How many of ``steps`` run: all without a seed image, else ``int(steps * strength)``."""
        return self.steps if self.image is None else min(int(self.steps * self.strength), self.steps)


class SpectrogramDiffusion:
    """Runs :class:`DiffusionJob` s on one model's components (see the module recipe)."""

    def __init__(self, components: ModelComponents) -> None:
        self.parts = components
        self._latents: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._vae32: Any = None
        #: VAE calls that were run again in fp32 after a non-finite half-precision result.
        self.fp32_retries = 0

    @torch.no_grad()
    def __call__(self, job: DiffusionJob, cancel: CancelCheck | None = None,
                 watch: Stopwatch | None = None, progress: bool = False) -> torch.Tensor:
        """``(1, 3, H, W)`` float image in [0, 1]; raises GenerationCancelled between steps."""
        watch = watch or Stopwatch(self.parts.device)
        if job.image is not None and job.denoising_steps() == 0:
            return (job.image.float() / 2 + 0.5).clamp(0, 1)
        scheduler, timesteps = self.schedule(job)
        noise = job.noise.to(self.parts.device, self.parts.dtype)
        with watch.stage("vae"):
            clean = self.seed_latents(job.image)
        latents = self.start_latents(scheduler, timesteps, noise, clean)
        mask = self.latent_mask(job.mask, noise.shape[-2:]) if job.mask is not None else None
        embeddings = self.embeddings(job)
        for index, t in enumerate(_progress(timesteps, progress)):
            if cancel is not None and cancel():
                raise GenerationCancelled("cancelled between denoising steps")
            with watch.stage("unet"):
                latents = self.step(scheduler, latents, t, embeddings, job.guidance)
            if mask is not None:
                latents = self.keep_region(scheduler, latents, clean, noise, mask, timesteps, index)
        with watch.stage("vae"):
            return self.decode(latents)

    # 1. schedule
    def schedule(self, job: DiffusionJob) -> tuple[Any, torch.Tensor]:
        """A fresh scheduler and the timesteps this job runs (its last ``denoising_steps``)."""
        scheduler = make_scheduler(job.scheduler, self.parts.scheduler_config)
        scheduler.set_timesteps(job.steps, device=self.parts.device)
        start = (job.steps - job.denoising_steps()) * scheduler.order
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start)
        return scheduler, scheduler.timesteps[start:]

    # 2. start latents
    def seed_latents(self, image: torch.Tensor | None) -> torch.Tensor | None:
        """VAE latents of the seed image, reused while the same image comes back (live
        streams keep one seed image for many clips); None without a seed image."""
        if image is None:
            return None
        key = hashlib.blake2b(image.float().cpu().numpy().tobytes(), digest_size=16).digest()
        if key not in self._latents:
            self._latents[key] = self.encode(image)
            while len(self._latents) > LATENT_CACHE_SIZE:
                self._latents.popitem(last=False)
        self._latents.move_to_end(key)
        return self._latents[key]

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Scaled VAE latents (distribution mean) of a ``(1, 3, H, W)`` image in [-1, 1]."""
        def run(vae: Any) -> torch.Tensor:
            pixels = image.to(self.parts.device, vae.dtype).contiguous(memory_format=torch.channels_last)
            return vae.encode(pixels).latent_dist.mean

        latents = self.guarded(run, "seed image latents").to(self.parts.dtype)
        return latents * self.parts.vae.config.scaling_factor

    def start_latents(self, scheduler: Any, timesteps: torch.Tensor, noise: torch.Tensor,
                      clean: torch.Tensor | None) -> torch.Tensor:
        """Noised seed latents at the first timestep, or scaled noise for text-to-image."""
        if clean is None:
            return noise * scheduler.init_noise_sigma
        return scheduler.add_noise(clean, noise, timesteps[:1])

    # 3. mask
    def latent_mask(self, mask: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """Regenerate-weights averaged over each latent cell."""
        weights = mask.to(self.parts.device, torch.float32)
        return F.adaptive_avg_pool2d(weights, tuple(size)).to(self.parts.dtype)

    # 4. denoising
    def embeddings(self, job: DiffusionJob) -> torch.Tensor:
        """``[negative, text]`` for guidance > 1, else ``text`` alone, on the model's device."""
        text = job.text.to(self.parts.device, self.parts.dtype)
        if job.guidance <= 1.0:
            return text
        return torch.cat([job.negative.to(self.parts.device, self.parts.dtype), text])

    def step(self, scheduler: Any, latents: torch.Tensor, t: torch.Tensor,
             embeddings: torch.Tensor, guidance: float) -> torch.Tensor:
        """One UNet evaluation, guidance mix and scheduler step: x_t -> x_{t-1}."""
        batch = latents.repeat(embeddings.shape[0], 1, 1, 1)
        model_input = scheduler.scale_model_input(batch, t).contiguous(memory_format=torch.channels_last)
        predicted = self.parts.unet(model_input, t, encoder_hidden_states=embeddings).sample
        if embeddings.shape[0] == 2:
            negative, text = predicted.chunk(2)
            predicted = negative + guidance * (text - negative)
        return scheduler.step(predicted, t, latents).prev_sample

    def keep_region(self, scheduler: Any, latents: torch.Tensor, clean: torch.Tensor,
                    noise: torch.Tensor, mask: torch.Tensor, timesteps: torch.Tensor,
                    index: int) -> torch.Tensor:
        """Latents with the kept (mask 0) region reset to the seed, at the next noise level."""
        proper = clean
        if index < len(timesteps) - 1:
            proper = scheduler.add_noise(clean, noise, timesteps[index + 1:index + 2])
        return mask * latents + (1.0 - mask) * proper

    # 5. decode
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] of scaled latents; NonFiniteError for NaN/Inf latents or image."""
        if not bool(torch.isfinite(latents).all()):
            raise NonFiniteError(f"the UNet produced non-finite latents (NaN/Inf) in {_name(self.parts.dtype)}; "
                                 f"the clip is dropped (try --dtype bf16 or fp32)")
        scaled = (latents / self.parts.vae.config.scaling_factor).contiguous(memory_format=torch.channels_last)
        image = self.guarded(lambda vae: vae.decode(scaled.to(vae.dtype)).sample, "image")
        return (image.float() / 2 + 0.5).clamp(0, 1)

    def guarded(self, run: Any, what: str) -> torch.Tensor:
        """``run(vae)`` with the model's VAE (fp32 at once when fp16 and ``force_upcast``),
        again once with the fp32 VAE after a non-finite result; NonFiniteError if still so."""
        vae = self.parts.vae
        if self.parts.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
            vae = self.vae32()
        result, retried = run(vae), False
        if not bool(torch.isfinite(result).all()) and vae.dtype != torch.float32:
            self.fp32_retries += 1
            result, retried = run(self.vae32()), True
        if not bool(torch.isfinite(result).all()):
            raise NonFiniteError(f"the VAE gave a non-finite {what} (NaN/Inf){' also' if retried else ''} in "
                                 f"fp32; the clip is dropped (the model's VAE weights may be broken)")
        return result

    def vae32(self) -> Any:
        """A float32 copy of the VAE on the model's device (the model's own when it is fp32)."""
        vae = self.parts.vae
        if vae.dtype == torch.float32:
            return vae
        if self._vae32 is None:
            copy = type(vae).from_config(vae.config)
            copy.load_state_dict({k: v.float() for k, v in vae.state_dict().items()})
            self._vae32 = copy.to(self.parts.device).eval().requires_grad_(False)
            if hasattr(copy, "set_attn_processor"):
                from diffusers.models.attention_processor import AttnProcessor2_0

                copy.set_attn_processor(AttnProcessor2_0())
        return self._vae32


def _name(dtype: torch.dtype) -> str:
    return {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}.get(dtype, str(dtype))


def _progress(timesteps: torch.Tensor, enabled: bool) -> Any:
    """``timesteps`` wrapped in a tqdm bar when ``enabled``."""
    if not enabled:
        return timesteps
    from tqdm.auto import tqdm

    return tqdm(timesteps, desc="denoising", leave=False)
