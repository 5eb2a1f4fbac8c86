"""Noise schedulers by short name, built fresh per generation from the model's config."""

from __future__ import annotations

import importlib.util
from typing import Any

from bridge.errors import ParameterError

#: Short name -> diffusers class (the request's ``scheduler`` field takes the short names).
SCHEDULER_CLASSES = {
    "dpm": "DPMSolverMultistepScheduler",
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "lms": "LMSDiscreteScheduler",
}


#: Kinds that can rescale betas to zero terminal SNR (the others would sample such a model on
#: the wrong noise levels).
ZERO_SNR_KINDS = ("dpm", "ddim", "euler")


def make_scheduler(name: str, config: dict[str, Any]) -> Any:
    """A new scheduler of kind ``name`` configured like the model's (schedulers are stateful).
    ParameterError for an unknown kind, or one that cannot follow a zero-terminal-SNR model."""
    import diffusers

    if name not in SCHEDULER_CLASSES:
        raise ParameterError("scheduler", "one of " + ", ".join(SCHEDULER_CLASSES), name)
    if config.get("rescale_betas_zero_snr") and name not in ZERO_SNR_KINDS:
        raise ParameterError("scheduler", ", ".join(ZERO_SNR_KINDS) + " (this model is trained at zero terminal SNR)",
                             name)
    if name == "lms" and importlib.util.find_spec("scipy") is None:
        raise ParameterError("scheduler", "dpm, ddim, pndm or euler (lms needs scipy installed)", name)
    return getattr(diffusers, SCHEDULER_CLASSES[name]).from_config(config)
