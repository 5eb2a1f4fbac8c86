"""The diffusion engine: a :class:`GenerationRequest` in, a bar-exact :class:`Clip` out.

Recipe of :meth:`DiffusionEngine.generate`:
  1. inputs: the seed image (built-in, painted by the model for ``accent``, image or audio file,
     or the request's seed audio) and mask fitted to the request's
     generation width (:mod:`bridge.engine.seeds`, :mod:`bridge.engine.mask`), then wrapped
     on to the canvas width (:mod:`bridge.engine.canvas`: a multiple of 64 px);
  2. text: the embeddings of prompt A and prompt B (cached) interpolated linearly with
     alpha; the negative prompt's embedding is the unconditional one (empty prompt if none);
  3. noise: seed A's and seed B's latent noise (CPU generators, canvas-wide) interpolated
     spherically;
  4. denoising (:class:`~bridge.engine.pipeline.SpectrogramDiffusion`), interruptible
     between steps; strength = the request's denoising (one value, so its interpolation
     between endpoints is the identity, as is guidance's);
  5. image: with a mask, the kept (black) region of the seed image pasted back in pixel
     space, so it is preserved exactly, and cropped from the canvas to the generation
     width; with strength 0, the seed image itself;
  6. audio: the image's mel decoded by the codec to exactly ``num_samples`` frames at
     ``sample_rate``, duplicated to stereo.
Alpha 0 reproduces endpoint A exactly and alpha 1 endpoint B (both interpolations return
their endpoints exactly). Timings: ``inputs`` (with the ``accent`` seed, its whole first pass),
``text_encoder``, ``unet``, ``vae``, ``codec``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from bridge.audio.codec import SpectrogramCodec
from bridge.audio.image import decode_image
from bridge.engine.canvas import Canvas, canvas_width
from bridge.engine.clip import Clip
from bridge.engine.embedding import PromptEncoder
from bridge.engine.loader import DEFAULT_MODEL, ModelComponents, ModelSpec, load_model
from bridge.engine.mask import check_mask_source, mask_array
from bridge.engine.noise import lerp, seeded_noise, slerp
from bridge.engine.pipeline import DiffusionJob, SpectrogramDiffusion
from bridge.engine.protocol import CancelCheck, GenerationCancelled
from bridge.engine.request import GenerationRequest
from bridge.engine.seedaudio import seed_audio_image
from bridge.engine.seeds import check_seed_source, seed_image
from bridge.engine.stopwatch import Stopwatch

#: A made seed image and mask (regenerate-weights), either may be None.
Inputs = tuple[Image.Image | None, np.ndarray | None]


class DiffusionEngine:
    """An :class:`~bridge.engine.protocol.Engine` running a Riffusion-style model.

    ``model``: a hub id, a diffusers folder, a checkpoint file, ``tiny``, or a
    :class:`ModelSpec`; ``device``, ``dtype`` and ``compile`` as in :class:`ModelSpec`; the
    codec runs on the model's CUDA device (``cuda:N``), else on the CPU; ``progress`` shows
    loading and denoising bars. One worker thread at a time may call :meth:`generate`.
    """

    def __init__(self, model: str | ModelSpec = DEFAULT_MODEL, device: str = "auto",
                 dtype: str | None = None, codec: SpectrogramCodec | None = None,
                 progress: bool = False, compile: bool = False) -> None:
        spec = model if isinstance(model, ModelSpec) else ModelSpec(model, device, dtype, compile)
        self._attach(load_model(spec, progress), codec, progress)

    @classmethod
    def from_components(cls, components: ModelComponents, codec: SpectrogramCodec | None = None,
                        progress: bool = False) -> "DiffusionEngine":
        """An engine over already loaded components (benchmarks, tests)."""
        engine = cls.__new__(cls)
        engine._attach(components, codec, progress)
        return engine

    def _attach(self, components: ModelComponents, codec: SpectrogramCodec | None, progress: bool) -> None:
        self.components = components
        self.pipeline = SpectrogramDiffusion(components)
        self.prompts = PromptEncoder(components.tokenizer, components.text_encoder)
        codec_device = str(components.device) if components.device.type == "cuda" else "cpu"
        self.codec = codec or SpectrogramCodec(device=codec_device)
        self.progress = progress

    def render(self, request: GenerationRequest, sample_rate: int = 44100,
               cancel: CancelCheck | None = None) -> Clip:
        """A clip of the request's own exact length (``request.num_samples(sample_rate)``)."""
        return self.generate(request, request.num_samples(sample_rate), sample_rate, cancel)

    def generate(self, request: GenerationRequest, num_samples: int, sample_rate: int,
                 cancel: CancelCheck | None = None, inputs: Inputs | None = None) -> Clip:
        """A stereo clip of exactly ``num_samples`` frames for ``request`` (module recipe).

        ``inputs``: the seed image and mask already made (a remote worker receives them as
        image bytes and never opens the files a request names); default: :meth:`inputs`.
        """
        watch = Stopwatch(self.components.device)
        image = self.paint(request, cancel, inputs, watch)
        stop = _stopper(cancel, "during phase recovery") if cancel is not None else None
        if stop is not None:
            stop()
        with watch.stage("codec"):
            mel, audio = self.to_audio(image, num_samples, sample_rate, stop)
        return Clip(audio, sample_rate, mel, image, request, dict(watch.seconds))

    def paint(self, request: GenerationRequest, cancel: CancelCheck | None = None,
              inputs: Inputs | None = None, watch: Stopwatch | None = None) -> Image.Image:
        """Steps 1-5 of the recipe: the request's spectrogram image (generation width wide)."""
        watch = watch or Stopwatch(self.components.device)
        with watch.stage("inputs"):
            seed, mask = inputs if inputs is not None else self.inputs(request, cancel)
            canvas = Canvas(request.generation_width())
            seed_canvas, mask_canvas = canvas.pad_image(seed), canvas.pad_mask(mask)
        job = self.job(request, seed_canvas, mask_canvas, watch)
        if seed is not None and job.denoising_steps() == 0:
            return seed.copy()
        pixels = self.pipeline(job, cancel, watch, self.progress)
        return canvas.crop(self.finish_image(pixels, seed_canvas, mask_canvas))

    # 1. inputs
    @staticmethod
    def check_inputs(request: GenerationRequest) -> None:
        """Fail fast (before any model work) on an unknown or missing seed image or mask."""
        if request.seed_image:
            check_seed_source(request.seed_image)
        if request.mask:
            check_mask_source(request.mask)

    def inputs(self, request: GenerationRequest,
               cancel: CancelCheck | None = None) -> tuple[Image.Image | None, np.ndarray | None]:
        """Seed image and mask (regenerate-weights) for ``request``, fitted to its width
        (None for an absent or empty name). The ``accent`` seed is painted by this engine
        (its first pass honours ``cancel``)."""
        if request.seed_audio is not None:
            seed = seed_audio_image(request.seed_audio, request.generation_width(), self.codec)
        elif request.seed_image:
            seed = seed_image(request.seed_image, request, self.codec,
                              paint=lambda first: self.paint(first, cancel))
        else:
            return None, None
        mask = mask_array(request.mask, seed.width, seed.height) if request.mask else None
        return seed, mask

    # 2-3. text and noise
    def job(self, request: GenerationRequest, seed: Image.Image | None, mask: np.ndarray | None,
            watch: Stopwatch) -> DiffusionJob:
        """The denoising job: interpolated text embedding and noise, seed image and mask."""
        prompt_b, seed_b = request.target_b
        with watch.stage("text_encoder"):
            text = lerp(request.alpha, self.prompts.encode(request.prompt_a), self.prompts.encode(prompt_b))
            negative = self.prompts.encode(request.negative)
        shape = self.latent_shape(canvas_width(request.generation_width()))
        noise = slerp(request.alpha, seeded_noise(request.seed_a, shape), seeded_noise(seed_b, shape))
        return DiffusionJob(
            text=text, negative=negative, noise=noise, guidance=request.guidance,
            strength=request.denoising, steps=request.steps, scheduler=request.scheduler,
            image=_image_tensor(seed) if seed is not None else None,
            mask=torch.from_numpy(mask)[None, None] if mask is not None else None)

    def latent_shape(self, width: int) -> tuple[int, int, int, int]:
        """``(1, channels, n_mels / 8, width / 8)`` latent noise shape for an image ``width`` wide."""
        factor = self.components.vae_scale_factor
        channels = self.components.unet.config.in_channels
        return (1, channels, self.codec.params.n_mels // factor, width // factor)

    # 5. image
    def finish_image(self, pixels: torch.Tensor, seed: Image.Image | None, mask: np.ndarray | None) -> Image.Image:
        """The generated RGB image, with the seed's kept region pasted back when masked."""
        generated = (pixels[0].permute(1, 2, 0).float().cpu().numpy() * 255.0).round()
        if mask is not None and seed is not None:
            weights = mask[..., None]
            generated = np.rint(weights * generated + (1.0 - weights) * np.asarray(seed, np.float32))
        image = Image.fromarray(generated.clip(0, 255).astype(np.uint8), mode="RGB")
        image.getexif().update(self.codec.params.to_exif())
        return image

    # 6. audio
    def to_audio(self, image: Image.Image, num_samples: int, sample_rate: int,
                 stop: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The image's ``(1, n_mels, width)`` mel and ``(num_samples, 2)`` float32 audio
        (``stop``: see :func:`image_audio`)."""
        return image_audio(self.codec, image, num_samples, sample_rate, stop)


def _stopper(cancel: CancelCheck, where: str) -> Callable[[], None]:
    """A hook that raises GenerationCancelled (naming ``where``) once ``cancel()`` is true."""
    def stop() -> None:
        if cancel():
            raise GenerationCancelled(f"cancelled {where}")
    return stop


def image_audio(codec: SpectrogramCodec, image: Image.Image, num_samples: int,
                sample_rate: int, stop: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Step 6 with ``codec``: the image's ``(1, n_mels, width)`` mel and ``(num_samples, 2)``
    float32 audio (a remote engine's client decodes the worker's image with this). ``stop`` is
    called between phase-recovery iterations and may raise to abandon the clip."""
    mel, _ = decode_image(image, stereo=False)
    mono = codec.mel_to_audio(mel, num_samples, sample_rate, stop=stop).cpu().numpy()
    return mel, np.repeat(mono.T, 2, axis=1).astype(np.float32)


def _image_tensor(image: Image.Image) -> torch.Tensor:
    """``(1, 3, H, W)`` float32 in [-1, 1] of an RGB image."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()


def describe_timings(timings: dict[str, Any]) -> str:
    """``"text_encoder 0.01 s, unet 0.52 s, ..."`` for logs and the CLI."""
    return ", ".join(f"{name} {seconds:.3f} s" for name, seconds in timings.items())
