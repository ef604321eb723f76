"""A tiny model with Stable Diffusion 1.x's UNet layout, for comparisons with the published
Prompt-to-Prompt code, whose LocalBlend hard-codes SD's layers: 16x16 cross-attention maps at
`down_cross[2:4]` and `up_cross[:3]` of a 64x64 latent, its store keeping maps up to 32x32.

Four UNet levels (64, 32, 16, 8; attention at 32 and 16, two layers per block as SD), narrow
channels,
random weights from fixed seeds; the text encoder is the tiny one sized for the tokenizer given
(tests pass the real CLIP vocabulary's subset in tests/golden_p2p/clip_subset)."""

from __future__ import annotations

from typing import Any

import torch

LATENT = 64  # SD 1.x at 512 px


def sd_layout_components(tokenizer: Any) -> dict[str, Any]:
    from diffusers import UNet2DConditionModel

    from cfspec.gpu.generate.tiny import TINY_LATENT_CHANNELS, TINY_SEED, tiny_components

    parts = tiny_components(tokenizer=tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED + 3)
        unet = UNet2DConditionModel(
            block_out_channels=(16, 16, 16, 16),
            layers_per_block=2,  # as SD: the published LocalBlend indexes its layers
            sample_size=LATENT,
            in_channels=TINY_LATENT_CHANNELS,
            out_channels=TINY_LATENT_CHANNELS,
            # No attention at 64x64: the published store skips those maps anyway, and they are
            # the slow ones on a CPU.
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                              "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                            "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=4,
        )
    unet.eval().requires_grad_(False)
    return {**parts, "unet": unet}
