"""Loading a Stable Diffusion model's components: where from, on which device, in which dtype.

``--model`` names a Hugging Face id (default ``riffusion/riffusion-model-v1``), a local
diffusers folder, a single-file checkpoint (``.ckpt``/``.safetensors``), or ``tiny``. Recipe:
  1. resolve the name to a local path: ``tiny`` is built into the cache when missing; a
     hub id is the complete cached snapshot, else downloaded (:mod:`bridge.engine.hub`);
  2. make it a safetensors diffusers folder: used as is when it is one, else converted once
     into riff-bridge's cache (:mod:`bridge.engine.conversion`: ``.bin`` weights, old key
     names, single files; pickles are read only with torch's weights-only loader);
  3. load UNet, VAE, text encoder, tokenizer and scheduler config from that folder with
     ``from_pretrained(use_safetensors=True)``; the safety checker is never loaded;
  4. move to the device in the dtype (fp16 on CUDA and MPS, fp32 on CPU unless asked for
     bf16), eval mode, no gradients, SDPA attention; TF32 on Ampere or later GPUs; with
     ``compile``, channels-last weights and ``torch.compile`` of the UNet
     (:mod:`bridge.engine.speed`).
Any failure becomes one :class:`ModelUnavailableError` saying what was looked for, where,
and the command that fixes it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.errors import ModelUnavailableError, ParameterError, check_choice

DEFAULT_MODEL = "riffusion/riffusion-model-v1"
DTYPES = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load and where to run it.

    ``name``: hub id, folder, checkpoint file or ``tiny``; ``device``: auto, cpu, cuda,
    cuda:N or mps; ``dtype``: fp32, bf16 or fp16 (None: fp16 on CUDA/MPS, fp32 on CPU);
    ``compile``: channels-last weights and ``torch.compile`` of the UNet (opt-in: the first
    clip of each canvas width compiles).
    """

    name: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError("model", "a Hugging Face id, a folder, a checkpoint file or 'tiny'", self.name)
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise ParameterError("device", "one of " + ", ".join(DEVICES) + " or cuda:N", self.device)
        if self.dtype is not None:
            check_choice("dtype", self.dtype, DTYPES)

    def resolved_device(self) -> str:
        """The concrete device: ``auto`` picks cuda, then mps, then cpu; ``cuda`` becomes
        ``cuda:N`` of the current CUDA device; a ``cuda:N`` that does not exist is refused."""
        import torch

        if self.device.startswith("cuda"):
            return _cuda_device(self.device)
        if self.device != "auto":
            return self.device
        if torch.cuda.is_available():
            return _cuda_device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"

    def resolved_dtype(self, device: str) -> Any:
        """The torch dtype for ``device`` (fp16 is refused on CPU, where it is slow or missing)."""
        import torch

        name = self.dtype or ("fp32" if device == "cpu" else "fp16")
        if name == "fp16" and device == "cpu":
            raise ParameterError("dtype", "fp32 or bf16 on cpu", name)
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def _cuda_device(name: str) -> str:
    """``cuda:N`` for ``name`` (``cuda`` or ``cuda:N``), checked against the devices present."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(name.partition(":")[2] or (torch.cuda.current_device() if count else 0))
    if index >= count:
        allowed = f"cuda:0 to cuda:{count - 1}" if count else "cpu (no CUDA device is present)"
        raise ParameterError("device", allowed, name)
    return f"cuda:{index}"


@dataclass(frozen=True)
class ModelComponents:
    """The loaded parts of a Stable Diffusion model, ready on ``device`` in ``dtype``."""

    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler_config: dict[str, Any]
    device: Any
    dtype: Any
    folder: Path

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell (8 for a 4-block VAE)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


def load_model(spec: ModelSpec, progress: bool = False) -> ModelComponents:
    """Resolve ``spec.name`` to a folder and load its components (see the module recipe)."""
    import torch

    from bridge.engine.speed import channels_last, compile_unet, enable_tf32

    quiet_libraries(progress)
    device = spec.resolved_device()
    dtype = spec.resolved_dtype(device)
    folder = prepare_model_folder(spec.name, progress)
    parts = _load_parts(folder, dtype, progress)
    for module in (parts["unet"], parts["vae"], parts["text_encoder"]):
        _prepare_module(module, device, dtype)
    channels_last(parts["unet"], parts["vae"])
    enable_tf32(device)
    if spec.compile:
        parts["unet"] = compile_unet(parts["unet"])
    return ModelComponents(device=torch.device(device), dtype=dtype, folder=folder, **parts)


def prepare_model_folder(name: str, progress: bool = False) -> Path:
    """The safetensors diffusers folder for ``name``, downloading or converting it when needed."""
    from bridge.engine.conversion import prepare_model
    from bridge.engine.hub import fix_command

    path = locate_model(name, progress)
    fix = fix_command(name) if _is_hub_id(name) else "pass --model with a complete diffusers folder"
    return prepare_model(path, fix)


def locate_model(name: str, progress: bool = False) -> Path:
    """A local path for ``name`` (``tiny``, a folder or file path, or a hub id)."""
    if name == "tiny":
        from bridge.engine.tiny import ensure_tiny_model

        return ensure_tiny_model()
    if name == "mini":  # issue 17: the trained riff-bridge-mini model shipped in the package
        from bridge.mini.architecture import shipped_model

        return shipped_model()
    path = Path(name).expanduser()
    if path.exists():
        return path
    if _is_hub_id(name):
        from bridge.engine.hub import hub_snapshot

        return hub_snapshot(name, progress)
    raise ModelUnavailableError(
        f"model {name!r}: no such folder or file; pass --model with a diffusers folder (unet/, vae/, "
        f"text_encoder/, tokenizer/, scheduler/; safetensors or .bin weights), a .safetensors/.ckpt "
        f"checkpoint, a Hugging Face id, 'mini' (the small model shipped with riff-bridge) or 'tiny'")


def _is_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and not name.startswith((".", "~"))


def _load_parts(folder: Path, dtype: Any, progress: bool) -> dict[str, Any]:
    """UNet, VAE, text encoder, tokenizer and scheduler config from ``folder``."""
    from tqdm.auto import tqdm

    from bridge.engine.hub import first_line

    loaders = {"unet": _load_unet, "vae": _load_vae, "text_encoder": _load_text_encoder,
               "tokenizer": _load_tokenizer, "scheduler_config": _load_scheduler_config}
    parts: dict[str, Any] = {}
    for name in tqdm(loaders, desc="loading model", disable=not progress, leave=False):
        try:
            parts[name] = loaders[name](folder, dtype)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise ModelUnavailableError(
                f"model folder {folder}: could not load {name} ({first_line(err)}); pass --model "
                f"with a complete diffusers folder, or 'tiny'") from None
    return parts


def _load_unet(folder: Path, dtype: Any) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(
        folder, subfolder="unet", use_safetensors=True, local_files_only=True, torch_dtype=dtype)


def _load_vae(folder: Path, dtype: Any) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(
        folder, subfolder="vae", use_safetensors=True, local_files_only=True, torch_dtype=dtype)


def _load_text_encoder(folder: Path, dtype: Any) -> Any:
    from transformers import CLIPTextModel

    model = CLIPTextModel.from_pretrained(
        folder, subfolder="text_encoder", use_safetensors=True, local_files_only=True)
    return model.to(dtype=dtype)


def _load_tokenizer(folder: Path, dtype: Any) -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", local_files_only=True)


def _load_scheduler_config(folder: Path, dtype: Any) -> dict[str, Any]:
    from diffusers import PNDMScheduler

    return dict(PNDMScheduler.load_config(folder, subfolder="scheduler", local_files_only=True))


def _prepare_module(module: Any, device: str, dtype: Any) -> None:
    """Move to ``device``/``dtype``, inference mode, SDPA attention where diffusers has processors."""
    module.to(device=device, dtype=dtype)
    module.eval()
    module.requires_grad_(False)
    if hasattr(module, "set_attn_processor"):
        from diffusers.models.attention_processor import AttnProcessor2_0

        module.set_attn_processor(AttnProcessor2_0())


def quiet_libraries(progress: bool) -> None:
    """Silence diffusers/transformers warnings; their own progress bars only when ``progress``."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.set_verbosity_error()
        (library.enable_progress_bar if progress else library.disable_progress_bar)()
