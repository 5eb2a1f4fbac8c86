"""The remote worker's parts without Ray: frames, path refusal, tokens, batching, the client's
attachments, and the client's failures against real loopback sockets."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from bridge.engine.request import GenerationRequest
from bridge.errors import ParameterError
from bridge.remote.access import check_exposure, is_loopback, refusal, resolve_token
from bridge.remote.client import RemoteEngine, RemoteEngineError
from bridge.remote.wire import ATTACHED, Call, Reply, WireError, mask_from_png, mask_png, pack, unpack

REQUEST = GenerationRequest(prompt_a="organ", steps=3, bars=1, bpm=120.0)


def test_frames_round_trip_header_and_parts_and_refuse_truncation() -> None:
    frame = pack({"a": 1}, {"x": b"abc", "y": b""})
    assert unpack(frame) == ({"a": 1, "parts": [["x", 3], ["y", 0]]}, {"x": b"abc", "y": b""})
    with pytest.raises(WireError, match="listed 3 bytes, got 2"):
        unpack(frame[:-1])
    with pytest.raises(WireError, match="expected JSON"):
        unpack(b"\x00\x00\x00\x03abc")


def test_call_and_reply_round_trip_with_attachments() -> None:
    seed = Image.new("RGB", (64, 512), (10, 20, 30))
    mask = np.zeros((512, 64), np.float32)
    mask[:, 32:] = 1.0
    from bridge.remote.wire import png_bytes

    call = Call(REQUEST.with_changes(seed_image=ATTACHED, mask=ATTACHED), 88200, 44100, "audio",
                png_bytes(seed), mask_png(mask))
    back = Call.decode(call.encode())
    assert back == call and np.array_equal(mask_from_png(back.mask), mask)
    reply = Reply(b"png", np.arange(5, dtype=np.float32), {"unet": 0.5}, 1234)
    again = Reply.decode(reply.encode())
    assert np.array_equal(again.audio, reply.audio) and again.timings == {"unet": 0.5} and again.replica == 1234


@pytest.mark.parametrize("field, value", [("seed_image", "/etc/passwd"), ("seed_image", "../seeds/a.png"),
                                          ("mask", "/tmp/mask.png")])
def test_a_request_naming_a_path_is_refused(field: str, value: str) -> None:
    fields = {"seed_image": "grid", field: value}
    frame = pack({"request": {"prompt_a": "x", **fields}, "num_samples": 100})
    with pytest.raises(ParameterError, match=f"{field}: expected a built-in name .* never opens files"):
        Call.decode(frame)


def test_unknown_request_fields_and_bad_values_are_refused_with_their_names() -> None:
    with pytest.raises(ParameterError, match="request: expected an object with fields among"):
        Call.decode(pack({"request": {"prompt_a": "x", "path": "/etc"}, "num_samples": 100}))
    with pytest.raises(ParameterError, match="returns: expected one of image, audio"):
        Call.decode(pack({"request": {"prompt_a": "x"}, "num_samples": 100, "returns": "pickle"}))
    with pytest.raises(ParameterError, match="seed_image: expected image bytes attached"):
        Call.decode(pack({"request": {"prompt_a": "x", "seed_image": ATTACHED}, "num_samples": 100}))


def test_tokens_loopback_and_exposure(monkeypatch) -> None:
    assert refusal(None, None) is None and refusal("Bearer s3cret", "s3cret") is None
    assert "got none" in refusal(None, "s3cret") and "wrong one" in refusal("Bearer nope", "s3cret")
    assert "\n" not in refusal("Basic s3cret", "s3cret")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    check_exposure("127.0.0.1", None)
    with pytest.raises(ParameterError, match="token: expected a token .* to listen on 0.0.0.0"):
        check_exposure("0.0.0.0", None)
    monkeypatch.setenv("RIFF_BRIDGE_TOKEN", "from-env")
    assert resolve_token(None) == "from-env" and resolve_token("given") == "given"


def test_worker_command_refuses_beyond_loopback_without_a_token(monkeypatch, capsys) -> None:
    from bridge.cli import main

    monkeypatch.delenv("RIFF_BRIDGE_TOKEN", raising=False)
    assert main(["worker", "--model", "tiny", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "token: expected a token" in err and "0.0.0.0" in err


def test_client_attaches_file_inputs_as_bytes_and_keeps_builtin_names(tmp_path: Path) -> None:
    seed_file, mask_file = tmp_path / "seed.png", tmp_path / "mask.png"
    Image.new("RGB", (100, 512), (40, 40, 40)).save(seed_file)
    grey = np.zeros((512, 100), np.uint8)
    grey[:, 50:] = 255
    Image.fromarray(grey, mode="L").save(mask_file)
    client = RemoteEngine("http://127.0.0.1:1")
    call = client.call_for(REQUEST.with_changes(seed_image=str(seed_file), mask=str(mask_file)), 88200, 44100)
    assert call.request.seed_image == ATTACHED and call.request.mask == ATTACHED
    assert str(tmp_path) not in call.encode().decode("latin-1")
    from bridge.engine.mask import mask_array

    width = REQUEST.generation_width()
    assert np.array_equal(mask_from_png(call.mask), mask_array(str(mask_file), width, 512))
    named = client.call_for(REQUEST.with_changes(seed_image="grid", mask="keep-start"), 88200, 44100)
    assert (named.request.seed_image, named.request.mask, named.seed, named.mask) == ("grid", "keep-start", None, None)


# -- the batched path ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def generator():
    from bridge.engine.diffusion import DiffusionEngine
    from bridge.remote.generator import Generator

    return Generator("tiny", engine=DiffusionEngine("tiny", device="cpu"))


def test_same_shape_calls_share_one_batch_and_match_the_single_path(generator) -> None:
    from bridge.remote.wire import png_image

    requests = [REQUEST.with_changes(seed_a=s, alpha=a, guidance=g, seed_image="grid", mask="keep-start")
                for s, a, g in ((1, 0.0, 7.0), (2, 0.5, 3.0), (3, 0.25, 7.0))]
    calls = [Call(r, r.num_samples()) for r in requests]
    batched = generator.answer(calls)
    alone = [generator.answer([c])[0] for c in calls]
    assert generator.batches[-4:] == [3, 1, 1, 1]
    for together, single in zip(batched, alone):
        a = np.asarray(png_image(together.image, "a"), np.int16)
        b = np.asarray(png_image(single.image, "b"), np.int16)
        assert together.timings["batch"] == 3.0 and single.timings["batch"] == 1.0
        assert np.abs(a - b).max() <= 2 and np.mean(a != b) < 0.01
    first = np.asarray(png_image(batched[0].image, "a"))
    assert not np.array_equal(first, np.asarray(png_image(batched[1].image, "b")))


def test_the_accent_seed_travels_by_name_and_the_worker_paints_it_as_the_engine_does(generator, tmp_path: Path) -> None:
    from bridge.remote.wire import png_image

    mask_file = tmp_path / "mask.png"
    grey = np.zeros((512, 100), np.uint8)
    grey[:, 50:] = 255
    Image.fromarray(grey, mode="L").save(mask_file)
    request = REQUEST.with_changes(seed_image="accent", denoising=0.5, mask=str(mask_file))
    call = RemoteEngine("http://127.0.0.1:1").call_for(request, request.num_samples(), 44100)
    assert (call.request.seed_image, call.request.mask, call.seed) == ("accent", ATTACHED, None)
    reply = generator.answer([call])[0]
    local = generator.engine.paint(request)
    assert np.array_equal(np.asarray(png_image(reply.image, "reply")), np.asarray(local))


def test_different_shapes_are_answered_in_separate_groups_and_errors_stay_per_call(generator) -> None:
    wide = REQUEST.with_changes(bars=2)
    calls = [Call(REQUEST, REQUEST.num_samples()), Call(wide, wide.num_samples(), returns="audio"),
             Call(REQUEST.with_changes(seed_image=ATTACHED), 100, seed=b"not a png")]
    replies = generator.answer(calls)
    assert replies[0].audio is None and replies[1].audio.shape == (wide.num_samples(),)
    assert isinstance(replies[2], ParameterError) and "seed_image: expected PNG image bytes" in str(replies[2])


def test_a_batch_stops_once_every_call_is_cancelled(generator) -> None:
    from bridge.engine.protocol import GenerationCancelled

    calls = [Call(REQUEST.with_changes(seed_a=s, steps=20), REQUEST.num_samples()) for s in (1, 2)]
    replies = generator.answer(calls, [lambda: True, lambda: True])
    assert all(isinstance(r, GenerationCancelled) for r in replies)


# -- the client's failures on loopback ----------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    mode = "error"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.mode == "slow":
            threading.Event().wait(5)
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b"replica overloaded\nsecond line\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    _Handler.mode = "error"


def test_client_failures_are_one_line_errors(http_server) -> None:
    url = f"http://127.0.0.1:{http_server.server_address[1]}"
    with pytest.raises(RemoteEngineError, match=r"^worker http://127.0.0.1:\d+: HTTP 503: replica overloaded$"):
        RemoteEngine(url).generate(REQUEST, 100, 44100)
    _Handler.mode = "slow"
    with pytest.raises(RemoteEngineError, match="no answer within 1 s"):
        RemoteEngine(url, timeout=1.0).generate(REQUEST, 100, 44100)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(RemoteEngineError, match="unreachable: .*refused"):
        RemoteEngine(f"http://127.0.0.1:{port}").generate(REQUEST, 100, 44100)
    with pytest.raises(ParameterError, match="engine: expected an http://HOST:PORT URL"):
        RemoteEngine("ftp://x")


def test_client_cancel_closes_the_connection(http_server) -> None:
    import time

    from bridge.engine.protocol import GenerationCancelled

    _Handler.mode = "slow"
    url = f"http://127.0.0.1:{http_server.server_address[1]}"
    began = time.monotonic()
    flag = threading.Timer(0.3, lambda: None)
    flag.start()
    with pytest.raises(GenerationCancelled):
        RemoteEngine(url).generate(REQUEST, 100, 44100, cancel=lambda: not flag.is_alive())
    assert time.monotonic() - began < 3.0


def test_the_command_line_imports_neither_ray_nor_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from bridge.cli import build_parser; build_parser(); "
            "print([m for m in ('ray', 'torch', 'starlette') if m in sys.modules])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr
