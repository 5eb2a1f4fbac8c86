"""Speed settings of a loaded model: TF32 on Ampere or later, and opt-in ``torch.compile``.

- TF32: on a CUDA device of compute capability 8.0 or more (Ampere, Ada, Hopper...),
  float32 matrix products and convolutions use TensorFloat-32 (10-bit mantissa inputs,
  float32 accumulation). It changes only what runs in float32 (an fp32 model, or the fp32
  VAE fallback); fp16/bf16 work is unaffected.
- Compile: UNet and VAE weights in channels-last layout (the inputs already are: cuDNN's and
  oneDNN's fast convolution layout) and the UNet wrapped by ``torch.compile`` (inductor).
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


def compile_unet(unet: Any, vae: Any) -> Any:
    """Channels-last UNet and VAE weights; the UNet compiled (``unet.config`` still reads through)."""
    import torch

    unet.to(memory_format=torch.channels_last)
    vae.to(memory_format=torch.channels_last)
    return torch.compile(unet, fullgraph=False, dynamic=False)


def is_compiled(module: Any) -> bool:
    """True for a module wrapped by ``torch.compile``."""
    return hasattr(module, "_orig_mod")
