"""Which diffusers pipelines cfspec drives, told from a model's `model_index.json`.

Import-light (standard library only): `cfspec run`'s preflight and `cfspec doctor` use it
before anything heavy loads. Loading itself is `weights.load_components`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfspec.gpu.models import is_offline

# Pipeline class -> the architecture the engine drives.
SUPPORTED = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
}
SUPPORTED_TEXT = ("StableDiffusionPipeline (SD 1.x and 2.x, v-prediction included) and "
                  "StableDiffusionXLPipeline (the SDXL base model)")

# Pipelines people try, and why Prompt-to-Prompt as cfspec implements it does not apply.
_UNSUPPORTED_WHY = {
    "StableDiffusion3Pipeline": "Stable Diffusion 3: an MMDiT transformer with joint "
    "text-image attention, not a UNet with cross-attention layers",
    "FluxPipeline": "FLUX: a transformer with joint text-image attention and T5 tokens, not a "
    "UNet with cross-attention layers",
    "StableDiffusionXLImg2ImgPipeline": "an SDXL image-to-image pipeline (the refiner): "
    "cfspec renders from noise with the base model",
    "StableDiffusionImg2ImgPipeline": "an image-to-image pipeline: cfspec renders from noise",
    "StableDiffusionInpaintPipeline": "an inpainting pipeline (9-channel UNet)",
    "StableDiffusionXLInpaintPipeline": "an inpainting pipeline (9-channel UNet)",
    "PixArtAlphaPipeline": "PixArt-alpha: a DiT with T5 tokens",
    "PixArtSigmaPipeline": "PixArt-sigma: a DiT with T5 tokens",
    "StableCascadeCombinedPipeline": "Stable Cascade: a three-stage model",
    "KandinskyV22CombinedPipeline": "Kandinsky 2.2: image-embedding conditioned",
}


class UnsupportedPipeline(ValueError):
    """The model is a pipeline cfspec does not drive; `str()` is a diagnostic with notes."""


@dataclass(frozen=True)
class ModelIndex:
    """What `model_index.json` says: the pipeline class and its component classes."""

    source: str  # the file read
    pipeline: str  # "_class_name"
    components: dict[str, Any]

    @property
    def family(self) -> str | None:
        return SUPPORTED.get(self.pipeline)


def index_file(model: str, download: bool = True) -> Path | None:
    """model_index.json of a local folder, or of a hub id: from the local cache, downloaded
    first when online and `download`; None when there is none to read."""
    local = Path(model).expanduser()
    if local.exists():
        path = local / "model_index.json"
        return path if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
    except ImportError:
        return None
    try:
        if not download or is_offline():
            found = try_to_load_from_cache(model, "model_index.json")
            return Path(found) if isinstance(found, str) else None
        return Path(hf_hub_download(model, "model_index.json"))
    except Exception:  # the hub client raises many kinds; all mean "not here"
        return None


def read_index(path: Path) -> ModelIndex:
    """Parse model_index.json; ValueError with the file's name when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable model_index.json ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("_class_name"), str):
        raise ValueError(f"{path}: model_index.json names no pipeline class (`_class_name`)")
    components = {k: v for k, v in data.items() if not k.startswith("_")}
    return ModelIndex(str(path), data["_class_name"], components)


def check_supported(model: str, index: ModelIndex) -> str:
    """The family ("sd" or "sdxl") of a supported pipeline; UnsupportedPipeline otherwise."""
    family = index.family
    if family is not None:
        return family
    why = _UNSUPPORTED_WHY.get(index.pipeline)
    what = f"{index.pipeline} ({why})" if why else index.pipeline
    raise UnsupportedPipeline(
        f"cannot drive {model}: its model_index.json names {what}\n"
        f"  = note: cfspec's Prompt-to-Prompt drives {SUPPORTED_TEXT}\n"
        "  = help: pick a model of those (e.g. stabilityai/stable-diffusion-xl-base-1.0), or "
        "`--model tiny-sdxl` to try without a download"
    )
