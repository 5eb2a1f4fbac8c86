"""What a model folder holds: the diffusers layout, and which weight file each part uses.

A diffusers folder has ``unet/``, ``vae/`` and ``text_encoder/`` (each a ``config.json`` and
weights), ``tokenizer/`` and ``scheduler/``. Each part's weights may be safetensors or a
PyTorch pickle (``.bin``), whole or sharded (an ``*.index.json``), full precision or a
variant (``*.fp16.*``). The preferred file is, in order: safetensors before pickles, whole
or index before shards, no variant before a variant. Nothing here reads weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bridge.engine.weights import WEIGHT_SUFFIXES

#: The weighted parts riff-bridge loads, and the file name from_pretrained reads as safetensors.
PARTS = {"unet": "diffusion_pytorch_model.safetensors", "vae": "diffusion_pytorch_model.safetensors",
         "text_encoder": "model.safetensors"}
#: Folders (or files) copied as they are: configs and vocabularies.
PLAIN = ("model_index.json", "tokenizer", "scheduler")
_SHARD = re.compile(r"-\d{5}-of-\d{5}\.")


def is_weight_name(name: str) -> bool:
    """True for a loadable weight file name (a shard index counts; the shards do not)."""
    if name.endswith((".safetensors.index.json", ".bin.index.json")):
        return True
    return name.endswith(WEIGHT_SUFFIXES) and not _SHARD.search(name)


def best_weight(names: list[str]) -> str | None:
    """The preferred name among ``names`` (module order), or None without a weight file."""
    usable = [name for name in names if is_weight_name(name)]
    return min(usable, key=_rank, default=None)


def _rank(name: str) -> tuple[bool, bool, str]:
    base = name.rsplit("/", 1)[-1].removesuffix(".index.json")
    variant = base.count(".") > 1
    return (".safetensors" not in base, variant, name)


@dataclass(frozen=True)
class FolderPlan:
    """The weight file of each part of a diffusers folder (``weights[part]``)."""

    folder: Path
    weights: dict[str, Path]

    def ready(self) -> bool:
        """True when from_pretrained(use_safetensors=True) reads it as is (no conversion)."""
        return all(path.name in (PARTS[part], PARTS[part] + ".index.json")
                   for part, path in self.weights.items())


def is_diffusers_folder(folder: Path) -> bool:
    """True when ``folder`` looks like a diffusers layout (model_index.json or a unet/ part)."""
    return (folder / "model_index.json").is_file() or (folder / "unet" / "config.json").is_file()


def plan_folder(folder: Path) -> tuple[FolderPlan, list[str]]:
    """The plan for ``folder`` and what is missing from it (relative paths, empty when complete)."""
    weights: dict[str, Path] = {}
    missing: list[str] = []
    for part in PARTS:
        directory = folder / part
        names = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
        chosen = best_weight(names)
        if "config.json" not in names:
            missing.append(f"{part}/config.json")
        if chosen is None:
            missing.append(f"{part}/{PARTS[part]} (or .bin)")
        else:
            weights[part] = directory / chosen
    missing += [f"{name}/" for name in ("tokenizer", "scheduler") if not (folder / name).is_dir()]
    return FolderPlan(folder, weights), missing


def single_files(folder: Path) -> list[Path]:
    """Single-file checkpoints at the top of ``folder``, preferred first (safetensors, smaller)."""
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix in (".safetensors", ".ckpt")]
    return sorted(found, key=lambda p: (p.suffix != ".safetensors", p.stat().st_size, p.name))
