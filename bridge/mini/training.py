"""Training riff-bridge-mini from scratch on the synthesized dataset, on CPU, resumably.

Recipe of :func:`train` (every random draw comes from ``(seed, phase, step)``, so a run
resumed from a checkpoint takes the same batches as an uninterrupted one):
  1. data: :func:`~bridge.mini.dataset.cached_dataset` (built and cached on first use);
  2. VAE: full-height crops (512 x ``vae_crop`` px) reconstructed through a sampled
     posterior, L1 loss plus a small KL term;
  3. latents: every image encoded once (distribution mean); the scaling factor is 1 / their
     standard deviation (stored in the VAE config, as SD's 0.18215 is);
  4. diffusion: random ``latent_crop``-wide latent windows, noised by SD's schedule at random
     timesteps; the UNet predicts the noise (or, with ``zero_snr``, the velocity on SD's
     schedule rescaled to zero terminal SNR: :func:`noise_schedule`) from the text encoder's
     embedding of a sampled caption (:func:`~bridge.mini.vocabulary.sampled_caption`; 10 %
     empty for guidance); UNet and text encoder train together; an exponential moving average of both is kept;
  5. the averaged weights are saved (fp16) as a diffusers folder with ``training.json`` beside them.
A checkpoint (``work/checkpoint.pt``, tensors only: loaded with ``weights_only=True``) is
written every ``checkpoint_every`` steps and at each phase's end.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import check_int, check_range


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how long. ``out``: model folder written at the end; ``work``:
    checkpoints and latents; sizes in pixels (VAE) and latent columns (diffusion);
    ``zero_snr``: the diffusion objective of :func:`noise_schedule`."""

    out: Path
    work: Path
    data_seed: int = 1
    loops: int = 480
    seed: int = 0
    vae_steps: int = 500
    vae_batch: int = 6
    vae_crop: int = 48
    unet_steps: int = 1400
    unet_batch: int = 8
    latent_crop: int = 32
    encode_width: int = 384
    vae_lr: float = 2e-3
    unet_lr: float = 1e-3
    ema: float = 0.99
    checkpoint_every: int = 50
    threads: int = 1
    attention_levels: int = 1
    zero_snr: bool = False

    def __post_init__(self) -> None:
        check_int("loops", self.loops, 16, 100_000)
        check_int("vae_steps", self.vae_steps, 0, 1_000_000)
        check_int("unet_steps", self.unet_steps, 0, 1_000_000)
        check_int("encode_width", self.encode_width, 64, 600)
        check_int("latent_crop", self.latent_crop, 8, self.encode_width // 8)
        check_int("vae_crop", self.vae_crop, 16, 600)
        check_range("ema", self.ema, 0.0, 0.9999)
        check_int("attention_levels", self.attention_levels, 1, 2)


@dataclass
class _State:
    phase: str = "vae"
    step: int = 0
    losses: dict[str, list[float]] = field(default_factory=lambda: {"vae": [], "unet": []})


class Stopped(Exception):
    """Raised inside :func:`train` when ``stop_after`` steps ran (a checkpoint was written)."""


def train(config: TrainConfig, stop_after: int | None = None) -> Path | None:
    """Run (or resume) the recipe; returns the written model folder, or None when
    ``stop_after`` optimisation steps ran first (as if interrupted; resume by calling again)."""
    import torch

    torch.set_num_threads(config.threads)
    from tqdm.auto import tqdm

    from bridge.mini.architecture import build_parts
    from bridge.mini.dataset import cached_dataset

    config.work.mkdir(parents=True, exist_ok=True)
    with tqdm(total=config.loops, desc="rendering loops", disable=_cached(config)) as bar:
        data = cached_dataset(config.loops, config.data_seed, bar.update)
    parts = build_parts(config.seed, config.attention_levels)
    trainer = _Trainer(config, parts, data)
    trainer.resume()
    trainer.remaining = stop_after
    started = time.monotonic()
    try:
        trainer.train_vae()
        trainer.encode_latents()
        trainer.train_diffusion()
    except Stopped:
        return None
    return trainer.save(time.monotonic() - started)


def export(config: TrainConfig) -> Path:
    """Write the model as it stands in ``config.work``'s checkpoint (diffusion phase or later),
    without training: a look at a run in progress."""
    import torch

    from bridge.errors import BridgeError
    from bridge.mini.architecture import build_parts
    from bridge.mini.dataset import cached_dataset

    torch.set_num_threads(config.threads)
    trainer = _Trainer(config, build_parts(config.seed, config.attention_levels), cached_dataset(config.loops, config.data_seed))
    trainer.resume()
    if trainer.state.phase not in ("unet", "done") or not trainer.latent_file.is_file():
        raise BridgeError(f"{config.work}: no checkpoint past the VAE phase to export yet")
    trainer.encode_latents()
    return trainer.save(0.0)


def _cached(config: TrainConfig) -> bool:
    from bridge.mini.dataset import dataset_path

    return dataset_path(config.loops, config.data_seed).is_file()


class _Trainer:
    """The recipe's state: components, optimizers, averages, latents, progress."""

    def __init__(self, config: TrainConfig, parts: dict[str, Any], data: Any) -> None:
        import torch

        self.config, self.parts, self.data = config, parts, data
        self.state = _State()
        self.vae_opt = torch.optim.AdamW(parts["vae"].parameters(), lr=config.vae_lr, weight_decay=0.0)
        params = list(parts["unet"].parameters()) + list(parts["text_encoder"].parameters())
        self.unet_opt = torch.optim.AdamW(params, lr=config.unet_lr, weight_decay=0.01)
        self.ema = {"unet": copy.deepcopy(parts["unet"]).requires_grad_(False),
                    "text_encoder": copy.deepcopy(parts["text_encoder"]).requires_grad_(False)}
        self.latents: Any = None
        self.scaling = 1.0
        self.remaining: int | None = None
        self.noise_schedule = noise_schedule(config.zero_snr)

    # -- checkpoints ----------------------------------------------------------------------
    @property
    def checkpoint(self) -> Path:
        return self.config.work / "checkpoint.pt"

    def resume(self) -> None:
        """Load the checkpoint when there is one (tensors only)."""
        import torch

        if not self.checkpoint.is_file():
            return
        saved = torch.load(self.checkpoint, weights_only=True)
        for name in ("vae", "unet", "text_encoder"):
            self.parts[name].load_state_dict(saved[name])
        for name in self.ema:
            self.ema[name].load_state_dict(saved["ema_" + name])
        self.vae_opt.load_state_dict(saved["vae_opt"])
        self.unet_opt.load_state_dict(saved["unet_opt"])
        self.state = _State(saved["phase"], int(saved["step"]), json.loads(saved["losses"]))
        done = len(self.state.losses["unet"])
        if self.state.phase == "done" and done < self.config.unet_steps:  # a longer schedule: go on
            self.state = _State("unet", done, self.state.losses)
        print(f"resumed from {self.checkpoint}: {self.state.phase} step {self.state.step}")

    def save_checkpoint(self) -> None:
        import torch

        saved = {name: self.parts[name].state_dict() for name in ("vae", "unet", "text_encoder")}
        saved.update({"ema_" + name: module.state_dict() for name, module in self.ema.items()})
        saved.update(vae_opt=self.vae_opt.state_dict(), unet_opt=self.unet_opt.state_dict(),
                     phase=self.state.phase, step=self.state.step, losses=json.dumps(self.state.losses))
        partial = self.checkpoint.with_suffix(".partial")
        torch.save(saved, partial)
        partial.replace(self.checkpoint)

    # -- 2. VAE -------------------------------------------------------------------------
    def train_vae(self) -> None:
        if self.state.phase != "vae":
            return
        vae = self.parts["vae"].train()
        for step in self._steps("vae", self.config.vae_steps, "training VAE"):
            loss = self.vae_loss(vae, self._vae_batch(step), step)
            self._optimise(self.vae_opt, loss, step, self.config.vae_steps, self.config.vae_lr)
            self._record("vae", step, loss.item())
        self.state = _State("latents", 0, self.state.losses)
        self.save_checkpoint()

    def vae_loss(self, vae: Any, pixels: Any, step: int) -> Any:
        """L1 reconstruction plus a small KL term; the posterior sample is drawn from a generator
        seeded by ``step`` (never torch's global one), so a resumed run takes the same draws."""
        import torch

        posterior = vae.encode(pixels).latent_dist
        gen = torch.Generator().manual_seed(_seed_int(self.config.seed, "vae-noise", step))
        recon = vae.decode(posterior.sample(generator=gen)).sample
        return (recon - pixels).abs().mean() + 1e-7 * posterior.kl().mean()

    def _vae_batch(self, step: int) -> Any:
        rng = _rng(self.config.seed, "vae", step)
        images, crop = self.data.images, self.config.vae_crop
        rows = []
        for _ in range(self.config.vae_batch):
            i, x = rng.randrange(len(images)), rng.randrange(images.shape[2] - crop)
            rows.append(images[i, :, x:x + crop])
        return _pixels(np.stack(rows))

    # -- 3. latents -----------------------------------------------------------------------
    @property
    def latent_file(self) -> Path:
        return self.config.work / "latents.pt"

    def encode_latents(self) -> None:
        """Every image's latents (mean), cached in ``work``; sets the scaling factor."""
        import torch

        if self.latent_file.is_file() and self.state.phase != "latents":
            saved = torch.load(self.latent_file, weights_only=True)
            self.latents, self.scaling = saved["latents"], float(saved["scaling"])
            return
        if self.state.phase != "latents":
            raise RuntimeError(f"latents of {self.latent_file} are missing in phase {self.state.phase}")
        vae = self.parts["vae"].eval()
        width = min(self.config.encode_width, self.data.images.shape[2]) // 8 * 8
        chunks = []
        with torch.no_grad():
            for first in range(0, len(self.data.images), 8):
                pixels = _pixels(self.data.images[first:first + 8, :, :width])
                chunks.append(vae.encode(pixels).latent_dist.mean)
        raw = torch.cat(chunks)
        self.scaling = float(1.0 / raw.std())
        self.latents = raw * self.scaling
        torch.save({"latents": self.latents, "scaling": torch.tensor(self.scaling)}, self.latent_file)
        self.state = _State("unet", 0, self.state.losses)
        self.save_checkpoint()

    # -- 4. diffusion ---------------------------------------------------------------------
    def train_diffusion(self) -> None:
        if self.state.phase != "unet":
            return
        unet, text = self.parts["unet"].train(), self.parts["text_encoder"].train()
        for step in self._steps("unet", self.config.unet_steps, "training UNet"):
            loss = self.diffusion_loss(unet, text, step)
            self._optimise(self.unet_opt, loss, step, self.config.unet_steps, self.config.unet_lr)
            self._update_ema(step)
            self._record("unet", step, loss.item())
        self.state = _State("done", len(self.state.losses["unet"]), self.state.losses)  # step: UNet steps trained
        self.save_checkpoint()

    def diffusion_loss(self, unet: Any, text: Any, step: int) -> Any:
        import torch

        latents, captions = self._latent_batch(step)
        gen = torch.Generator().manual_seed(_seed_int(self.config.seed, "noise", step))
        noise = torch.randn(latents.shape, generator=gen)
        t = torch.randint(0, self.noise_schedule.config.num_train_timesteps, (len(latents),), generator=gen)
        noisy = self.noise_schedule.add_noise(latents, noise, t)
        predicted = unet(noisy, t, encoder_hidden_states=self.embed(text, captions)).sample
        target = self.noise_schedule.get_velocity(latents, noise, t) if self.config.zero_snr else noise
        return torch.nn.functional.mse_loss(predicted, target)

    def embed(self, text_encoder: Any, captions: list[str]) -> Any:
        tokenizer = self.parts["tokenizer"]
        ids = tokenizer(captions, padding="max_length", truncation=True, return_tensors="pt",
                        max_length=tokenizer.model_max_length).input_ids
        return text_encoder(ids)[0]

    def _latent_batch(self, step: int) -> tuple[Any, list[str]]:
        from bridge.mini.vocabulary import sampled_caption

        rng = _rng(self.config.seed, "unet", step)
        crop, span = self.config.latent_crop, self.latents.shape[-1]
        picks, captions = [], []
        for _ in range(self.config.unet_batch):
            i, x = rng.randrange(len(self.latents)), rng.randrange(span - crop + 1)
            picks.append(self.latents[i, :, :, x:x + crop])
            captions.append(sampled_caption(self.data.names[i], self.data.specs[i], rng))
        import torch

        return torch.stack(picks), captions

    def _update_ema(self, step: int) -> None:
        import torch

        decay = min(self.config.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, average in self.ema.items():
                for avg, live in zip(average.parameters(), self.parts[name].parameters()):
                    avg.lerp_(live, 1.0 - decay)

    # -- shared ----------------------------------------------------------------------------
    def _steps(self, phase: str, total: int, desc: str) -> Any:
        from tqdm.auto import tqdm

        self.bar = tqdm(range(self.state.step, total), initial=self.state.step, total=total, desc=desc)
        return self.bar

    def _optimise(self, optimizer: Any, loss: Any, step: int, total: int, peak: float) -> None:
        import math

        import torch

        warm = min(1.0, (step + 1) / 50)
        lr = peak * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / max(1, total))))
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
        optimizer.step()

    def _record(self, phase: str, step: int, loss: float) -> None:
        self.state.losses[phase].append(round(loss, 5))
        self.state.step = step + 1
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.save_checkpoint()
                self.bar.close()
                raise Stopped(f"stopped at {phase} step {self.state.step}")
        recent = self.state.losses[phase][-50:]
        self.bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
        if self.state.step % self.config.checkpoint_every == 0:
            self.save_checkpoint()

    # -- 5. save ---------------------------------------------------------------------------
    def save(self, seconds: float) -> Path:
        from bridge.mini.architecture import MODEL_NAME, save_model
        from bridge.mini.vocabulary import build_tokenizer

        vae = self.parts["vae"].eval()
        vae.register_to_config(scaling_factor=self.scaling)
        modules = {"unet": self.ema["unet"], "text_encoder": self.ema["text_encoder"], "vae": vae}
        # weights stored in fp16 (half the size; the loader casts to the run's dtype)
        parts = dict(self.parts, **{name: copy.deepcopy(m).half() for name, m in modules.items()})
        parts["tokenizer"] = build_tokenizer()  # a fresh one: a used fast tokenizer saves its padding state
        folder = save_model(parts, self.config.out, sampling_schedule(self.config.zero_snr))
        record = {"model": MODEL_NAME, "phase": self.state.phase, "step": self.state.step, "config": {k: str(v) if isinstance(v, Path) else v
                                                 for k, v in asdict(self.config).items()},
                  "scaling_factor": self.scaling, "seconds_this_run": round(seconds, 1),
                  "final_loss": {k: float(np.mean(v[-50:])) if v else None for k, v in self.state.losses.items()}}
        (folder / "training.json").write_text(json.dumps(record, indent=2) + "\n")
        return folder


