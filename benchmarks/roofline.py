"""How far a benchmark runs from the device's limit: FLOPs counted, peak measured.

FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` by running the model once on
one row (the UNet for one latent, the VAE decoder for one image, a text encoder for one
prompt), with attention forced onto PyTorch's math kernels so that its matmuls are counted on
every device (the fused CPU kernel has no FLOP formula). A run's FLOPs are those counts times
the rows it ran: the model's work, the same for every method that makes the same images, so
TFLOP/s compares like with like and extra work a method does (explicit softmaxes) counts
against it.

The peak is measured in the same process: a large bf16 matmul on CUDA (the tensor cores'
rate, which fp16 shares), fp32 on the CPU (with the thread count the benchmark uses).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of `fn` (a forward pass), attention included."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), \
            FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def measure_peak(device: torch.device, seconds: float = 0.5) -> dict[str, Any]:
    """The device's matmul rate, measured: {"tflops", "dtype", "n"}."""
    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    n = 8192 if cuda else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):  # warm-up: kernel choice, clocks
        torch.matmul(a, b)
    _sync(device)
    rounds, start = 0, time.perf_counter()
    while True:
        for _ in range(10):
            torch.matmul(a, b)
        rounds += 10
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return {"tflops": round(2 * n**3 * rounds / elapsed / 1e12, 4),
            "dtype": str(dtype).replace("torch.", ""), "n": n}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def generation_flops(engine: Any) -> dict[str, int]:
    """FLOPs per UNet row, per decoded image and per encoded prompt for this engine's model
    and resolution (counted once, plain attention: no batch of edits is active)."""
    comps = engine.comps
    sample = torch.zeros(1, *engine.latent_shape, device=engine.device, dtype=engine.dtype)
    t = torch.tensor(500, device=engine.device)
    context, pooled = engine._uncond, engine._uncond_pooled
    added = engine._added(pooled, 1)
    unet = count_flops(lambda: comps.unet(sample, t, encoder_hidden_states=context,
                                          added_cond_kwargs=added))
    vae = comps.vae
    latent = torch.zeros(1, vae.config.latent_channels, *engine.latent_shape[1:],
                         device=engine.device, dtype=vae.dtype)
    decode = count_flops(lambda: vae.decode(latent))
    ids = [engine._uncond_ids()]
    ids_2 = [engine._uncond_ids(comps.tokenizer_2)] if comps.is_xl else []
    text = count_flops(lambda: engine._encode(ids, ids_2))
    return {"unet_row": unet, "vae_image": decode, "text_prompt": text}


def achieved(flops: float, seconds: float, peak_tflops: float) -> dict[str, float]:
    """{"tflops": achieved rate, "of_peak": its fraction of the measured peak}."""
    rate = flops / seconds / 1e12 if seconds > 0 else 0.0
    return {"tflops": round(rate, 4), "of_peak": round(rate / peak_tflops, 4)}
