"""Single-file checkpoints (original Stable Diffusion layout) to a diffusers folder.

Recipe of :func:`convert_checkpoint`:
  1. read the file's tensors safely (:func:`bridge.engine.weights.read_state_dict`);
  2. recognise its architecture from three weight shapes (:mod:`bridge.engine.architecture`)
     and write that architecture's configs into the target folder (offline: nothing is
     fetched from the hub);
  3. UNet and VAE through diffusers' ``from_single_file`` (given the state dict and the
     config folder), the CLIP text encoder from the ``cond_stage_model.transformer.`` keys;
     each saved with ``save_pretrained`` as safetensors;
  4. the tokenizer: the byte tokenizer for the tiny model; CLIP ViT-L/14's vocabulary for
     SD 1.x, from a ``tokenizer/`` folder beside the file, the Hugging Face cache, or the hub.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bridge.engine.architecture import ARCHITECTURES, Architecture
from bridge.engine.weights import read_state_dict
from bridge.errors import ModelUnavailableError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."
#: Where CLIP ViT-L/14's tokenizer is looked for in the Hugging Face cache: (repo, subfolder).
TOKENIZER_SOURCES = (("openai/clip-vit-large-patch14", ""),
                     ("stable-diffusion-v1-5/stable-diffusion-v1-5", "tokenizer"),
                     ("runwayml/stable-diffusion-v1-5", "tokenizer"),
                     ("riffusion/riffusion-model-v1", "tokenizer"))
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
FIX_TOKENIZER = ("hf download openai/clip-vit-large-patch14 " + " ".join(TOKENIZER_FILES))


def convert_checkpoint(checkpoint: Path, target: Path) -> None:
    """Write ``checkpoint`` as a diffusers folder (safetensors) into ``target`` (module recipe)."""
    state = read_state_dict(checkpoint)
    architecture = identify(state, checkpoint)
    architecture.write_configs(target)
    _convert_diffusers_part("UNet2DConditionModel", "unet", state, target)
    _convert_diffusers_part("AutoencoderKL", "vae", state, target)
    _convert_text_encoder(architecture, state, target)
    del state
    write_tokenizer(architecture, checkpoint, target / "tokenizer")


def identify(state: dict[str, Any], checkpoint: Path) -> Architecture:
    """The known architecture whose shapes the checkpoint's weights have."""
    try:
        shown = (state[UNET_PREFIX + "input_blocks.0.0.weight"].shape[0],
                 state[VAE_PREFIX + "encoder.conv_in.weight"].shape[0],
                 _text_key(state, "embeddings.token_embedding.weight").shape[1])
    except KeyError as err:
        raise ModelUnavailableError(
            f"{checkpoint}: not a Stable Diffusion checkpoint in the original layout (no {err.args[0]}); "
            f"pass --model with a diffusers folder or a hub id instead") from None
    for architecture in ARCHITECTURES:
        if architecture.signature() == tuple(shown):
            return architecture
    raise ModelUnavailableError(
        f"{checkpoint}: unknown architecture (UNet/VAE/text widths {shown}; riff-bridge reads "
        f"Stable Diffusion 1.x single files, widths {ARCHITECTURES[0].signature()}); "
        f"convert it to a diffusers folder and pass --model FOLDER")


def _text_key(state: dict[str, Any], name: str) -> Any:
    for key in (TEXT_PREFIX + "text_model." + name, TEXT_PREFIX + name):
        if key in state:
            return state[key]
    raise KeyError(TEXT_PREFIX + "text_model." + name)


def _convert_diffusers_part(class_name: str, part: str, state: dict[str, Any], target: Path) -> None:
    import diffusers

    model = getattr(diffusers, class_name).from_single_file(
        state, config=str(target), subfolder=part, local_files_only=True)
    model.save_pretrained(str(target / part), safe_serialization=True)


def _convert_text_encoder(architecture: Architecture, state: dict[str, Any], target: Path) -> None:
    """CLIP text model weights from the ``cond_stage_model.transformer.`` keys, with or without
    the ``text_model.`` level (old and new transformers name them differently)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    model = CLIPTextModel(CLIPTextConfig(**architecture.text_encoder))
    wanted = set(model.state_dict())
    weights = {}
    for key, tensor in state.items():
        if key.startswith(TEXT_PREFIX):
            name = key.removeprefix(TEXT_PREFIX)
            for candidate in (name, name.removeprefix("text_model."), "text_model." + name):
                if candidate in wanted:
                    weights[candidate] = tensor
                    break
    missing = [key for key in wanted - set(weights) if not key.endswith("position_ids")]
    if missing:
        raise ModelUnavailableError(f"checkpoint text encoder lacks {len(missing)} weights, e.g. "
                                    f"{TEXT_PREFIX}text_model.{sorted(missing)[0]}")
    model.load_state_dict(weights, strict=False)
    model.save_pretrained(str(target / "text_encoder"), safe_serialization=True)


def write_tokenizer(architecture: Architecture, checkpoint: Path, folder: Path) -> None:
    """The architecture's tokenizer files into ``folder``."""
    if architecture.tokenizer == "bytes":
        from bridge.engine.tiny import build_tokenizer

        build_tokenizer().save_pretrained(str(folder))
        return
    shutil.copytree(clip_tokenizer(checkpoint), folder)


def clip_tokenizer(checkpoint: Path) -> Path:
    """A folder with CLIP ViT-L/14's tokenizer files: beside the checkpoint, cached, or downloaded."""
    beside = checkpoint.parent / "tokenizer"
    if (beside / "vocab.json").is_file():
        return beside
    for repo, subfolder in TOKENIZER_SOURCES:
        found = _cached_tokenizer(repo, subfolder)
        if found is not None:
            return found
    return _download_tokenizer(checkpoint)


def _cached_tokenizer(repo: str, subfolder: str) -> Path | None:
    from huggingface_hub import snapshot_download

    pattern = f"{subfolder}/*" if subfolder else "*.json"
    try:
        root = Path(snapshot_download(repo, allow_patterns=[pattern, "merges.txt"], local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached
        return None
    folder = root / subfolder
    return folder if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file() else None


def _download_tokenizer(checkpoint: Path) -> Path:
    from huggingface_hub import constants, snapshot_download

    why = "HF_HUB_OFFLINE is set"
    if not constants.HF_HUB_OFFLINE:
        try:
            return Path(snapshot_download(TOKENIZER_SOURCES[0][0], allow_patterns=list(TOKENIZER_FILES),
                                          etag_timeout=10.0))
        except Exception as err:  # noqa: BLE001 - network and auth errors alike
            why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    raise ModelUnavailableError(
        f"{checkpoint}: a single-file checkpoint has no tokenizer; looked for CLIP ViT-L/14's "
        f"vocab.json and merges.txt in {checkpoint.parent / 'tokenizer'}, in the Hugging Face cache "
        f"({constants.HF_HUB_CACHE}: {', '.join(r for r, _ in TOKENIZER_SOURCES)}) and on the hub "
        f"({why}). Fix: `{FIX_TOKENIZER}`")
