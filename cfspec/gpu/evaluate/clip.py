"""Our own CLIP wrapper over transformers: unit-norm image and text embeddings, batched.

`ClipScorer.load(spec, device)` takes

* `tiny`: a small random `CLIPModel` built in code (2-layer text and vision towers, 32 px images,
  a byte-level BPE tokenizer written to a temp folder from a small vocabulary). No download,
  builds in well under a second, identical in every process (fixed seed). Its embeddings mean
  nothing; it exists so that tests and CPU benchmarks exercise the real code path.
* `random-vit-l-14`: the full ViT-L/14 architecture of `openai/clip-vit-large-patch14` with random
  weights (seeded) and the tiny tokenizer: its speed is the real model's, its scores are noise.
* a local folder holding a saved CLIP model (`config.json`, weights, tokenizer and
  `preprocessor_config.json`), or a hub id such as `DEFAULT_CLIP`
  (`openai/clip-vit-large-patch14`), through `CLIPModel` / `CLIPTokenizer` / the CLIP image
  processor's `from_pretrained`. A hub id needs the hub or its local cache
  (`HF_HUB_OFFLINE=1` searches only the cache); failures raise `ClipLoadError` saying so.

Why not torchmetrics' `CLIPScore`: with transformers 5 it fails (`get_image_features` now returns
a `BaseModelOutputWithPooling`, on which torchmetrics 1.9 calls `.norm()`: AttributeError), and
by name it only loads models whose name contains "openai" (or its two other listed families),
so not a local folder; it also re-embeds the texts at every call and returns only a score
(100 x the batch's mean cosine, clamped at 0 as a mean; cfspec clamps each image, as
Hessel et al.'s CLIP-S does), while the evaluation needs the raw embeddings (directional and
image-image similarity).

Images: uint8 tensors, (N, H, W, 3) or (N, 3, H, W) (one image without N also works), are
resized, cropped and normalized with torch ops on the scorer's device, batched: the same steps
as CLIP's image processor (shortest edge -> model size with antialiased bicubic, centre crop,
rescale to [0, 1], normalize with CLIP's mean and std), within rounding of PIL's resampler. PIL
images go through the image processor itself. Texts longer than the model's 77 tokens are
truncated (CLIP cannot see past them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
TINY = "tiny"
RANDOM_VIT_L14 = "random-vit-l-14"
TINY_CLIP_SEED = 20240918
MAX_LENGTH = 77
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

class ClipLoadError(RuntimeError):
    """The CLIP model could not be loaded; the message says what to do."""


def _tiny_tokenizer() -> Any:
    # The same tiny CLIP tokenizer the embedded diffusion model uses (cfspec.gpu.generate.tiny).
    from cfspec.gpu.generate.tiny import tiny_tokenizer

    return tiny_tokenizer()


def _image_processor_class() -> Any:
    """The PIL-backed CLIP image processor: `CLIPImageProcessorPil` in transformers 5 (where
    `CLIPImageProcessor` needs torchvision), `CLIPImageProcessor` before it (PIL there)."""
    try:
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil
    except ImportError:  # transformers < 5
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor


def _image_processor(size: int) -> Any:
    return _image_processor_class()(
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
        image_mean=list(OPENAI_CLIP_MEAN),
        image_std=list(OPENAI_CLIP_STD),
    )


def tiny_clip_config(vocab_size: int, eos_token_id: int, bos_token_id: int) -> Any:
    """2-layer, 32-wide text and vision towers, 32 px images in 4 px patches, 16-d embeddings."""
    from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig

    text = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        projection_dim=16,
        eos_token_id=eos_token_id,
        bos_token_id=bos_token_id,
        pad_token_id=eos_token_id,
    )
    vision = CLIPVisionConfig(
        image_size=32,
        patch_size=4,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=16,
    )
    return CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16
    )


def vit_l14_config() -> Any:
    """`openai/clip-vit-large-patch14`'s architecture (224 px, 14 px patches, 24-layer vision
    tower of width 1024, 12-layer text tower of width 768, 768-d embeddings)."""
    from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig

    text = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=MAX_LENGTH,
        projection_dim=768,
        hidden_act="quick_gelu",
    )
    vision = CLIPVisionConfig(
        image_size=224,
        patch_size=14,
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        projection_dim=768,
        hidden_act="quick_gelu",
    )
    return CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=768
    )


def _random_clip(config: Any, seed: int) -> Any:
    from transformers import CLIPModel

    # fork_rng: building the model must not move the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIPModel(config)


def _is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _from_pretrained(spec: str) -> tuple[Any, Any, Any]:
    from transformers import CLIPModel, CLIPTokenizer
    from transformers.utils import logging as tlogging

    tlogging.disable_progress_bar()  # the caller's progress bar is the only one
    local = Path(spec).expanduser()
    is_local = local.exists()
    if is_local and not (local / "config.json").is_file():
        raise ClipLoadError(f"{spec}: not a saved CLIP model folder (no config.json)")
    source = str(local) if is_local else spec
    kwargs: dict[str, Any] = {"local_files_only": True} if is_local else {}
    try:
        model = CLIPModel.from_pretrained(source, **kwargs)
        tokenizer = CLIPTokenizer.from_pretrained(source, **kwargs)
        processor = _image_processor_class().from_pretrained(source, **kwargs)
    except Exception as error:  # the hub client raises many kinds; all mean "not here"
        where = "the local folder" if is_local else "the hub"
        hint = (
            "HF_HUB_OFFLINE is set, so only the local cache is searched: download it once "
            f"with network (`hf download {spec}`) or pass a local folder"
            if _is_offline() and not is_local
            else "check the name and the network, or pass a local folder"
        )
        raise ClipLoadError(
            f"cannot load CLIP model {spec!r} from {where}: {type(error).__name__}: {error} "
            f"({hint}; `tiny` needs no download)"
        ) from error
    return model, tokenizer, processor


def _as_pil_list(images: Any) -> list[Image.Image] | None:
    """`images` as a list of PIL images, or None when it is not PIL."""
    from PIL import Image

    if isinstance(images, Image.Image):
        return [images]
    if isinstance(images, (list, tuple)) and images and all(
        isinstance(im, Image.Image) for im in images
    ):
        return list(images)
    return None


def to_nchw_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W), (N, H, W, 3), (3, H, W) or (H, W, 3) uint8 -> (N, 3, H, W) uint8.
    Channel-first is chosen when dimension 1 (of the 4-d form) has 3 entries."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 image tensor, got {images.dtype}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(f"expected (N, H, W, 3) or (N, 3, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] == 3:
        return images
    if images.shape[-1] == 3:
        return images.permute(0, 3, 1, 2)
    raise ValueError(f"expected 3 colour channels, got shape {tuple(images.shape)}")


@dataclass
class ClipScorer:
    """A CLIP model, its tokenizer and image processor, on one device, in eval mode.

    `embed_images` and `embed_texts` return float32 (N, D) tensors of unit L2 norm, so a dot
    product is a cosine similarity."""

    name: str
    model: Any
    tokenizer: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    image_size: int
    crop_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def load(
        cls,
        spec: str = TINY,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ) -> ClipScorer:
        """`tiny`, `random-vit-l-14`, a local folder or a hub id (default for real use:
        `DEFAULT_CLIP`). `dtype` defaults to fp16 on CUDA and fp32 elsewhere."""
        device = torch.device(device)
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32
        if spec == TINY:
            tokenizer = _tiny_tokenizer()
            vocab = tokenizer.get_vocab()
            config = tiny_clip_config(
                len(vocab), vocab["<|endoftext|>"], vocab["<|startoftext|>"]
            )
            model = _random_clip(config, TINY_CLIP_SEED)
            processor = _image_processor(config.vision_config.image_size)
        elif spec == RANDOM_VIT_L14:
            tokenizer = _tiny_tokenizer()
            vocab = tokenizer.get_vocab()
            config = vit_l14_config()
            # the tiny tokenizer's ids: the text tower pools at the first end-of-text token
            config.text_config.eos_token_id = vocab["<|endoftext|>"]
            config.text_config.bos_token_id = vocab["<|startoftext|>"]
            config.text_config.pad_token_id = vocab["<|endoftext|>"]
            model = _random_clip(config, TINY_CLIP_SEED)
            processor = _image_processor(224)
        else:
            model, tokenizer, processor = _from_pretrained(spec)
        return cls.from_parts(spec, model, tokenizer, processor, device, dtype)

    @classmethod
    def from_parts(
        cls,
        name: str,
        model: Any,
        tokenizer: Any,
        processor: Any,
        device: torch.device,
        dtype: torch.dtype,
    ) -> ClipScorer:
        """Wrap an already built model (moved to `device`/`dtype`, eval mode, no grad)."""
        model.to(device=device, dtype=dtype)
        model.eval().requires_grad_(False)
        size = processor.size
        shortest = int(size.get("shortest_edge") or min(size["height"], size["width"]))
        crop = processor.crop_size
        crop_size = int(min(crop["height"], crop["width"])) if crop else shortest
        mean = tuple(float(v) for v in (processor.image_mean or OPENAI_CLIP_MEAN))
        std = tuple(float(v) for v in (processor.image_std or OPENAI_CLIP_STD))
        return cls(
            name=name,
            model=model,
            tokenizer=tokenizer,
            processor=processor,
            device=device,
            dtype=dtype,
            image_size=shortest,
            crop_size=crop_size,
            mean=(mean[0], mean[1], mean[2]),
            std=(std[0], std[1], std[2]),
        )

    # --- images ------------------------------------------------------------------------------

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> normalized pixel values (N, 3, S, S) on the device, in the model's
        dtype: CLIP's image processor steps, as batched torch ops."""
        x = to_nchw_uint8(images).to(self.device, non_blocking=True).float()
        height, width = int(x.shape[-2]), int(x.shape[-1])
        short, long = (height, width) if height <= width else (width, height)
        new_short, new_long = self.image_size, int(self.image_size * long / short)
        new_size = (new_short, new_long) if height <= width else (new_long, new_short)
        if new_size != (height, width):
            x = F.interpolate(x, size=new_size, mode="bicubic", align_corners=False, antialias=True)
            # PIL's resampler clamps to the uint8 range and rounds; do the same.
            x = x.clamp_(0.0, 255.0).round_()
        top = (x.shape[-2] - self.crop_size) // 2
        left = (x.shape[-1] - self.crop_size) // 2
        if top < 0 or left < 0:  # only a processor config with crop > resize size does this
            raise ValueError(
                f"crop size {self.crop_size} exceeds the resized image {tuple(x.shape[-2:])}"
            )
        x = x[..., top : top + self.crop_size, left : left + self.crop_size]
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1) * 255.0
        return ((x - mean) / std).to(self.dtype)

    def _pixel_values_from_pil(self, images: Sequence[Image.Image]) -> torch.Tensor:
        out = self.processor(images=list(images), return_tensors="pt")
        return out["pixel_values"].to(self.device, dtype=self.dtype)

    @torch.inference_mode()
    def embed_images(
        self, images: torch.Tensor | Image.Image | Sequence[Image.Image], batch_size: int = 64,
        fixed_shape: bool = False,
    ) -> torch.Tensor:
        """Unit-norm image embeddings (N, D), float32. uint8 tensors are preprocessed with torch
        ops (batched, on the device); PIL images go through the CLIP image processor.

        `fixed_shape`: every model call gets exactly `batch_size` images (a short chunk is
        padded with black ones, whose embeddings are dropped). Matrix products can round a row
        differently in batches of another size; with one shape, an image's embedding does not
        depend on which other images share its batch (evaluate --shard relies on it)."""
        pil = _as_pil_list(images)
        if pil is None and not isinstance(images, torch.Tensor):
            raise TypeError("expected a uint8 tensor, a PIL image or a list of PIL images")
        total = len(pil) if pil is not None else to_nchw_uint8(images).shape[0]  # type: ignore[arg-type]
        chunks: list[torch.Tensor] = []
        for start in range(0, total, batch_size):
            if pil is not None:
                pixels = self._pixel_values_from_pil(pil[start : start + batch_size])
            else:
                batch = to_nchw_uint8(images)[start : start + batch_size]  # type: ignore[arg-type]
                pixels = self.preprocess(batch)
            count = pixels.shape[0]
            if fixed_shape and count < batch_size:
                pad = pixels.new_zeros((batch_size - count, *pixels.shape[1:]))
                pixels = torch.cat([pixels, pad])
            chunks.append(self._image_features(pixels)[:count])
        if not chunks:
            return torch.empty(0, self.embedding_size, device=self.device)
        return torch.cat(chunks)

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.model.get_image_features(pixel_values=pixels)
        feats = out if isinstance(out, torch.Tensor) else out.pooler_output  # transformers 5
        return F.normalize(feats.float(), dim=-1)

    # --- texts -------------------------------------------------------------------------------

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str], batch_size: int = 256,
                    fixed_shape: bool = False) -> torch.Tensor:
        """Unit-norm text embeddings (N, D), float32; texts past 77 tokens are truncated.
        `fixed_shape`: every model call gets `batch_size` texts of 77 tokens (padded), so a
        text's embedding does not depend on the other texts of its batch (see embed_images)."""
        if isinstance(texts, str):
            texts = [texts]
        chunks: list[torch.Tensor] = []
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            count = len(chunk)
            if fixed_shape:
                chunk += [""] * (batch_size - count)
            tokens = self.tokenizer(
                chunk,
                padding="max_length" if fixed_shape else True,
                truncation=True,
                max_length=MAX_LENGTH,
                return_tensors="pt",
            )
            out = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device),
                attention_mask=tokens["attention_mask"].to(self.device),
            )
            feats = out if isinstance(out, torch.Tensor) else out.pooler_output
            chunks.append(F.normalize(feats.float(), dim=-1)[:count])
        if not chunks:
            return torch.empty(0, self.embedding_size, device=self.device)
        return torch.cat(chunks)

    @property
    def embedding_size(self) -> int:
        return int(self.model.config.projection_dim)
