"""Reading and writing weight files without ever running code from them.

Contract: a ``.safetensors`` file is read with safetensors; any other weight file (``.bin``,
``.ckpt``, ``.pt``, ``.pth``: pickles) only with ``torch.load(weights_only=True)``, torch's
restricted unpickler that builds tensors, numbers, strings and containers and refuses every
other global, so a pickle whose ``__reduce__`` names ``os.system`` (or any callable) is
refused before anything runs: :class:`UnsafeWeightsError`. Sharded weights (an
``*.index.json`` naming several files) are read file by file and merged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bridge.errors import ModelUnavailableError

#: Suffixes of pickled weight files (read only with torch's weights-only unpickler).
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth")
WEIGHT_SUFFIXES = (".safetensors",) + PICKLE_SUFFIXES


class UnsafeWeightsError(ModelUnavailableError):
    """A pickled weight file that holds more than tensors (it could run code): refused."""


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors in ``path`` (safetensors, a weights-only pickle, or a shard index), on CPU.

    A checkpoint that wraps its weights (``{"state_dict": {...}}``, as Lightning saves) is
    unwrapped; non-tensor entries are dropped.
    """
    path = Path(path)
    if path.name.endswith(".index.json"):
        return _read_shards(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix not in PICKLE_SUFFIXES:
        raise ModelUnavailableError(f"{path}: not a weight file (expected one of {', '.join(WEIGHT_SUFFIXES)})")
    return _tensors(_read_pickle(path))


def _read_pickle(path: Path) -> Any:
    """``torch.load(weights_only=True)``; a refused global becomes UnsafeWeightsError."""
    import pickle

    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=_zip_file(path))
    except pickle.UnpicklingError as err:
        raise UnsafeWeightsError(
            f"{path}: refused: this pickle holds objects other than tensors and could run code "
            f"when read ({_reason(err)}). riff-bridge reads pickles only with torch's weights-only "
            f"loader. Use the model's .safetensors weights instead (e.g. "
            f"`riff-bridge fetch-model REPO_ID` downloads them where the hub has them)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ModelUnavailableError(f"{path}: unreadable weight file ({_reason(err)}); it may be "
                                    f"truncated: download it again") from None


def _zip_file(path: Path) -> bool:
    """True for torch's zip format (memory-mappable); legacy pickles are read whole."""
    import zipfile

    return zipfile.is_zipfile(path)


def _reason(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    text = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), lines[0] if lines else "")
    return text.strip()[:200] or type(err).__name__


def _tensors(loaded: Any) -> dict[str, Any]:
    import torch

    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ModelUnavailableError(f"weight file holds a {type(loaded).__name__}, not a dict of tensors")
    return {key: value for key, value in loaded.items() if isinstance(value, torch.Tensor)}


def _read_shards(index: Path) -> dict[str, Any]:
    """Every shard an ``*.index.json`` names, merged."""
    names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    state: dict[str, Any] = {}
    for name in names:
        state.update(read_state_dict(index.parent / name))
    return state


def write_safetensors(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` as safetensors (tensors sharing memory are copied apart first)."""
    from safetensors.torch import save_file

    seen: set[tuple[int, int]] = set()
    clean = {}
    for key, tensor in state.items():
        tensor = tensor.contiguous()
        span = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        clean[key] = tensor.clone() if span in seen and tensor.numel() else tensor
        seen.add(span)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(clean, str(path), metadata={"format": "pt"})
