"""Several requests of the same shape painted in one UNet batch (a worker's batched path).

:class:`BatchPainter` runs the recipe of :class:`~bridge.engine.pipeline.SpectrogramDiffusion`
on ``B`` jobs at once. The jobs must share a shape key (:meth:`bridge.remote.wire.Call.shape_key`:
canvas width, steps, scheduler, denoising steps, seed image or not, mask or not, guidance on or
off), so one scheduler and one list of timesteps serve them all:
  1. per job, as the single path does: seed image and mask fitted and wrapped on the canvas,
     text embeddings interpolated, noise slerped (:meth:`DiffusionEngine.job`);
  2. the noise, seed latents and masks stacked along the batch axis;
  3. per timestep one UNet call on ``[negatives..., texts...]`` (2B rows with guidance), each
     job's own guidance scale, one scheduler step for the batch, the kept regions reset;
  4. one VAE decode of the batch, then each image cropped back as the single path does.
Results match the single path to float rounding (a batched convolution sums in another
order), not bit for bit; a worker sends a batch of one through the single path.
Cancellation: the batch stops between steps once every job's cancel check is true.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from PIL import Image

from bridge.engine.canvas import Canvas
from bridge.engine.diffusion import DiffusionEngine, Inputs
from bridge.engine.pipeline import DiffusionJob
from bridge.engine.protocol import GenerationCancelled
from bridge.engine.request import GenerationRequest
from bridge.engine.stopwatch import Stopwatch


class BatchPainter:
    """Paints same-shape requests together on ``engine``'s model (see the module recipe)."""

    def __init__(self, engine: DiffusionEngine) -> None:
        self.engine = engine
        self.pipeline = engine.pipeline

    @torch.no_grad()
    def paint(self, requests: Sequence[GenerationRequest], inputs: Sequence[Inputs],
              cancel: Callable[[], bool] | None = None, watch: Stopwatch | None = None) -> list[Image.Image]:
        """One spectrogram image per request (generation width wide)."""
        watch = watch or Stopwatch(self.engine.components.device)
        canvases = [Canvas(r.generation_width()) for r in requests]
        with watch.stage("inputs"):
            padded = [(c.pad_image(s), c.pad_mask(m)) for c, (s, m) in zip(canvases, inputs)]
        jobs = [self.engine.job(r, s, m, watch) for r, (s, m) in zip(requests, padded)]
        pixels = self.denoise(jobs, cancel, watch)
        return [canvas.crop(self.engine.finish_image(pixels[i:i + 1], *padded[i]))
                for i, canvas in enumerate(canvases)]

    def denoise(self, jobs: Sequence[DiffusionJob], cancel: Callable[[], bool] | None,
                watch: Stopwatch) -> torch.Tensor:
        """``(B, 3, H, W)`` images in [0, 1] of jobs sharing one shape key."""
        pipe, first = self.pipeline, jobs[0]
        parts = pipe.parts
        scheduler, timesteps = pipe.schedule(first)
        noise = torch.cat([j.noise for j in jobs]).to(parts.device, parts.dtype)
        clean = None
        if first.image is not None:
            with watch.stage("vae"):
                clean = torch.cat([pipe.seed_latents(j.image) for j in jobs])
        latents = pipe.start_latents(scheduler, timesteps, noise, clean)
        mask = None
        if first.mask is not None:
            mask = torch.cat([pipe.latent_mask(j.mask, noise.shape[-2:]) for j in jobs])
        embeddings, guidance = self.embeddings(jobs)
        for index, t in enumerate(timesteps):
            if cancel is not None and cancel():
                raise GenerationCancelled("every request of the batch was abandoned")
            with watch.stage("unet"):
                latents = self.step(scheduler, latents, t, embeddings, guidance)
            if mask is not None:
                latents = pipe.keep_region(scheduler, latents, clean, noise, mask, timesteps, index)
        with watch.stage("vae"):
            return pipe.decode(latents)

    def embeddings(self, jobs: Sequence[DiffusionJob]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[negatives..., texts...]`` (or texts alone without guidance) and the per-job
        guidance scales as a ``(B, 1, 1, 1)`` tensor (None without guidance)."""
        parts = self.pipeline.parts
        texts = torch.cat([j.text for j in jobs]).to(parts.device, parts.dtype)
        if jobs[0].guidance <= 1.0:
            return texts, None
        negatives = torch.cat([j.negative for j in jobs]).to(parts.device, parts.dtype)
        scales = torch.tensor([j.guidance for j in jobs], device=parts.device, dtype=parts.dtype)
        return torch.cat([negatives, texts]), scales.view(-1, 1, 1, 1)

    def step(self, scheduler: Any, latents: torch.Tensor, t: torch.Tensor,
             embeddings: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        """One batched UNet evaluation, per-job guidance mix and scheduler step."""
        repeats = embeddings.shape[0] // latents.shape[0]
        batch = latents.repeat(repeats, 1, 1, 1)
        model_input = scheduler.scale_model_input(batch, t).contiguous(memory_format=torch.channels_last)
        predicted = self.pipeline.parts.unet(model_input, t, encoder_hidden_states=embeddings).sample
        if guidance is not None:
            negative, text = predicted.chunk(2)
            predicted = negative + guidance * (text - negative)
        return scheduler.step(predicted, t, latents).prev_sample
