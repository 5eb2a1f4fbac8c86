"""Model loading as users have models: every weight layout, safe pickles, hub snapshots."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from bridge.engine.request import GenerationRequest
from bridge.errors import ModelUnavailableError
from model_layouts import write_bin_folder, write_single_file

REQUEST = GenerationRequest(prompt_a="organ", bars=1, bpm=120.0, steps=3, seed_image="grid")
REPO = "riffusion/riffusion-model-v1"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh riff-bridge cache (RIFF_BRIDGE_CACHE) for this module's conversions."""
    folder = tmp_path_factory.mktemp("riff-cache")
    old = os.environ.get("RIFF_BRIDGE_CACHE")
    os.environ["RIFF_BRIDGE_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("RIFF_BRIDGE_CACHE")
    else:
        os.environ["RIFF_BRIDGE_CACHE"] = old


@pytest.fixture(scope="module")
def layouts(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model as a .bin folder (old VAE attention names), .safetensors and .ckpt single files."""
    root = tmp_path_factory.mktemp("layouts")
    return {"bin-folder": write_bin_folder(tiny_model_dir, root / "bin-folder"),
            "single.safetensors": write_single_file(tiny_model_dir, root / "single.safetensors"),
            "single.ckpt": write_single_file(tiny_model_dir, root / "single.ckpt")}


@pytest.fixture(scope="module")
def reference_clip(tiny_engine) -> np.ndarray:
    """The clip of the safetensors original."""
    return tiny_engine.render(REQUEST).audio


@pytest.mark.parametrize("layout", ["bin-folder", "single.safetensors", "single.ckpt"])
def test_each_layout_renders_the_clip_of_the_safetensors_original(layout, layouts, cache, reference_clip,
                                                                   monkeypatch) -> None:
    from bridge.engine.conversion import converted_dir
    from bridge.engine.diffusion import DiffusionEngine

    source = layouts[layout]
    engine = DiffusionEngine(str(source), device="cpu")
    assert engine.components.folder == converted_dir(source)
    assert np.array_equal(engine.render(REQUEST).audio, reference_clip)
    weights = {p.suffix for p in engine.components.folder.rglob("*") if p.suffix in (".bin", ".safetensors", ".ckpt")}
    assert weights == {".safetensors"}
    monkeypatch.setattr(torch, "load", _no_pickles)  # the second load reads the cache only
    again = DiffusionEngine(str(source), device="cpu")
    assert again.components.folder == engine.components.folder
    assert np.array_equal(again.render(REQUEST).audio, reference_clip)


def _no_pickles(*_: object, **__: object) -> None:
    raise AssertionError("a pickle was read")


def test_the_bin_folder_really_has_old_vae_attention_names(layouts) -> None:
    state = torch.load(layouts["bin-folder"] / "vae" / "diffusion_pytorch_model.bin", weights_only=True)
    assert any(".attentions.0.query." in key for key in state)
    assert not any(".to_q." in key for key in state)


class _RunsCode:
    """Unpickling this calls os.system (what a malicious model file does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(writer, tiny_model_dir, tmp_path, cache) -> None:
    from bridge.engine.diffusion import DiffusionEngine
    from bridge.engine.weights import UnsafeWeightsError

    marker = tmp_path / "pwned"
    folder = write_bin_folder(tiny_model_dir, tmp_path / "evil")
    with open(folder / "unet" / "diffusion_pytorch_model.bin", "wb") as handle:
        if writer == "torch.save":
            torch.save({"conv_in.weight": torch.zeros(1), "evil": _RunsCode(marker)}, handle)
        else:  # a legacy (non-zip) pickle, as torch wrote before 1.6
            pickle.dump({"evil": _RunsCode(marker)}, handle, protocol=2)
    with pytest.raises(UnsafeWeightsError) as caught:
        DiffusionEngine(str(folder), device="cpu")
    message = str(caught.value)
    assert "diffusion_pytorch_model.bin: refused" in message and "could run code" in message
    assert "system" in message and ".safetensors" in message
    assert not marker.exists()
    assert not any(p.name.startswith("evil-") for p in (cache / "converted").iterdir())


def test_an_incomplete_folder_names_what_is_missing(tiny_model_dir, tmp_path) -> None:
    from bridge.engine.loader import prepare_model_folder

    folder = write_bin_folder(tiny_model_dir, tmp_path / "partial")
    (folder / "vae" / "diffusion_pytorch_model.bin").unlink()
    with pytest.raises(ModelUnavailableError, match=r"incomplete: missing vae/diffusion_pytorch_model"):
        prepare_model_folder(str(folder))


# -- hub snapshots (simulated Hugging Face cache; the hub itself is never reached) -----------

def _snapshot(hub_cache: Path, repo: str, source: Path | None) -> Path:
    """A Hugging Face cache entry for ``repo`` at commit 'abc...': configs and tokenizer, plus
    the weights of ``source`` (a diffusers folder) when given."""
    import shutil

    commit = "a" * 40
    entry = hub_cache / f"models--{repo.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(commit)
    snapshot = entry / "snapshots" / commit
    ignore = None if source else shutil.ignore_patterns("*.bin", "*.safetensors")
    shutil.copytree(source, snapshot, ignore=ignore)
    return snapshot


@pytest.fixture()
def hub(tmp_path, monkeypatch) -> Path:
    """An empty simulated Hugging Face cache, offline; the hub endpoint is a closed loopback port."""
    from huggingface_hub import constants

    hub_cache = tmp_path / "hf"
    hub_cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    return hub_cache


def test_a_cached_snapshot_without_weights_is_missing_and_the_error_names_the_fix(hub, layouts) -> None:
    from bridge.engine.loader import prepare_model_folder

    snapshot = _snapshot(hub, REPO, layouts["bin-folder"])
    for weights in snapshot.rglob("*.bin"):
        weights.unlink()
    with pytest.raises(ModelUnavailableError) as caught:
        prepare_model_folder(REPO)
    message = str(caught.value)
    assert f"its cached snapshot {snapshot} is incomplete" in message
    assert "missing unet/diffusion_pytorch_model.safetensors (or .bin)" in message
    assert "HF_HUB_OFFLINE is set" in message
    assert f"Fix: `riff-bridge fetch-model {REPO}`" in message


def test_an_unreachable_hub_is_tried_then_named(hub, monkeypatch, layouts) -> None:
    from huggingface_hub import constants

    from bridge.engine.loader import prepare_model_folder

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(ModelUnavailableError) as caught:
        prepare_model_folder(REPO)
    message = str(caught.value)
    assert "not in the Hugging Face cache" in message and "unreachable or no such model" in message
    assert f"riff-bridge fetch-model {REPO}" in message


def test_a_complete_cached_snapshot_with_bin_weights_loads(hub, layouts, cache, reference_clip) -> None:
    from bridge.engine.diffusion import DiffusionEngine

    _snapshot(hub, REPO, layouts["bin-folder"])
    engine = DiffusionEngine(REPO, device="cpu")
    assert np.array_equal(engine.render(REQUEST).audio, reference_clip)


RIFFUSION_LISTING = {  # riffusion-model-v1 as of its December 2022 release (sizes in bytes)
    "model_index.json": 541, "riffusion-model-v1.ckpt": 14_744_915_513,
    "feature_extractor/preprocessor_config.json": 342, "safety_checker/config.json": 4_900,
    "safety_checker/pytorch_model.bin": 1_216_064_769, "scheduler/scheduler_config.json": 308,
    "text_encoder/config.json": 612, "text_encoder/pytorch_model.bin": 492_307_041,
    "tokenizer/merges.txt": 524_619, "tokenizer/special_tokens_map.json": 472,
    "tokenizer/tokenizer_config.json": 806, "tokenizer/vocab.json": 1_059_962,
    "unet/config.json": 743, "unet/diffusion_pytorch_model.bin": 3_438_375_973,
    "vae/config.json": 547, "vae/diffusion_pytorch_model.bin": 334_707_217,
}


def test_hub_downloads_fetch_the_repo_s_own_format_and_never_the_checker_or_ckpt() -> None:
    from bridge.engine.hub import choose_files

    chosen = choose_files(RIFFUSION_LISTING)
    assert "unet/diffusion_pytorch_model.bin" in chosen and "text_encoder/pytorch_model.bin" in chosen
    assert "tokenizer/vocab.json" in chosen and "scheduler/scheduler_config.json" in chosen
    assert not any(p.startswith(("safety_checker", "feature_extractor")) or p.endswith(".ckpt") for p in chosen)
    both = dict(RIFFUSION_LISTING, **{"unet/diffusion_pytorch_model.safetensors": 3_438_167_534,
                                      "unet/diffusion_pytorch_model.fp16.safetensors": 1_719_125_304})
    assert "unet/diffusion_pytorch_model.safetensors" in choose_files(both)
    assert not any(p.startswith("unet/") and p.endswith(".bin") for p in choose_files(both))
    single = {"README.md": 10, "v1-5-pruned.safetensors": 7_703_324_286,
              "v1-5-pruned-emaonly.safetensors": 4_265_096_720, "v1-5-pruned-emaonly.ckpt": 4_265_380_512}
    assert choose_files(single) == ["v1-5-pruned-emaonly.safetensors"]


def test_fetch_model_cli_converts_a_local_checkpoint(layouts, cache, capsys) -> None:
    from bridge.cli import main
    from bridge.engine.conversion import converted_dir

    assert main(["fetch-model", str(layouts["single.ckpt"])]) == 0
    assert f"ready at {converted_dir(layouts['single.ckpt'])}" in capsys.readouterr().out


def test_weights_are_channels_last_and_compile_wraps_the_unet(tiny_model_dir) -> None:
    from bridge.engine.loader import ModelSpec, load_model
    from bridge.engine.speed import is_compiled

    plain = load_model(ModelSpec(str(tiny_model_dir), device="cpu"))
    parts = load_model(ModelSpec(str(tiny_model_dir), device="cpu", compile=True))
    assert not is_compiled(plain.unet) and is_compiled(parts.unet)
    assert parts.unet.config.in_channels == 4  # the config still reads through the wrapper
    assert parts.unet._orig_mod.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert parts.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)


def test_a_single_file_s_clip_tokenizer_is_found_beside_it_or_named(hub, tmp_path) -> None:
    from bridge.engine.checkpoint import clip_tokenizer

    checkpoint = tmp_path / "riffusion-model-v1.ckpt"
    with pytest.raises(ModelUnavailableError) as caught:
        clip_tokenizer(checkpoint)
    message = str(caught.value)
    assert str(tmp_path / "tokenizer") in message and str(hub) in message
    assert "Fix: `hf download openai/clip-vit-large-patch14 vocab.json merges.txt" in message
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "vocab.json").write_text("{}")
    assert clip_tokenizer(checkpoint) == tmp_path / "tokenizer"


# -- a hub download end to end, from a loopback stand-in of the hub's HTTP API --------------

class _LoopbackHub:
    """Serves one repo's files the way huggingface.co does (tree and revision API, resolve
    URLs with commit and ETag headers, byte ranges) on 127.0.0.1, and logs every request.
    The first download of ``interrupt`` stops half-way (the connection drops)."""

    def __init__(self, repo: str, files: dict[str, bytes], interrupt: str = "") -> None:
        import hashlib
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.repo, self.files, self.log, self.interrupt = repo, files, [], interrupt
        self.commit = "c" * 40
        self.etags = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                hub.serve(self, body=False)

            def do_GET(self) -> None:  # noqa: N802
                hub.serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, handler: Any, body: bool) -> None:
        import json

        path = handler.path.split("?")[0]
        self.log.append((handler.command, path, handler.headers.get("Range")))
        if path.startswith(f"/api/models/{self.repo}/tree/"):
            listing = [{"type": "file", "path": p, "size": len(d), "oid": self.etags[p]} for p, d in self.files.items()]
            return self._send(handler, 200, json.dumps(listing).encode(), {"Content-Type": "application/json"}, body)
        if path.startswith(f"/api/models/{self.repo}/revision/"):
            info = {"id": self.repo, "sha": self.commit, "siblings": [{"rfilename": p} for p in self.files]}
            return self._send(handler, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
        prefix = f"/{self.repo}/resolve/"
        name = path[len(prefix):].split("/", 1)[1] if path.startswith(prefix) else None
        if name not in self.files:
            return self._send(handler, 404, b"not found", {}, body)
        data, start = self.files[name], 0
        headers = {"X-Repo-Commit": self.commit, "ETag": f'"{self.etags[name]}"'}
        wanted = handler.headers.get("Range")
        if wanted and body:
            start = int(wanted.split("=")[1].split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if body and name == self.interrupt:
            self.interrupt = ""
            return self._drop(handler, data, headers)
        self._send(handler, 206 if start else 200, data[start:], headers, body)

    @staticmethod
    def _drop(handler: Any, data: bytes, headers: dict[str, str]) -> None:
        """Announce all of ``data``, send half, and close the connection."""
        import socket

        handler.send_response(200)
        for key, value in dict(headers, **{"Content-Length": str(len(data))}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data[:len(data) // 2])
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
        handler.close_connection = True

    @staticmethod
    def _send(handler: Any, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        handler.send_response(status)
        for key, value in dict(headers, **{"Content-Length": str(len(data))}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_hub_download_fetches_only_what_is_needed_and_resumes_a_dropped_file(
        hub, monkeypatch, layouts, cache, reference_clip) -> None:
    from huggingface_hub import constants

    from bridge.engine.diffusion import DiffusionEngine

    source = layouts["bin-folder"]
    files = {str(p.relative_to(source)): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    files.update({"safety_checker/config.json": b"{}", "safety_checker/pytorch_model.bin": b"x" * 1000,
                  "riffusion-model-v1.ckpt": b"y" * 1000})
    unet = "unet/diffusion_pytorch_model.bin"
    server = _LoopbackHub(REPO, files, interrupt=unet)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)  # our files are small
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    try:
        engine = DiffusionEngine(REPO, device="cpu")
    finally:
        server.close()
    fetched = {path.split("/resolve/")[1].split("/", 1)[1] for method, path, _ in server.log
               if method == "GET" and "/resolve/" in path}
    assert {unet, "vae/diffusion_pytorch_model.bin", "tokenizer/tokenizer.json"} <= fetched
    assert not any(p.startswith("safety_checker") or p.endswith(".ckpt") for p in fetched)
    half = len(files[unet]) // 2
    gets = [entry[2] for entry in server.log if entry[0] == "GET" and entry[1].endswith(unet)]
    assert len(gets) == 2 and gets[0] is None and gets[1].startswith("bytes=")  # the retry resumed
    assert 0 < int(gets[1].removeprefix("bytes=").rstrip("-")) <= half
    blob = hub / f"models--{REPO.replace('/', '--')}" / "blobs" / server.etags[unet]
    assert blob.read_bytes() == files[unet]
    assert np.array_equal(engine.render(REQUEST).audio, reference_clip)
