"""What one worker replica does with calls, free of Ray (Ray Serve wraps it; tests drive it).

:class:`Generator` loads the model once, then answers lists of :class:`~bridge.remote.wire.Call`
(the batches Ray Serve collects): calls are grouped by shape key; a group of one goes
through the engine's own single path (so a lone request gives exactly what a local
``render`` gives), a larger group through :class:`~bridge.remote.batch.BatchPainter` in one
UNet batch. Each call's inputs come from the names it carries (built-ins only) or from the
image bytes attached to it, never from a file. Each answer is a Reply or the exception
that call raised; one bad call does not fail its batch.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Sequence

from bridge.engine.protocol import GenerationCancelled
from bridge.remote.wire import ATTACHED, Call, Reply, mask_from_png, png_bytes, rgb_image

#: A call's cancel check: true once its client gave up on it.
Cancel = Callable[[], bool]


class Generator:
    """A loaded engine answering calls (see the module docstring).

    ``model``/``device`` as for :class:`~bridge.engine.diffusion.DiffusionEngine`; or pass a
    ready ``engine`` (tests). Calls are answered one batch at a time.
    """

    def __init__(self, model: str = "tiny", device: str = "auto", engine: Any = None) -> None:
        if engine is None:
            from bridge.engine.diffusion import DiffusionEngine

            engine = DiffusionEngine(model, device=device)
        from bridge.remote.batch import BatchPainter

        self.engine, self.model = engine, model
        self.painter = BatchPainter(engine)
        self.pid = os.getpid()
        self.batches: list[int] = []
        self.cancelled = 0
        self._lock = threading.Lock()

    def health(self) -> dict[str, Any]:
        """What ``GET /health`` reports once the model is loaded."""
        return {"status": "ok", "model": self.model, "device": str(self.engine.components.device),
                "replica": self.pid, "cancelled": self.cancelled}

    def answer(self, calls: Sequence[Call], cancels: Sequence[Cancel] | None = None) -> list[Reply | BaseException]:
        """A Reply or an exception per call, in order."""
        cancels = list(cancels) if cancels is not None else [lambda: False] * len(calls)
        results: list[Reply | BaseException] = [RuntimeError("not answered")] * len(calls)
        with self._lock:
            self.batches.append(len(calls))
            del self.batches[:-100]
            for group in _groups(calls).values():
                for index, outcome in zip(group, self._answer_group([calls[i] for i in group],
                                                                    [cancels[i] for i in group])):
                    results[index] = outcome
        return results

    def _answer_group(self, calls: list[Call], cancels: list[Cancel]) -> list[Reply | BaseException]:
        from bridge.engine.stopwatch import Stopwatch

        watch = Stopwatch(self.engine.components.device)
        try:
            inputs = [self.inputs(call) for call in calls]
            if len(calls) == 1 or _no_steps(calls[0]):
                images = [self.engine.paint(c.request, cancels[i], inputs[i], watch) for i, c in enumerate(calls)]
            else:
                images = self.painter.paint([c.request for c in calls], inputs,
                                            lambda: all(cancel() for cancel in cancels), watch)
        except GenerationCancelled as err:
            self.cancelled += len(calls)
            return [err] * len(calls)
        except Exception as err:
            return [err] * len(calls)
        return [self._reply(call, image, dict(watch.seconds, batch=float(len(calls))))
                for call, image in zip(calls, images)]

    def inputs(self, call: Call) -> tuple[Any, Any]:
        """Seed image and mask of ``call``: attached bytes or built-in names, fitted to the
        request's width exactly as the engine fits them (never a file)."""
        from bridge.engine.mask import builtin_mask
        from bridge.engine.seeds import fit_image, seed_image

        request = call.request
        if not request.seed_image:
            return None, None
        width, height = request.generation_width(), self.engine.codec.params.n_mels
        if request.seed_image == ATTACHED:
            seed = fit_image(rgb_image(call.seed or b"", "seed_image"), width, height)
        else:
            seed = seed_image(request.seed_image, request, self.engine.codec, paint=self.engine.paint)
        if not request.mask:
            return seed, None
        if request.mask == ATTACHED:
            return seed, _fit_mask(mask_from_png(call.mask or b""), seed.width, seed.height)
        return seed, builtin_mask(request.mask, seed.width, seed.height)

    def _reply(self, call: Call, image: Any, timings: dict[str, float]) -> Reply:
        audio = None
        if call.returns == "audio":
            from bridge.engine.stopwatch import Stopwatch

            watch = Stopwatch(self.engine.components.device)
            with watch.stage("codec"):
                audio = self.engine.codec.mel_to_audio(_mel(image), call.num_samples, call.sample_rate)
                audio = audio.cpu().numpy()[0]
            timings.update(watch.seconds)
        return Reply(png_bytes(image), audio, timings, self.pid)


def _groups(calls: Sequence[Call]) -> "OrderedDict[tuple[Any, ...], list[int]]":
    groups: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
    for index, call in enumerate(calls):
        groups.setdefault(call.shape_key(), []).append(index)
    return groups


def _no_steps(call: Call) -> bool:
    """True for img2img at strength 0 (the seed image comes back unchanged)."""
    return bool(call.request.seed_image) and call.shape_key()[3] == 0


def _mel(image: Any) -> Any:
    from bridge.audio.image import decode_image

    return decode_image(image, stereo=False)[0]


def _fit_mask(mask: Any, width: int, height: int) -> Any:
    """An attached mask resized (bilinear, as mask files are read) when its size differs."""
    import numpy as np
    from PIL import Image

    if mask.shape == (height, width):
        return mask
    grey = Image.fromarray(np.rint(mask * 255).astype(np.uint8), mode="L")
    return np.asarray(grey.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
