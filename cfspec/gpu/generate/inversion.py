"""Real photos as factual images: DDIM inversion, then the unconditional context per step.

Three methods (`--inversion`), each giving the latents x_T to start the edit's denoising from
and the unconditional context of every denoising step:

* `ddim`: DDIM inversion alone (the published `ddim_inversion`): x_0 (the photo's latents) to
  x_T with the conditional prediction; the empty prompt stays the unconditional context. With
  guidance above 1 the reconstruction drifts from the photo: the baseline.
* `null-text`: null-text inversion (Mokady et al., CVPR 2023; google/prompt-to-prompt's
  `null_text_w_ptp.ipynb`): after DDIM inversion, for each denoising step i the unconditional
  embedding is optimised (Adam, lr 1e-2 * (1 - i / 100), at most 10 inner steps, stopping early
  once the loss is below 1e-5 + i * 2e-5) so that the guided DDIM step from the current latents
  lands on the inverted trajectory; step i starts from step i - 1's result.
* `negative-prompt`: negative-prompt inversion (Miyake et al. 2023): the conditional embedding
  itself as every step's unconditional context, so that classifier-free guidance gives the
  conditional prediction whatever the scale and the denoising retraces the inversion; no
  optimisation, the cost of DDIM inversion.

Batched: every photo of a batch is inverted in one UNet batch. The null-text optimisation keeps
one embedding per photo in one tensor under one Adam: the loss is the sum of the photos' own
mean squared errors, so each photo's gradient is its own loss's, and Adam works element-wise,
so each photo follows exactly the steps a separate optimiser would take; a photo that stopped
early is held where it stopped while the others go on.

Photos are loaded as the notebook's `load_512` does (centre crop to the aspect ratio, PIL's
default resize, here to the model's size rather than 512) and encoded with the VAE's mean,
scaled by its `scaling_factor` as the pipeline scales latents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cfspec.gpu.models import INVERSION_METHODS, NULL_TEXT_INNER_STEPS

LEARNING_RATE = 1e-2  # the notebook's Adam lr at step 0, falling by 1% per step
INNER_STEPS = NULL_TEXT_INNER_STEPS  # the notebook's `num_inner_steps`
EARLY_STOP = 1e-5  # the notebook's `early_stop_epsilon` ...
EARLY_STOP_PER_STEP = 2e-5  # ... raised by this much per denoising step


@dataclass(frozen=True)
class InversionSettings:
    method: str  # one of INVERSION_METHODS
    steps: int  # DDIM steps: the edit's own, since it retraces the inverted trajectory
    guidance: float  # the edit's classifier-free guidance (null-text optimises under it)
    inner_steps: int = INNER_STEPS
    epsilon: float = EARLY_STOP

    def __post_init__(self) -> None:
        if self.method not in INVERSION_METHODS:
            raise ValueError(f"unknown inversion {self.method!r}; choose one of "
                             f"{', '.join(INVERSION_METHODS)}")


@dataclass
class Inverted:
    """A batch of inverted photos: `start` (B, C, h, w) is x_T, `uncond` (steps, B, 77, D) the
    unconditional context of each denoising step, `trajectory` the DDIM inversion's latents
    x_0 .. x_T (steps + 1 of them, each (B, C, h, w))."""

    start: torch.Tensor
    uncond: torch.Tensor
    trajectory: list[torch.Tensor]


def load_photo(path: str | Path, height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8: the photo's centre cropped to the aspect ratio, resized with
    PIL's default filter (the notebook's `load_512` for a square size and no offsets)."""
    from PIL import Image

    with Image.open(path) as opened:
        image = np.array(opened.convert("RGB"))
    h, w = image.shape[:2]
    # The largest centred window of the target's aspect ratio: the notebook's square crop.
    crop_h, crop_w = min(h, w * height // width), min(w, h * width // height)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    image = image[top:top + crop_h, left:left + crop_w]
    return np.array(Image.fromarray(image).resize((width, height)))


@torch.no_grad()
def encode_photos(vae: Any, photos: Sequence[np.ndarray], device: torch.device,
                  dtype: torch.dtype) -> torch.Tensor:
    """(B, C, h, w) latents in `dtype`: pixels to [-1, 1], the VAE posterior's mean, times the
    VAE's scaling factor (how the pipeline's latents are scaled)."""
    pixels = torch.stack([torch.from_numpy(np.ascontiguousarray(p)).float() / 127.5 - 1
                          for p in photos]).permute(0, 3, 1, 2)
    pixels = pixels.to(device, vae.dtype)
    latents = vae.encode(pixels).latent_dist.mean * float(vae.config.scaling_factor)
    return latents.to(dtype)  # type: ignore[no-any-return]


class _Ddim:
    """The deterministic DDIM update between two timesteps of a schedule, both ways (the
    notebook's `prev_step` and `next_step`; the former is diffusers' DDIM step with eta 0)."""

    def __init__(self, scheduler: Any) -> None:
        self.alphas = scheduler.alphas_cumprod
        self.final = scheduler.final_alpha_cumprod
        self.stride = scheduler.config.num_train_timesteps // scheduler.num_inference_steps

    def _alpha(self, t: int) -> Any:
        return self.alphas[t] if t >= 0 else self.final

    @staticmethod
    def _move(eps: torch.Tensor, sample: torch.Tensor, a_from: Any, a_to: Any) -> torch.Tensor:
        x0 = (sample - (1 - a_from) ** 0.5 * eps) / a_from ** 0.5
        return a_to ** 0.5 * x0 + (1 - a_to) ** 0.5 * eps  # type: ignore[no-any-return]

    def prev(self, eps: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        return self._move(eps, sample, self.alphas[t], self._alpha(t - self.stride))

    def next(self, eps: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        source = min(t - self.stride, 999)
        return self._move(eps, sample, self._alpha(source), self.alphas[t])


def invert(unet: Any, scheduler: Any, latents: torch.Tensor, cond: torch.Tensor,
           uncond: torch.Tensor, settings: InversionSettings,
           on_step: Callable[[int], None] | None = None) -> Inverted:
    """Invert a batch: `latents` (B, C, h, w) the photos' latents, `cond` (B, 77, D) each
    photo's factual prompt, `uncond` (1, 77, D) the empty prompt's context. `scheduler` is a
    DDIM scheduler (its timesteps are set here). `on_step(i)` is called after each denoising
    step's optimisation (progress)."""
    if getattr(scheduler.config, "prediction_type", "epsilon") != "epsilon":
        raise ValueError("inversion needs an epsilon-prediction model (this one predicts "
                         f"{scheduler.config.prediction_type})")
    scheduler.set_timesteps(settings.steps)
    timesteps = [int(t) for t in scheduler.timesteps]
    ddim = _Ddim(scheduler)
    trajectory = ddim_inversion(unet, ddim, timesteps, latents, cond)
    rows = latents.shape[0]
    if settings.method == "ddim":
        nulls = uncond.expand(len(timesteps), rows, -1, -1)
    elif settings.method == "negative-prompt":
        nulls = cond.unsqueeze(0).expand(len(timesteps), -1, -1, -1)
    else:
        nulls = null_text_optimization(unet, ddim, timesteps, trajectory, cond, uncond,
                                       settings, on_step)
    return Inverted(start=trajectory[-1], uncond=nulls.contiguous(), trajectory=trajectory)


@torch.no_grad()
def ddim_inversion(unet: Any, ddim: _Ddim, timesteps: Sequence[int], latents: torch.Tensor,
                   cond: torch.Tensor) -> list[torch.Tensor]:
    """x_0 .. x_T: each DDIM step run backwards with the conditional prediction (the
    notebook's `ddim_loop`), every photo in one UNet batch."""
    trajectory = [latents]
    latent = latents.clone()
    for t in reversed(timesteps):
        eps = unet(latent, t, encoder_hidden_states=cond).sample
        latent = ddim.next(eps, t, latent)
        trajectory.append(latent)
    return trajectory


def null_text_optimization(unet: Any, ddim: _Ddim, timesteps: Sequence[int],
                           trajectory: Sequence[torch.Tensor], cond: torch.Tensor,
                           uncond: torch.Tensor, settings: InversionSettings,
                           on_step: Callable[[int], None] | None = None) -> torch.Tensor:
    """(steps, B, 77, D) fp32: each denoising step's optimised unconditional embedding, per
    photo (the notebook's `null_optimization`, batched across photos)."""
    rows = cond.shape[0]
    dtype = cond.dtype
    guidance = settings.guidance
    null = uncond.float().expand(rows, -1, -1).clone()
    latent = trajectory[-1]
    found: list[torch.Tensor] = []
    for i, t in enumerate(timesteps):
        null = null.detach().requires_grad_(True)
        optimizer = torch.optim.Adam([null], lr=LEARNING_RATE * (1.0 - i / 100.0))
        target = trajectory[len(trajectory) - i - 2].float()
        with torch.no_grad():
            eps_cond = unet(latent, t, encoder_hidden_states=cond).sample
        active = torch.ones(rows, dtype=torch.bool, device=latent.device)
        threshold = settings.epsilon + i * EARLY_STOP_PER_STEP
        for _ in range(settings.inner_steps):
            with torch.enable_grad():
                eps_uncond = unet(latent, t, encoder_hidden_states=null.to(dtype)).sample
                eps = eps_uncond + guidance * (eps_cond - eps_uncond)
                rebuilt = ddim.prev(eps, t, latent).float()
                losses = ((rebuilt - target) ** 2).mean(dim=(1, 2, 3))
                optimizer.zero_grad()
                losses[active].sum().backward()
            stopped = ~active
            held = null.detach()[stopped].clone()
            optimizer.step()
            with torch.no_grad():
                null[stopped] = held  # Adam's momentum must not move a photo that stopped
            # The notebook tests the loss before this update, and keeps the update.
            active &= losses.detach() >= threshold
            if not bool(active.any()):
                break
        null = null.detach()
        found.append(null.clone())
        with torch.no_grad():
            eps_uncond = unet(latent, t, encoder_hidden_states=null.to(dtype)).sample
            latent = ddim.prev(eps_uncond + guidance * (eps_cond - eps_uncond), t, latent)
        if on_step is not None:
            on_step(i)
    return torch.stack(found)
