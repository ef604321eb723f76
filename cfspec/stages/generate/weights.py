"""Loading a Stable Diffusion model (tiny, a local folder or a hub id) and making schedulers."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

TINY = "tiny"
RANDOM_SD15 = "random-sd15"  # the SD 1.5 architecture with random weights (benchmarks)

SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler-a": "EulerAncestralDiscreteScheduler",
    "dpm": "DPMSolverMultistepScheduler",
    "ddpm": "DDPMScheduler",
}


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says what to do."""


@dataclass
class Components:
    """The parts of a Stable Diffusion 1.x/2.x pipeline the engine drives."""

    name: str
    tokenizer: Any
    text_encoder: Any
    unet: Any
    vae: Any
    scheduler: Any

    @property
    def vae_scale_factor(self) -> int:
        return int(2 ** (len(self.vae.config.block_out_channels) - 1))

    @property
    def default_size(self) -> int:
        return int(self.unet.config.sample_size) * self.vae_scale_factor


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`auto`: fp16 on CUDA, fp32 elsewhere (CPU half precision is slow and not always there)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = (dtype or "auto").lower()
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    table = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
             "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if name not in table:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto, fp32, fp16 or bf16")
    return table[name]


def load_components(model: str, device: torch.device, dtype: torch.dtype) -> Components:
    """`tiny`, `random-sd15`, a local pipeline folder, or a hub id (needs the hub or its cache)."""
    if model == TINY:
        from cfspec.stages.generate.tiny import tiny_components

        parts = tiny_components()
    elif model == RANDOM_SD15:
        parts = random_sd15_components()
    else:
        parts = _from_pretrained(model, dtype)
    comps = Components(name=model, **parts)
    for module in (comps.text_encoder, comps.unet, comps.vae):
        if module.dtype != dtype:  # casting an fp32 model to fp32 only makes diffusers warn
            module.to(dtype=dtype)
        module.to(device=device)
        module.eval().requires_grad_(False)
    return comps


def _from_pretrained(model: str, dtype: torch.dtype) -> dict[str, Any]:
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as dlogging

    dlogging.disable_progress_bar()  # our bar is the only one
    local = Path(model).expanduser()
    if local.exists() and not (local / "model_index.json").is_file():
        raise ModelLoadError(f"{model}: not a diffusers pipeline folder (no model_index.json)")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        with warnings.catch_warnings():  # newer diffusers prefer `dtype`; older know only this
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = StableDiffusionPipeline.from_pretrained(
                str(local) if local.exists() else model,
                torch_dtype=dtype,
                safety_checker=None,
                requires_safety_checker=False,
            )
    except Exception as error:  # the hub client raises many kinds; all mean "not here"
        where = "the local folder" if local.exists() else "the hub"
        hint = (
            "HF_HUB_OFFLINE is set, so only the local cache is searched"
            if offline
            else "check the name and the network, or pass a local folder"
        )
        raise ModelLoadError(
            f"cannot load model {model!r} from {where}: {type(error).__name__}: {error} ({hint}; "
            "`--model tiny` needs no download)"
        ) from error
    return {
        "tokenizer": pipe.tokenizer,
        "text_encoder": pipe.text_encoder,
        "unet": pipe.unet,
        "vae": pipe.vae,
        "scheduler": pipe.scheduler,
    }


def random_sd15_components() -> dict[str, Any]:
    """Stable Diffusion 1.5's UNet, VAE and CLIP ViT-L/14 text encoder shapes, random weights
    (seeded), with the tiny tokenizer: its speed is SD 1.5's, its images are noise."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from cfspec.stages.generate.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=64,
            cross_attention_dim=768,
            attention_head_dim=8,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
        )
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=768,
                intermediate_size=3072,
                num_attention_heads=12,
                num_hidden_layers=12,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1,
    )
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "unet": unet, "vae": vae,
            "scheduler": scheduler}


def make_scheduler(name: str, base: Any) -> Any:
    """A fresh scheduler of kind `name`, configured like the model's own (so v-prediction,
    the beta schedule and the timestep spacing carry over)."""
    import diffusers

    key = name.lower()
    if key not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    cls = getattr(diffusers, SCHEDULERS[key])
    return cls.from_config(base.config)
