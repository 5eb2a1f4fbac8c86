"""Speed settings of a loaded model: channels-last weights, TF32 on Ampere or later, and
opt-in ``torch.compile``.

- Channels-last: UNet and VAE weights in the channels-last layout, always (the pipeline's
  inputs already are: cuDNN's and oneDNN's fast convolution layout). Measured on 2 CPU cores
  with riff-bridge-mini (``bench/engine.py --layout``): a UNet step 10-15 % faster, a VAE
  decode about the same (0.91-1.11 of the time).

- TF32: on a CUDA device of compute capability 8.0 or more (Ampere, Ada, Hopper...),
  float32 matrix products and convolutions use TensorFloat-32 (10-bit mantissa inputs,
  float32 accumulation). It changes only what runs in float32 (an fp32 model, or the fp32
  VAE fallback); fp16/bf16 work is unaffected.
- Compile: the UNet wrapped by ``torch.compile`` (inductor).
  Compilation happens on the first step of each new latent shape, so the first clip of a
  canvas width is slow; the live canvas keeps the set of widths small.
"""

from __future__ import annotations

from typing import Any


def enable_tf32(device: str) -> bool:
    """Allow TF32 when ``device`` is a CUDA GPU of compute capability >= 8.0; True if enabled."""
    import torch

    if not device.startswith("cuda") or torch.cuda.get_device_capability(device)[0] < 8:
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


def channels_last(*modules: Any) -> None:
    """Put the weights of ``modules`` (UNet, VAE) in the channels-last layout, in place."""
    import torch

    for module in modules:
        module.to(memory_format=torch.channels_last)


def compile_unet(unet: Any) -> Any:
    """The UNet compiled (``unet.config`` still reads through)."""
    import torch

    return torch.compile(unet, fullgraph=False, dynamic=False)


def is_compiled(module: Any) -> bool:
    """True for a module wrapped by ``torch.compile``."""
    return hasattr(module, "_orig_mod")
