"""Test helpers: a safetensors diffusers folder re-saved in the other layouts users have.

- :func:`write_bin_folder`: the same folder with PyTorch ``.bin`` weights (``torch.save``) and
  the VAE's attention under its pre-0.14 diffusers names (``query``, ``key``, ``value``,
  ``proj_attn``), as in December 2022 repos such as riffusion-model-v1;
- :func:`write_single_file`: one checkpoint in the original Stable Diffusion (LDM) key layout
  (``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``),
  the inverse of diffusers' single-file conversion, for any block count and layers per block.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

NEW_TO_OLD_ATTENTION = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def _weights(folder: Path, part: str) -> dict[str, torch.Tensor]:
    name = "model.safetensors" if part == "text_encoder" else "diffusion_pytorch_model.safetensors"
    return load_file(str(folder / part / name))


def write_bin_folder(source: Path, target: Path) -> Path:
    """``source`` with ``.bin`` weights and old VAE attention key names."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.safetensors"))
    for part in ("unet", "vae", "text_encoder"):
        state = _weights(source, part)
        if part == "vae":
            state = {_old_attention(key): value for key, value in state.items()}
        name = "pytorch_model.bin" if part == "text_encoder" else "diffusion_pytorch_model.bin"
        torch.save(state, target / part / name)
    return target


def _old_attention(key: str) -> str:
    for new, old in NEW_TO_OLD_ATTENTION.items():
        key = key.replace(f".attentions.0.{new}.", f".attentions.0.{old}.")
    return key


def write_single_file(source: Path, path: Path) -> Path:
    """``source`` as one LDM-layout checkpoint: ``.safetensors`` or a ``.ckpt`` pickle
    (``{"state_dict": ...}``), by ``path``'s suffix."""
    state: dict[str, Any] = {}
    unet_config = json.loads((source / "unet" / "config.json").read_text())
    vae_config = json.loads((source / "vae" / "config.json").read_text())
    for key, value in _weights(source, "unet").items():
        state["model.diffusion_model." + unet_key(key, unet_config)] = value
    for key, value in _weights(source, "vae").items():
        if any(f".{n}." in key for n in ("to_q", "to_k", "to_v", "to_out.0")) and value.dim() == 2:
            value = value[:, :, None, None]
        state["first_stage_model." + vae_key(key, len(vae_config["block_out_channels"]))] = value
    for key, value in _weights(source, "text_encoder").items():
        state["cond_stage_model.transformer.text_model." + key.removeprefix("text_model.")] = value
    state = {key: value.contiguous() for key, value in state.items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state, "global_step": 1}, path)
    return path


def unet_key(key: str, config: dict[str, Any]) -> str:
    """A diffusers UNet key in LDM naming."""
    layers = config["layers_per_block"]
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    for new, old in fixed.items():
        if key.startswith(new + "."):
            return old + key[len(new):]
    parts = key.split(".")
    if parts[0] == "down_blocks":
        block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
        if kind == "downsamplers":
            return ".".join([f"input_blocks.{(layers + 1) * (block + 1)}.0.op"] + rest[1:])
        slot = "0" if kind == "resnets" else "1"
        return ".".join([f"input_blocks.{(layers + 1) * block + index + 1}", slot] + _resnet(rest, kind))
    if parts[0] == "up_blocks":
        block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
        if kind == "upsamplers":
            attention = "CrossAttn" in config["up_block_types"][block]
            return ".".join([f"output_blocks.{(layers + 1) * block + layers}", "2" if attention else "1"] + rest)
        slot = "0" if kind == "resnets" else "1"
        return ".".join([f"output_blocks.{(layers + 1) * block + index}", slot] + _resnet(rest, kind))
    if parts[0] == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), parts[3:]
        slot = str(2 * index) if kind == "resnets" else "1"
        return ".".join(["middle_block", slot] + _resnet(rest, kind))
    raise KeyError(key)


def _resnet(rest: list[str], kind: str) -> list[str]:
    if kind != "resnets":
        return rest
    names = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0",
             "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
    return names[rest[0]].split(".") + rest[1:]


def vae_key(key: str, blocks: int) -> str:
    """A diffusers VAE key in LDM naming."""
    parts = key.split(".")
    if parts[0] in ("quant_conv", "post_quant_conv"):
        return key
    coder, rest = parts[0], parts[1:]
    renamed = {"conv_norm_out": "norm_out"}.get(rest[0])
    if renamed or rest[0] in ("conv_in", "conv_out"):
        return ".".join([coder, renamed or rest[0]] + rest[1:])
    if rest[0] == "mid_block":
        if rest[1] == "resnets":
            return ".".join([coder, "mid", f"block_{int(rest[2]) + 1}"] + _vae_resnet(rest[3:]))
        return ".".join([coder, "mid", "attn_1"] + _vae_attention(rest[3:]))
    block = int(rest[1])
    if rest[0] == "down_blocks":
        if rest[2] == "downsamplers":
            return ".".join([coder, "down", str(block), "downsample"] + rest[4:])
        return ".".join([coder, "down", str(block), "block", rest[3]] + _vae_resnet(rest[4:]))
    level = str(blocks - 1 - block)
    if rest[2] == "upsamplers":
        return ".".join([coder, "up", level, "upsample"] + rest[4:])
    return ".".join([coder, "up", level, "block", rest[3]] + _vae_resnet(rest[4:]))


def _vae_resnet(rest: list[str]) -> list[str]:
    return (["nin_shortcut"] if rest[0] == "conv_shortcut" else [rest[0]]) + rest[1:]


def _vae_attention(rest: list[str]) -> list[str]:
    names = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
    if rest[0] == "to_out":
        return ["proj_out"] + rest[2:]
    return [names[rest[0]]] + rest[1:]
