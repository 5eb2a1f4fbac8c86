"""Hugging Face hub models: the cached snapshot when it is complete, else a download of what
riff-bridge needs.

Recipe of :func:`hub_snapshot`:
  1. the snapshot in the local Hugging Face cache, if it is complete (every part's config
     and weights, tokenizer, scheduler; or a single-file checkpoint). An incomplete one (an
     interrupted download, a copy without weights) counts as missing;
  2. unless ``HF_HUB_OFFLINE`` is set: list the repo's files and pick what to fetch
     (:func:`choose_files`: configs, tokenizer, scheduler and, per part, its best weight file
     in whichever format the repo has; never the safety checker or feature extractor; a
     single-file checkpoint only when the repo has no diffusers weights), then download
     them with huggingface_hub, which resumes a dropped connection by byte range and shows
     progress bars (when asked, or whenever stderr is a terminal: a download can take
     minutes); files already complete in the cache are not fetched again;
  3. check the result is complete; every failure names what was looked for, where, and the
     one command that fixes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bridge.engine.layout import PARTS, best_weight, is_diffusers_folder, plan_folder, single_files
from bridge.errors import ModelUnavailableError

#: Seconds to wait for the hub before giving up (the failure must be fast and clear).
HUB_TIMEOUT = 10.0
#: Always fetched when present: configs and vocabularies.
PLAIN_PREFIXES = ("tokenizer/", "scheduler/")


def fix_command(repo_id: str) -> str:
    """The one command that gets ``repo_id`` into the cache (on a machine that reaches the hub)."""
    return f"`riff-bridge fetch-model {repo_id}` (on a machine that reaches huggingface.co; unset HF_HUB_OFFLINE)"


def hub_snapshot(repo_id: str, progress: bool = False) -> Path:
    """A complete local snapshot of ``repo_id`` (module recipe)."""
    from huggingface_hub import constants

    cached, missing = cached_snapshot(repo_id)
    if cached is not None and not missing:
        return cached
    if constants.HF_HUB_OFFLINE:
        raise ModelUnavailableError(_message(repo_id, cached, missing, "not tried: HF_HUB_OFFLINE is set"))
    try:
        folder = _download(repo_id, progress)
    except ModelUnavailableError:
        raise
    except Exception as err:  # noqa: BLE001 - network, auth and missing-repo errors alike
        raise ModelUnavailableError(_message(repo_id, cached, missing, "unreachable or no such model: "
                                             + first_line(err))) from None
    missing = snapshot_missing(folder)
    if missing:
        raise ModelUnavailableError(_message(repo_id, folder, missing, "downloaded, still incomplete"))
    return folder


def cached_snapshot(repo_id: str) -> tuple[Path | None, list[str]]:
    """The cached snapshot folder of ``repo_id`` (None when not cached) and what it lacks."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any cache miss
        return None, []
    return folder, snapshot_missing(folder)


def snapshot_missing(folder: Path) -> list[str]:
    """What a snapshot lacks to be loadable (empty when complete)."""
    if is_diffusers_folder(folder):
        return plan_folder(folder)[1]
    return [] if single_files(folder) else ["model_index.json and the parts, or a .safetensors/.ckpt file"]


def choose_files(listing: dict[str, int]) -> list[str]:
    """What to download from a repo whose files are ``listing`` (path -> size)."""
    chosen = [path for path in listing if path == "model_index.json" or path.startswith(PLAIN_PREFIXES)
              or path in {f"{part}/config.json" for part in PARTS}]
    weights = []
    for part in PARTS:
        names = [p.split("/", 1)[1] for p in listing if p.startswith(part + "/") and p.count("/") == 1]
        best = best_weight(names)
        if best is not None:
            weights.append(f"{part}/{best}")
            if best.endswith(".index.json"):
                weights.append(f"{part}/{best.split('.', 1)[0]}-*-of-*")
    if not weights:
        top = [p for p in listing if "/" not in p and p.endswith((".safetensors", ".ckpt"))]
        top.sort(key=lambda p: (not p.endswith(".safetensors"), listing[p], p))
        weights = top[:1]
    return chosen + weights


def _download(repo_id: str, progress: bool) -> Path:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    listing = {entry.path: getattr(entry, "size", 0) or 0
               for entry in HfApi().list_repo_tree(repo_id, recursive=True) if hasattr(entry, "size")}
    (enable_progress_bars if progress or sys.stderr.isatty() else disable_progress_bars)()
    return Path(snapshot_download(repo_id, allow_patterns=choose_files(listing), etag_timeout=HUB_TIMEOUT))


def _message(repo_id: str, cached: Path | None, missing: list[str], hub: str) -> str:
    from huggingface_hub import constants

    if cached is None:
        cache = f"not in the Hugging Face cache ({constants.HF_HUB_CACHE})"
    else:
        cache = f"its cached snapshot {cached} is incomplete (missing {', '.join(missing)})"
    return (f"model {repo_id!r} is not available: looked for its configs, tokenizer and weights "
            f"(safetensors or .bin, or a single .safetensors/.ckpt file): {cache}; on the hub: {hub}. "
            f"Fix: {fix_command(repo_id)}; or pass --model PATH (a local folder or checkpoint file); "
            f"--model mini runs riff-bridge-mini, the small model shipped with riff-bridge (trained on "
            f"synthesized loops); --model tiny a small random one")


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (huggingface_hub's "Got: " prefix dropped)."""
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__).removeprefix("Got: ")
