"""The tiny model: a small random-weight Stable Diffusion in diffusers layout, for tests and demos.

It has the real architecture's shape where it matters to the rest of the system (4-channel
latents, a 4-block VAE so the scale factor stays 8, a CLIP text encoder and tokenizer) and is
built deterministically from a fixed seed, so every machine builds the same weights. It is
written with ``save_pretrained`` (safetensors) and loaded back through the same
``from_pretrained`` path as the real model. The tokenizer uses a self-made byte-level BPE
vocabulary (every byte, with and without the end-of-word mark; no merges), so nothing is
downloaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: Bump when the tiny model's architecture or weights change (names the cache folder).
TINY_VERSION = "tiny-v1"
#: Seed of the random weights.
TINY_SEED = 0
#: CLIP's context length (the real tokenizer's model_max_length).
CONTEXT_LENGTH = 77
#: Scheduler configuration of Stable Diffusion v1.5 (and riffusion-model-v1).
SD_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "steps_offset": 1, "clip_sample": False,
    "set_alpha_to_one": False, "skip_prk_steps": True,
}
#: Byte-level vocabulary size of the tiny tokenizer (256 bytes, 256 with ``</w>``, start, end).
TINY_VOCAB = 514
#: The tiny UNet: attention only at the lowest resolution (CPU attention dominates at higher ones).
TINY_UNET: dict[str, Any] = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
    "block_out_channels": [16, 32, 32],
    "down_block_types": ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"], "cross_attention_dim": 32,
    "attention_head_dim": 8, "norm_num_groups": 8,
}
#: The tiny VAE: 4 blocks, so the scale factor stays 8.
TINY_VAE: dict[str, Any] = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
    "block_out_channels": [8, 16, 16, 16], "norm_num_groups": 8, "sample_size": 512,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
}
#: The tiny CLIP text encoder over the byte vocabulary.
TINY_TEXT_ENCODER: dict[str, Any] = {
    "vocab_size": TINY_VOCAB, "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": CONTEXT_LENGTH, "projection_dim": 32,
    "bos_token_id": TINY_VOCAB - 2, "eos_token_id": TINY_VOCAB - 1, "pad_token_id": TINY_VOCAB - 1,
}


def cache_root() -> Path:
    """Where riff-bridge caches built models: ``$RIFF_BRIDGE_CACHE``, else
    ``$XDG_CACHE_HOME/riff-bridge``, else ``~/.cache/riff-bridge``."""
    if os.environ.get("RIFF_BRIDGE_CACHE"):
        return Path(os.environ["RIFF_BRIDGE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "riff-bridge"


def tiny_model_dir() -> Path:
    """The cache folder of the tiny model (may not exist yet; see :func:`ensure_tiny_model`)."""
    return cache_root() / TINY_VERSION


def ensure_tiny_model(folder: Path | None = None) -> Path:
    """The tiny model's folder, building it there first when it is not complete."""
    folder = Path(folder) if folder is not None else tiny_model_dir()
    if not (folder / "model_index.json").is_file():
        write_tiny_model(folder)
    return folder


def write_tiny_model(folder: Path | str) -> Path:
    """Build the tiny model and save it to ``folder`` (diffusers layout, safetensors).

    The folder is written under a temporary name and renamed into place, so a reader never
    sees half a model; an existing complete model at ``folder`` is replaced.
    """
    return save_pipeline(build_tiny_pipeline(), Path(folder))


def save_pipeline(pipe: Any, folder: Path, keep_notes: bool = False) -> Path:
    """Save ``pipe`` to ``folder`` (diffusers layout, safetensors) under a temporary name, then
    rename it into place: a reader never sees half a model; a model already there is replaced.
    ``keep_notes``: carry over the old folder's notes (its ``*.md`` and ``*.json`` files other
    than ``model_index.json``, e.g. a model card and training figures)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        pipe.save_pretrained(str(staging), safe_serialization=True)
        notes = [p for p in folder.iterdir() if p.suffix in (".md", ".json") and p.name != "model_index.json"] \
            if keep_notes and folder.is_dir() else []
        for note in notes:
            shutil.copy2(note, staging / note.name)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def build_tiny_pipeline() -> Any:
    """A ``StableDiffusionPipeline`` of tiny random components (no safety checker)."""
    import torch
    from diffusers import StableDiffusionPipeline

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        parts = dict(unet=_unet(), vae=_vae(), text_encoder=_text_encoder())
    return StableDiffusionPipeline(
        **parts, tokenizer=build_tokenizer(), scheduler=_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def _unet() -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**TINY_UNET)


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(**TINY_VAE)


def _text_encoder() -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**TINY_TEXT_ENCODER))


def _scheduler(schedule: dict[str, Any] | None = None) -> Any:
    """SD's PNDM scheduler; with ``schedule`` settings, DPM-Solver++ configured with them."""
    from diffusers import DPMSolverMultistepScheduler, PNDMScheduler

    if schedule:
        return DPMSolverMultistepScheduler.from_config(SD_SCHEDULER_CONFIG, **schedule)
    return PNDMScheduler.from_config(SD_SCHEDULER_CONFIG)


def build_tokenizer() -> Any:
    """A ``CLIPTokenizer`` over the self-made byte vocabulary (context length 77)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=tokenizer_vocabulary(), merges=[],
                         model_max_length=CONTEXT_LENGTH)


def tokenizer_vocabulary() -> dict[str, int]:
    """Byte-level symbols, the same with CLIP's ``</w>`` mark, then start and end tokens."""
    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's reversible byte -> printable character table, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]

