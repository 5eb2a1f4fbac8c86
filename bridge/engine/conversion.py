"""Turning any supported model layout into a safetensors diffusers folder, once, in the cache.

:func:`prepare_model` takes a local path: a diffusers folder whose parts are already
standard safetensors is used as it is; anything else (``.bin`` or variant or sharded
weights, old VAE attention key names, a single-file ``.ckpt``/``.safetensors``) is
converted on first use into ``<cache>/converted/<name>-<fingerprint>/`` and loaded from
there afterwards (fast, and no pickle is read again). The fingerprint covers the source's
path and its weight files' sizes and modification times, so a changed source converts
again. A conversion is written under a temporary name and renamed into place, so an
interrupted one is never used.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from bridge.engine.layout import PARTS, PLAIN, FolderPlan, is_diffusers_folder, plan_folder, single_files
from bridge.engine.tiny import cache_root
from bridge.engine.weights import WEIGHT_SUFFIXES, read_state_dict, write_safetensors
from bridge.errors import ModelUnavailableError

#: Bump when conversions change (names the cache folders).
CONVERSION_VERSION = "convert-v1"
#: Old diffusers VAE attention names -> current ones.
OLD_ATTENTION_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
_OLD_ATTENTION = re.compile(r"(attentions\.\d+\.)(query|key|value|proj_attn)\.")


def prepare_model(path: Path, fix: str) -> Path:
    """A folder ``from_pretrained(use_safetensors=True)`` loads for local ``path`` (see module).

    ``fix`` is the command named in errors about missing files.
    """
    if path.is_file():
        return _cached(path, _convert_single_file)
    if not is_diffusers_folder(path):
        checkpoints = single_files(path)
        if checkpoints:
            return _cached(checkpoints[0], _convert_single_file)
        raise ModelUnavailableError(
            f"{path}: neither a diffusers folder (model_index.json, unet/, vae/, text_encoder/, "
            f"tokenizer/, scheduler/) nor a folder with a .safetensors/.ckpt checkpoint. Fix: {fix}")
    plan, missing = plan_folder(path)
    if missing:
        raise ModelUnavailableError(
            f"model folder {path} is incomplete: missing {', '.join(missing)}. Fix: {fix}")
    return path if plan.ready() else _cached(path, lambda _, target: convert_folder(plan, target))


def converted_dir(source: Path) -> Path:
    """The cache folder of ``source``'s conversion (may not exist yet)."""
    name = re.sub(r"[^\w.-]", "_", source.stem if source.is_file() else source.name)[:48] or "model"
    return cache_root() / "converted" / f"{name}-{fingerprint(source)}"


def fingerprint(source: Path) -> str:
    """16 hex digits over the conversion version, the resolved path and the weights' stats."""
    digest = hashlib.sha256(f"{CONVERSION_VERSION}\0{source.resolve()}".encode())
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for file in files:
        stat = file.stat()
        digest.update(f"\0{file.relative_to(source.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _cached(source: Path, build: Callable[[Path, Path], Any]) -> Path:
    target = converted_dir(source)
    if (target / "model_index.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(source, staging)
        if target.exists() and not (target / "model_index.json").is_file():
            shutil.rmtree(target)  # a leftover without its last file
        try:
            staging.rename(target)
        except OSError:  # another process finished the same conversion first
            if not (target / "model_index.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert_single_file(checkpoint: Path, target: Path) -> None:
    from bridge.engine.checkpoint import convert_checkpoint

    convert_checkpoint(checkpoint, target)


def convert_folder(plan: FolderPlan, target: Path) -> None:
    """Copy configs and vocabularies; write each part's weights as standard safetensors,
    old VAE attention key names renamed."""
    for name in PLAIN[1:]:
        shutil.copytree(plan.folder / name, target / name)
    for part, weights in plan.weights.items():
        (target / part).mkdir(parents=True)
        shutil.copy2(plan.folder / part / "config.json", target / part / "config.json")
        state = read_state_dict(weights)
        if part == "vae":
            state = modern_attention_keys(state)
        write_safetensors(state, target / part / PARTS[part])
        del state
    _write_index(plan.folder, target)


def _write_index(source: Path, target: Path) -> None:
    """The source's ``model_index.json``, or the standard one when it has none."""
    import json

    from bridge.engine.architecture import MODEL_INDEX

    if (source / "model_index.json").is_file():
        shutil.copy2(source / "model_index.json", target / "model_index.json")
    else:
        (target / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2) + "\n")


def modern_attention_keys(state: dict[str, Any]) -> dict[str, Any]:
    """``...attentions.0.query.weight`` -> ``...attentions.0.to_q.weight`` (and key, value,
    proj_attn), the names diffusers uses since 0.14; other keys unchanged."""
    return {_OLD_ATTENTION.sub(lambda m: m.group(1) + OLD_ATTENTION_NAMES[m.group(2)] + ".", key): value
            for key, value in state.items()}


def is_weight_file(path: Path) -> bool:
    """True for a path that names a weight file riff-bridge can read."""
    return path.suffix in WEIGHT_SUFFIXES
