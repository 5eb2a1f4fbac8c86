"""Known model architectures and their diffusers configs, available offline.

A single-file checkpoint (``.ckpt``/``.safetensors`` in the original Stable Diffusion key
layout) carries weights but no configs; riff-bridge recognises which known architecture it
holds from a few weight shapes and writes that architecture's diffusers configs into a
folder for ``from_single_file``. Known: ``sd15`` (Stable Diffusion v1.x, which
riffusion-model-v1 is: UNet 860M, VAE 84M, CLIP ViT-L/14 text encoder 123M parameters;
the configs below are those of the v1.5 diffusers release) and ``tiny`` (the test model of
:mod:`bridge.engine.tiny`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.engine.tiny import SD_SCHEDULER_CONFIG, TINY_TEXT_ENCODER, TINY_UNET, TINY_VAE

SD15_UNET: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
    "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
}
SD15_VAE: dict[str, Any] = {
    "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4,
    "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
#: CLIP ViT-L/14's text tower, as in SD1.5's ``text_encoder/config.json``.
CLIP_L: dict[str, Any] = {
    "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
    "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768, "initializer_factor": 1.0,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 12,
    "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 768, "vocab_size": 49408,
}
MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
    "safety_checker": [None, None], "feature_extractor": [None, None], "requires_safety_checker": False,
}


@dataclass(frozen=True)
class Architecture:
    """One known architecture: its component configs and tokenizer kind (``clip`` or ``bytes``)."""

    name: str
    unet: dict[str, Any]
    vae: dict[str, Any]
    text_encoder: dict[str, Any]
    tokenizer: str
    scheduler: dict[str, Any] = field(default_factory=lambda: dict(SD_SCHEDULER_CONFIG))

    def signature(self) -> tuple[int, int, int]:
        """(UNet conv_in channels, VAE conv_in channels, text width): what a checkpoint shows."""
        return (self.unet["block_out_channels"][0], self.vae["block_out_channels"][0],
                self.text_encoder["hidden_size"])

    def write_configs(self, folder: Path) -> Path:
        """A diffusers folder of this architecture's configs (no weights, no tokenizer); the
        scheduler's with every default written out, as ``save_pretrained`` does."""
        from diffusers import PNDMScheduler

        PNDMScheduler.from_config(self.scheduler).save_config(str(folder / "scheduler"))
        files = {"unet/config.json": self.unet, "vae/config.json": self.vae,
                 "text_encoder/config.json": {"model_type": "clip_text_model", **self.text_encoder},
                 "model_index.json": MODEL_INDEX}
        for name, content in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content, indent=2) + "\n")
        return folder


SD15 = Architecture("sd15", SD15_UNET, SD15_VAE, CLIP_L, tokenizer="clip")
TINY = Architecture("tiny", TINY_UNET, TINY_VAE, TINY_TEXT_ENCODER, tokenizer="bytes")
ARCHITECTURES = (SD15, TINY)
