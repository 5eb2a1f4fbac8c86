"""The mini model's diffusers components, built from small configs (weights come from training).

Same layout as Stable Diffusion v1.5 where the rest of riff-bridge depends on it: 4-channel
latents, a 4-block AutoencoderKL (scale factor 8) without mid-block attention (purely
convolutional, so it trains on image crops), a UNet2DConditionModel with attention only at
its lowest resolution (CPU attention is costly above it), a CLIP text encoder over :mod:`bridge.mini.vocabulary`'s tokenizer,
and SD's scheduler config (the training noise schedule is the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.mini.vocabulary import CONTEXT_LENGTH, build_tokenizer

#: Width of text embeddings (CLIP hidden size = UNet cross-attention width).
TEXT_WIDTH = 64
MODEL_NAME = "riff-bridge-mini"


def build_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 16, 32, 32), norm_num_groups=8, sample_size=512,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        mid_block_add_attention=False,
    )


#: Resolutions with text cross-attention, from the lowest up, that :func:`build_unet` allows.
ATTENTION_LEVELS = (1, 2)


def build_unet(attention_levels: int = 1) -> Any:
    """The UNet, with text cross-attention at its ``attention_levels`` lowest resolutions
    (plus the mid block): 1 is the 16 x 8 latent grid of a training crop; 2 adds 32 x 16."""
    from diffusers import UNet2DConditionModel

    plain = 3 - attention_levels
    return UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 128),
        down_block_types=("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",) * attention_levels,
        up_block_types=("CrossAttnUpBlock2D",) * attention_levels + ("UpBlock2D",) * plain,
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=4, norm_num_groups=16,
    )


def build_text_encoder(vocab_size: int) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=CONTEXT_LENGTH,
        projection_dim=TEXT_WIDTH, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    return CLIPTextModel(config)


def build_parts(seed: int, attention_levels: int = 1) -> dict[str, Any]:
    """Freshly initialised components (``torch.manual_seed(seed)`` first: deterministic);
    ``attention_levels``: see :func:`build_unet`."""
    import torch

    tokenizer = build_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return dict(vae=build_vae(), unet=build_unet(attention_levels), text_encoder=build_text_encoder(len(tokenizer)),
                    tokenizer=tokenizer)


def save_model(parts: dict[str, Any], folder: Path, schedule: dict[str, Any] | None = None) -> Path:
    """Write ``parts`` as a diffusers folder (safetensors), staged and renamed into place; the
    notes of a model already there (model card, training figures) are kept. ``schedule``:
    settings over SD's scheduler config (prediction type, spacing...); with any, the scheduler
    is saved as DPM-Solver++ (PNDM has no zero-terminal-SNR rescaling)."""
    from diffusers import StableDiffusionPipeline

    from bridge.engine.tiny import _scheduler, save_pipeline

    pipe = StableDiffusionPipeline(
        vae=parts["vae"], unet=parts["unet"], text_encoder=parts["text_encoder"],
        tokenizer=parts["tokenizer"], scheduler=_scheduler(schedule), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    return save_pipeline(pipe, folder, keep_notes=True)


def shipped_model_dir() -> Path:
    """The trained mini model that ships inside the package."""
    return Path(__file__).resolve().parent.parent / "models" / "mini"


def shipped_model() -> Path:
    """:func:`shipped_model_dir`, checked complete; ModelUnavailableError says how to make it."""
    from bridge.errors import ModelUnavailableError

    folder = shipped_model_dir()
    if not (folder / "model_index.json").is_file():
        raise ModelUnavailableError(
            f"model 'mini': the shipped riff-bridge-mini weights are missing from {folder}; "
            f"train them with `riff-bridge train-mini --out {folder}` (about an hour on 2 cores)")
    return folder
