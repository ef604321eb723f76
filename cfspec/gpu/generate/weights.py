"""Loading a Stable Diffusion model (tiny, a local folder or a hub id) and making schedulers."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

TINY = "tiny"
TINY_SDXL = "tiny-sdxl"  # SDXL's layout (two text encoders, time ids), tiny and random
RANDOM_SD15 = "random-sd15"  # the SD 1.5 architecture with random weights (benchmarks)
RANDOM_SDXL = "random-sdxl"  # the SDXL base architecture with random weights (benchmarks)
BUILT_IN = (TINY, TINY_SDXL, RANDOM_SD15, RANDOM_SDXL)  # = models.BUILT_IN_MODELS

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
    """The parts of a Stable Diffusion 1.x/2.x or SDXL pipeline the engine drives.

    SDXL has a second tokenizer and text encoder (`*_2`): the UNet reads both encoders'
    penultimate hidden states side by side, plus the second one's pooled embedding and the
    size/crop "time ids". `force_zeros_for_empty_prompt` is the pipeline's setting: the
    unconditional branch then reads zeros instead of the empty prompt's embeddings."""

    name: str
    tokenizer: Any
    text_encoder: Any
    unet: Any
    vae: Any
    scheduler: Any
    tokenizer_2: Any = None
    text_encoder_2: Any = None
    force_zeros_for_empty_prompt: bool = False

    @property
    def is_xl(self) -> bool:
        return self.text_encoder_2 is not None

    @property
    def family(self) -> str:
        """`sdxl`, or `sd` (the one-encoder layout of SD 1.x and 2.x)."""
        return "sdxl" if self.is_xl else "sd"

    @property
    def prediction_type(self) -> str:
        return str(getattr(self.scheduler.config, "prediction_type", "epsilon"))

    @property
    def vae_scale_factor(self) -> int:
        return int(2 ** (len(self.vae.config.block_out_channels) - 1))

    @property
    def default_size(self) -> int:
        return int(self.unet.config.sample_size) * self.vae_scale_factor


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`auto`: fp16 on CUDA, fp32 elsewhere (`cfspec.gpu.device.dtype_name`, which plan shares
    without torch)."""
    from cfspec.gpu.device import dtype_name

    if isinstance(dtype, torch.dtype):
        return dtype
    found: torch.dtype = getattr(torch, dtype_name(dtype, device.type))
    return found


def load_components(model: str, device: torch.device, dtype: torch.dtype,
                    seed: int | None = None) -> Components:
    """`tiny`, `tiny-sdxl`, `random-sd15`, `random-sdxl`, a local pipeline folder, or a hub id
    (needs the hub or its cache). Which pipeline a folder or hub id holds is read from its
    model_index.json; one cfspec does not drive (SD3, FLUX, ...) is a ModelLoadError that
    says which are supported.

    In fp16 an SDXL VAE whose config asks for it (`force_upcast`) stays in fp32, as
    StableDiffusionXLPipeline upcasts it to decode: SDXL's VAE overflows in fp16."""
    if model == TINY:
        from cfspec.gpu.generate.tiny import tiny_components

        parts = tiny_components()
    elif model == TINY_SDXL:
        from cfspec.gpu.generate.tiny import tiny_sdxl_components

        parts = tiny_sdxl_components()
    elif model == RANDOM_SD15:
        parts = random_sd15_components()
    elif model == RANDOM_SDXL:
        parts = random_sdxl_components(device)
    else:
        parts = _from_pretrained(model, dtype)
    comps = Components(name=model, **parts)
    vae_dtype = dtype
    # As the pipelines do: SDXL's honours `force_upcast` (which AutoencoderKL defaults to
    # True), StableDiffusionPipeline decodes in the model's dtype.
    if dtype == torch.float16 and comps.is_xl and getattr(comps.vae.config, "force_upcast",
                                                          False):
        vae_dtype = torch.float32
    modules = [(comps.text_encoder, dtype), (comps.unet, dtype), (comps.vae, vae_dtype)]
    if comps.text_encoder_2 is not None:
        modules.append((comps.text_encoder_2, dtype))
    for module, wanted in modules:
        if module.dtype != wanted:
            # torch's own cast: diffusers' `ModelMixin.to` warns about modules to keep in fp32
            # on every cast, even when the model names none (SD's and SDXL's UNet and VAE).
            keep = getattr(module, "_keep_in_fp32_modules", None)
            if keep and wanted != torch.float32:
                module.to(dtype=wanted)  # let diffusers keep (and warn about) those modules
            else:
                torch.nn.Module.to(module, dtype=wanted)
        module.to(device=device)
        module.eval().requires_grad_(False)
    return comps


