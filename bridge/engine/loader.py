"""Loading a Stable Diffusion model's components: where from, on which device, in which dtype.

``--model`` names a Hugging Face id (default ``riffusion/riffusion-model-v1``), a local
diffusers folder, or ``tiny``. Recipe:
  1. resolve the name to a local folder: ``tiny`` is built into the cache when missing; a
     hub id is looked up in the local Hugging Face cache first and only then downloaded
     (safetensors and configs only; skipped when ``HF_HUB_OFFLINE`` is set; short timeouts);
  2. load UNet, VAE, text encoder, tokenizer and scheduler config from that folder with
     ``from_pretrained(use_safetensors=True)``; the safety checker is never loaded;
  3. move to the device in the dtype (fp16 on CUDA and MPS, fp32 on CPU unless asked for
     bf16), eval mode, no gradients, SDPA attention.
Any failure becomes one :class:`ModelUnavailableError` saying what was looked for, where,
and how to get it.
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
#: Files fetched from the hub: configs, tokenizer, safetensors weights of the parts we use.
HUB_PATTERNS = ["model_index.json", "scheduler/*.json", "tokenizer/*", "unet/config.json",
                "vae/config.json", "text_encoder/config.json", "unet/*.safetensors",
                "vae/*.safetensors", "text_encoder/*.safetensors"]
#: Seconds to wait for the hub before giving up (the failure must be fast and clear).
HUB_TIMEOUT = 10.0
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load and where to run it.

    ``name``: hub id, folder or ``tiny``; ``device``: auto, cpu, cuda, cuda:N or mps;
    ``dtype``: fp32, bf16 or fp16 (None: fp16 on CUDA/MPS, fp32 on CPU).
    """

    name: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError("model", "a Hugging Face id, a folder or 'tiny'", self.name)
        if self.device.split(":")[0] not in DEVICES:
            raise ParameterError("device", "one of " + ", ".join(DEVICES) + " (or cuda:N)", self.device)
        if self.dtype is not None:
            check_choice("dtype", self.dtype, DTYPES)

    def resolved_device(self) -> str:
        """The concrete device: ``auto`` picks cuda, then mps, then cpu."""
        if self.device != "auto":
            return self.device
        import torch

        if torch.cuda.is_available():
            return "cuda"
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
    quiet_libraries(progress)
    folder = locate_model(spec.name)
    device = spec.resolved_device()
    dtype = spec.resolved_dtype(device)
    parts = _load_parts(folder, dtype, progress)
    for module in (parts["unet"], parts["vae"], parts["text_encoder"]):
        _prepare_module(module, device, dtype)
    import torch

    return ModelComponents(device=torch.device(device), dtype=dtype, folder=folder, **parts)


def locate_model(name: str) -> Path:
    """A local diffusers folder for ``name`` (``tiny``, a folder path, or a hub id)."""
    if name == "tiny":
        from bridge.engine.tiny import ensure_tiny_model

        return ensure_tiny_model()
    if name == "mini":  # issue 17: the trained riff-bridge-mini model shipped in the package
        from bridge.mini.architecture import shipped_model

        return shipped_model()
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if _HUB_ID.match(name) and not name.startswith((".", "~")):
        return _hub_snapshot(name)
    raise ModelUnavailableError(
        f"model {name!r}: no such folder; pass --model with a diffusers folder (unet/, vae/, "
        f"text_encoder/, tokenizer/, scheduler/ with safetensors weights), a Hugging Face id, 'mini' "
        f"or 'tiny'")


def _hub_snapshot(repo_id: str) -> Path:
    """The cached snapshot of ``repo_id``, downloading it when the hub can be reached."""
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, local_files_only=True))
    except Exception:  # noqa: BLE001 - any cache miss falls through to the hub
        pass
    if constants.HF_HUB_OFFLINE:
        raise ModelUnavailableError(_missing_message(repo_id, "HF_HUB_OFFLINE is set"))
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, etag_timeout=HUB_TIMEOUT))
    except Exception as err:  # noqa: BLE001 - network, auth and missing-repo errors alike
        raise ModelUnavailableError(_missing_message(repo_id, "unreachable or no such model: "
                                                     + _first_line(err))) from None


def _missing_message(repo_id: str, why: str) -> str:
    from huggingface_hub import constants

    return (f"model {repo_id!r} is not available: looked for its safetensors weights in the "
            f"Hugging Face cache ({constants.HF_HUB_CACHE}) and on the hub ({why}). Get it with "
            f"--model PATH (a local diffusers folder), or run once on a machine with access to the "
            f"hub (it is cached there; or `hf download {repo_id}` and copy the folder); "
            f"--model mini runs the small riff-bridge-mini model shipped with riff-bridge (trained on "
            f"synthesized loops), --model tiny a small random one")


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message (huggingface_hub's "Got: " prefix dropped)."""
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__).removeprefix("Got: ")


def _load_parts(folder: Path, dtype: Any, progress: bool) -> dict[str, Any]:
    """UNet, VAE, text encoder, tokenizer and scheduler config from ``folder``."""
    from tqdm.auto import tqdm

    loaders = {"unet": _load_unet, "vae": _load_vae, "text_encoder": _load_text_encoder,
               "tokenizer": _load_tokenizer, "scheduler_config": _load_scheduler_config}
    parts: dict[str, Any] = {}
    for name in tqdm(loaders, desc="loading model", disable=not progress, leave=False):
        try:
            parts[name] = loaders[name](folder, dtype)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise ModelUnavailableError(
                f"model folder {folder}: could not load {name} with safetensors weights "
                f"({_first_line(err)}); pass --model with a complete diffusers folder, or 'tiny'") from None
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
