"""The embedded `tiny` model: a small Stable Diffusion pipeline with random weights, built in code.

It needs no download and runs in seconds on a CPU, so `make demo` and the tests work on a fresh
machine. The layout follows diffusers' own pipeline tests (2-block UNet, 2-block VAE, small CLIP
text encoder), with a 5-layer text encoder and a CLIP byte-level BPE tokenizer whose vocabulary
and merges are generated from a fixed list of common words (everything else falls back to single
characters, which the byte-level alphabet always covers). Weights come from a fixed seed, so every
process and every run builds the very same model.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

TINY_SEED = 20240917
TINY_LATENT_CHANNELS = 4
MAX_LENGTH = 77
# SDXL base's scheduler_config.json: Euler, with the DDIM settings it also carries (so that
# `--scheduler ddim`, made from it, neither clips x0 nor sets alpha to one, as with SDXL).
SDXL_SCHEDULER = {
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "steps_offset": 1, "timestep_spacing": "leading", "interpolation_type": "linear",
    "use_karras_sigmas": False, "prediction_type": "epsilon", "num_train_timesteps": 1000,
    "clip_sample": False, "set_alpha_to_one": False, "skip_prk_steps": True,
    "sample_max_value": 1.0,
}

# Common caption words get whole-word tokens so that prompts stay far below 77 tokens.
_WORDS = """
a an the of on in at to with and or is are was were be has have that this it its his her their
its there some other two three four many few one very small large big little tall short old new
young long wet dry red blue green yellow white black brown orange pink purple gray grey dark
light bright shiny spotty wooden metal glass plastic man woman men women boy girl child kid
people person guy guys player baby dog dogs cat cats bird birds horse cow cows sheep bear
elephant giraffe zebra pigeon pigeons duck fish banana apple orange pear fruit cake pizza
sandwich plate bowl cup table chair bed couch window door wall floor room kitchen bathroom
mirror street road car bus truck train plane boat bike bicycle sign tree trees grass field
water sky snow beach park city building house box bat ball baseball football tennis umbrella
stand board cutting knife fork spoon food phone camera photo picture sitting standing walking
running eating holding playing looking riding lying flying wandering cutting digging out over
under top near next front behind around into from up down off side while lot flock pair cute
fluffy adorable polar walrus submerged body partially selfie teeth brushing taking office party
gathering coworkers nintendo wii lunges reaches back rests pile spotty ripe peel
""".split()


def bytes_to_unicode() -> list[str]:
    """CLIP's reversible byte -> printable character table, in table order."""
    from cfspec.lang.tokens import bytes_to_unicode as table

    return list(table().values())


@functools.cache
def tiny_vocab() -> tuple[dict[str, int], tuple[str, ...]]:
    """Byte symbols (bare and word-final), then byte-pair merges learned on the word list (most
    frequent pair first, ties by name) until every listed word is one token, then the two
    special tokens. Learning the merges, rather than chaining each word's letters, is what makes
    the tokenizer reproduce every listed word whole: encoding replays the same merges in order."""
    vocab: dict[str, int] = {}
    for c in bytes_to_unicode():
        vocab.setdefault(c, len(vocab))
    for c in bytes_to_unicode():
        vocab.setdefault(c + "</w>", len(vocab))
    words = [(*w[:-1], w[-1] + "</w>") for w in dict.fromkeys(_WORDS)]
    merges: list[str] = []
    while True:
        counts: Counter[tuple[str, str]] = Counter()
        for symbols in words:
            counts.update(zip(symbols, symbols[1:], strict=False))
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(" ".join(best))
        vocab.setdefault(best[0] + best[1], len(vocab))
        words = [_merge(symbols, best) for symbols in words]
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, tuple(merges)