def _from_pretrained(model: str, dtype: torch.dtype) -> dict[str, Any]:
    from cfspec.gpu.generate.pipelines import (
        UnsupportedPipeline,
        check_supported,
        index_file,
        read_index,
    )
    from cfspec.gpu.models import looks_like_path, missing_path

    local = Path(model).expanduser()
    if not local.exists() and looks_like_path(model):
        raise ModelLoadError(missing_path("--model", model))
    if local.exists() and not (local / "model_index.json").is_file():
        raise ModelLoadError(f"{model}: not a diffusers pipeline folder (no model_index.json)")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    hint = (
        f"HF_HUB_OFFLINE is set, so only the local cache is searched: `hf download {model}` "
        "once where there is network"
        if offline
        else "check the name and the network, or pass a local folder"
    )
    where = "the local folder" if local.exists() else "the hub"
    found = index_file(model)
    if found is None:
        raise ModelLoadError(f"cannot load model {model!r} from {where}: no model_index.json "
                             f"found ({hint}; `--model tiny` runs a test with random weights)")
    try:
        family = check_supported(model, read_index(found))
    except (UnsupportedPipeline, ValueError) as error:
        raise ModelLoadError(str(error)) from None
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import logging as dlogging

    dlogging.disable_progress_bar()  # our bar is the only one
    extra: dict[str, Any] = {"safety_checker": None, "requires_safety_checker": False}
    cls: Any = StableDiffusionPipeline
    if family == "sdxl":
        cls = StableDiffusionXLPipeline
        extra = {"add_watermarker": False}  # the engine's images carry no watermark either
    try:
        with warnings.catch_warnings():  # newer diffusers prefer `dtype`; older know only this
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = cls.from_pretrained(str(local) if local.exists() else model,
                                       torch_dtype=dtype, **extra)
    except Exception as error:  # the hub client raises many kinds; all mean "not here"
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelLoadError(
            f"cannot load model {model!r} from {where}: {type(error).__name__}: {first} "
            f"({hint}; `--model tiny` runs a test with random weights)"
        ) from error
    parts = {
        "tokenizer": pipe.tokenizer,
        "text_encoder": pipe.text_encoder,
        "unet": pipe.unet,
        "vae": pipe.vae,
        "scheduler": pipe.scheduler,
    }
    if family == "sdxl":
        if pipe.text_encoder is None or pipe.tokenizer is None:
            raise ModelLoadError(f"{model}: an SDXL pipeline without its first text encoder "
                                 "(a refiner?): cfspec drives the SDXL base model")
        parts.update(tokenizer_2=pipe.tokenizer_2, text_encoder_2=pipe.text_encoder_2,
                     force_zeros_for_empty_prompt=bool(
                         pipe.config.get("force_zeros_for_empty_prompt", True)))
    return parts


def random_sd15_components() -> dict[str, Any]:
    """Stable Diffusion 1.5's UNet, VAE and CLIP ViT-L/14 text encoder shapes, random weights
    (seeded), with the tiny tokenizer: its speed is SD 1.5's, its images are noise."""
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from cfspec.gpu.generate.tiny import tiny_tokenizer

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
        vae = sd_vae(sample_size=512)
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


def random_sdxl_components(device: torch.device | None = None) -> dict[str, Any]:
    """The SDXL base architecture (UNet 2.6B with 1, 2 and 10 transformer layers per level,
    the 1024 px VAE, CLIP ViT-L and OpenCLIP bigG text encoders), random weights, with the
    tiny tokenizers: its cost is SDXL's, its images are noise. Built on `device` (fast on a
    GPU; on a CPU it takes minutes and about 14 GB)."""
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from cfspec.gpu.generate.tiny import SDXL_SCHEDULER, tiny_tokenizer

    tokenizer, tokenizer_2 = tiny_tokenizer(), tiny_tokenizer(pad_token="!")
    where = torch.device("cpu") if device is None else device
    forked = [where.index or 0] if where.type == "cuda" else []

    def clip(hidden: int, layers: int, heads: int, act: str, projection: int) -> Any:
        return CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
            num_attention_heads=heads, num_hidden_layers=layers, max_position_embeddings=77,
            hidden_act=act, projection_dim=projection, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)

    with torch.random.fork_rng(devices=forked), where:
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=128,
            block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,  # 6 time ids x 256 + bigG's 1280
            layers_per_block=2,
        )
        vae = sd_vae(sample_size=1024, scaling_factor=0.13025, force_upcast=True)
        text_encoder = CLIPTextModel(clip(768, 12, 12, "quick_gelu", 768))
        text_encoder_2 = CLIPTextModelWithProjection(clip(1280, 32, 20, "gelu", 1280))
    scheduler = EulerDiscreteScheduler.from_config(SDXL_SCHEDULER)
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "unet": unet, "vae": vae,
            "scheduler": scheduler, "tokenizer_2": tokenizer_2, "text_encoder_2": text_encoder_2,
            "force_zeros_for_empty_prompt": True}


def sd_vae(**size_and_scaling: Any) -> Any:
    """Stable Diffusion's VAE architecture (SD 1.x, 2.x and SDXL share it), random weights."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        **size_and_scaling,
    )