#: Scheduler settings of the zero-terminal-SNR objective (training and sampling).
ZERO_SNR: dict[str, Any] = {"prediction_type": "v_prediction", "rescale_betas_zero_snr": True}


def noise_schedule(zero_snr: bool) -> Any:
    """The training noise schedule: SD's (epsilon prediction), or with ``zero_snr`` SD's betas
    rescaled to zero terminal SNR with velocity prediction (Lin et al. 2024, "Common diffusion
    noise schedules and sample steps are flawed"). SD's last timestep keeps 7 % of the signal,
    so a model trained on it reads a clip's overall level off that leftover, which pure noise at
    sampling lacks: its levels regress to the data's mean. At zero terminal SNR the level has to
    come from the prompt."""
    from diffusers import DDPMScheduler

    from bridge.engine.tiny import SD_SCHEDULER_CONFIG

    return DDPMScheduler.from_config(SD_SCHEDULER_CONFIG, **(ZERO_SNR if zero_snr else {}))


def sampling_schedule(zero_snr: bool) -> dict[str, Any]:
    """Scheduler settings saved with the model: none beyond SD's, or with ``zero_snr`` the
    objective's and trailing timestep spacing (sampling starts at the last, pure-noise step)."""
    return dict(ZERO_SNR, timestep_spacing="trailing") if zero_snr else {}


def _pixels(rows: np.ndarray) -> Any:
    """``(n, 3, H, W)`` float32 in [-1, 1] of ``(n, H, W)`` grey levels."""
    import torch

    grey = torch.from_numpy(rows.astype(np.float32) / 127.5 - 1.0)[:, None]
    return grey.expand(-1, 3, -1, -1).contiguous()


def _seed_int(seed: int, phase: str, step: int) -> int:
    return (seed * 1_000_003 + sum(map(ord, phase)) * 10_007 + step) % (2**63)


def _rng(seed: int, phase: str, step: int) -> random.Random:
    return random.Random(_seed_int(seed, phase, step))