def _merge(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def tiny_tokenizer(pad_token: str | None = None) -> Any:
    """A real `CLIPTokenizer`, loaded from vocab.json + merges.txt written to a temp folder.

    `pad_token="!"` pads as SDXL's second (OpenCLIP) tokenizer and SD 2.x's do; the default
    pads with the end token, as CLIP ViT-L's."""
    from transformers import CLIPTokenizer

    vocab, merges = tiny_vocab()
    with tempfile.TemporaryDirectory(prefix="cfspec-tiny-tok-") as tmp:
        folder = Path(tmp)
        (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (folder / "merges.txt").write_text(
            "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
        )
        (folder / "tokenizer_config.json").write_text(
            json.dumps({"model_max_length": MAX_LENGTH}), encoding="utf-8"
        )
        extra: dict[str, Any] = {} if pad_token is None else {"pad_token": pad_token}
        return CLIPTokenizer.from_pretrained(str(folder), model_max_length=MAX_LENGTH, **extra)


def tiny_components(tokenizer: Any = None) -> dict[str, Any]:
    """tokenizer, text_encoder, unet, vae and a DDIM scheduler, deterministic from TINY_SEED.

    `tokenizer` replaces the tiny one (tests use a subset of the real CLIP vocabulary, with
    CLIP's own ids); the text encoder's embedding table then spans its largest id."""
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if tokenizer is None:
        tokenizer = tiny_tokenizer()
    vocab_size = max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)
    # fork_rng: building the model must not move the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=32,
            in_channels=TINY_LATENT_CHANNELS,
            out_channels=TINY_LATENT_CHANNELS,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=2,
        )
        torch.manual_seed(TINY_SEED + 1)
        vae = tiny_vae()
        torch.manual_seed(TINY_SEED + 2)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab_size,
                hidden_size=32,
                intermediate_size=64,
                num_attention_heads=4,
                num_hidden_layers=5,
                max_position_embeddings=MAX_LENGTH,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                layer_norm_eps=1e-5,
            )
        )
    # The scheduler Stable Diffusion ships with, as DDIM (what Prompt-to-Prompt uses).
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    modules: tuple[Any, ...] = (unet, vae, text_encoder)
    for module in modules:
        module.eval().requires_grad_(False)
    return {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder,
        "unet": unet,
        "vae": vae,
        "scheduler": scheduler,
    }


def tiny_sdxl_components() -> dict[str, Any]:
    """SDXL's layout in miniature, deterministic from TINY_SEED: two text encoders of
    different widths (32 and 48, so their order in the UNet's context matters) whose
    tokenizers pad differently (the end token, and "!" as OpenCLIP's), the second with a
    projection (the pooled embedding); a UNet with `text_time` added conditioning, attention
    at two resolutions with 1 and 2 transformer layers per block and a cross-attention mid
    block; a VAE that asks for fp32 decoding (`force_upcast`); SDXL's Euler scheduler.
    64 px by default (32x32 latents, attention maps of 16x16 and 8x8)."""
    import torch
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer, tokenizer_2 = tiny_tokenizer(), tiny_tokenizer(pad_token="!")
    time_dim, projection = 8, 16

    def clip(hidden: int, act: str) -> Any:
        return CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
            num_attention_heads=4, num_hidden_layers=3, max_position_embeddings=MAX_LENGTH,
            hidden_act=act, projection_dim=projection, layer_norm_eps=1e-5,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED + 10)
        unet = UNet2DConditionModel(
            sample_size=32,
            in_channels=TINY_LATENT_CHANNELS,
            out_channels=TINY_LATENT_CHANNELS,
            block_out_channels=(16, 32, 32),
            layers_per_block=2,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 1, 2),
            attention_head_dim=(2, 4, 4),
            use_linear_projection=True,
            cross_attention_dim=32 + 48,
            addition_embed_type="text_time",
            addition_time_embed_dim=time_dim,
            projection_class_embeddings_input_dim=6 * time_dim + projection,
            norm_num_groups=8,
        )
        torch.manual_seed(TINY_SEED + 11)
        vae = tiny_vae(scaling_factor=0.13025, force_upcast=True)
        torch.manual_seed(TINY_SEED + 12)
        text_encoder = CLIPTextModel(clip(32, "quick_gelu"))
        torch.manual_seed(TINY_SEED + 13)
        text_encoder_2 = CLIPTextModelWithProjection(clip(48, "gelu"))
    scheduler = EulerDiscreteScheduler.from_config(SDXL_SCHEDULER)
    modules: tuple[Any, ...] = (unet, vae, text_encoder, text_encoder_2)
    for module in modules:
        module.eval().requires_grad_(False)
    return {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder,
        "tokenizer_2": tokenizer_2,
        "text_encoder_2": text_encoder_2,
        "unet": unet,
        "vae": vae,
        "scheduler": scheduler,
        "force_zeros_for_empty_prompt": True,
    }


def tiny_vae(**sdxl: Any) -> Any:
    """The embedded models' VAE: two 8/16-wide blocks; `sdxl` sets SDXL's latent scaling and
    fp32 decoding (`scaling_factor`, `force_upcast`)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=TINY_LATENT_CHANNELS,
        norm_num_groups=2,
        sample_size=64,
        **sdxl,
    )
