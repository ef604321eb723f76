"""Per-pair evaluation throughput: CLIP embeddings of 2 images + 2 prompts and masked SSIM/PSNR.

    python benchmarks/evaluate_bench.py                 # 20 timed batches
    python benchmarks/evaluate_bench.py --quick         # 3 timed batches
    python benchmarks/evaluate_bench.py --quick --json  # one JSON object on stdout, nothing else

One "pair" is what the evaluate stage does per (pair, seed): embed the factual and the
counterfactual image and both prompts with CLIP, compute the CLIP-embedding metrics (CLIP
scores, directional and image-image similarity, effectiveness), the latent distances, and the
masked SSIM and PSNR of the background (the changed region from a 16 x 16 attention map).
Prompt embeddings are recomputed for every pair (the worst case: a real run can reuse them
across a pair's seeds).

Defaults by device: on a CPU the embedded `tiny` CLIP (random weights, 32 px input) on 64 px
images (the tiny generator's size), fp32, 16 pairs a batch; on CUDA the full ViT-L/14
architecture (`random-vit-l-14`: `openai/clip-vit-large-patch14`'s shapes with random weights,
no download) at its 224 px input on 512 px images (SD 1.5's output), fp16, 64 pairs a batch.
Inputs are random (seeded) uint8 images already on the device; decoding PNGs is not timed.

How far from the limit: `tflops` and `of_peak`, from CLIP's FLOPs (its image tower per image,
its text tower per prompt, counted once by `torch.utils.flop_counter`, `roofline.py`; the
metrics themselves are not counted) over the time, against the peak matmul rate measured in
this run (bf16 on CUDA, fp32 on the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: import the cfspec beside it
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

import torch  # noqa: E402
from roofline import achieved, count_flops, measure_peak  # noqa: E402

from cfspec.gpu.evaluate import background, metrics  # noqa: E402
from cfspec.gpu.evaluate.clip import RANDOM_VIT_L14, TINY, ClipScorer  # noqa: E402

WORDS = ("dog", "cat", "horse", "red", "blue", "small", "large", "table", "chair", "street")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batch(
    n: int, size: int, device: torch.device, seed: int
) -> dict[str, Any]:
    """n pairs of smooth random uint8 images (counterfactual = factual with a changed blob),
    16 x 16 attention maps, (4, size/8, size/8) latents and two prompts per pair."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randint(0, 256, (n, 3, 16, 16), generator=g).float()
    img0 = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear")
    img0 = img0.round().clamp(0, 255).to(torch.uint8)
    ys = torch.linspace(-1, 1, 16).view(16, 1)
    xs = torch.linspace(-1, 1, 16).view(1, 16)
    centres = torch.rand(n, 2, generator=g) - 0.5
    attention = torch.exp(
        -((ys - centres[:, 0, None, None]) ** 2 + (xs - centres[:, 1, None, None]) ** 2) / 0.1
    )
    changed = background.changed_region(attention, (size, size))
    img1 = img0.clone()
    noise = torch.randint(0, 256, img0.shape, generator=g, dtype=torch.uint8)
    img1 = torch.where(changed.unsqueeze(1), noise, img1)
    latent = max(1, size // 8)
    z0 = torch.randn(n, 4, latent, latent, generator=g)
    z1 = z0 + 0.3 * torch.randn(n, 4, latent, latent, generator=g)
    prompts0, prompts1 = [], []
    for i in range(n):
        a, b, c = (WORDS[(i + k) % len(WORDS)] for k in (0, 3, 7))
        prompts0.append(f"a photo of a {b} {a} next to a {c}")
        prompts1.append(f"a photo of a {b} {WORDS[(i + 1) % len(WORDS)]} next to a {c}")
    return {
        "img0": img0.to(device),
        "img1": img1.to(device),
        "attention": attention.to(device),
        "z0": z0.to(device),
        "z1": z1.to(device),
        "prompts0": prompts0,
        "prompts1": prompts1,
    }


def evaluate_batch(scorer: ClipScorer, batch: dict[str, Any], stages: dict[str, float]) -> int:
    device = scorer.device
    t0 = time.perf_counter()
    n = batch["img0"].shape[0]
    image_emb = scorer.embed_images(torch.cat([batch["img0"], batch["img1"]]), batch_size=2 * n)
    _sync(device)
    t1 = time.perf_counter()
    text_emb = scorer.embed_texts(batch["prompts0"] + batch["prompts1"])
    _sync(device)
    t2 = time.perf_counter()
    rows = metrics.pair_metrics(
        image_emb[:n], image_emb[n:], text_emb[:n], text_emb[n:],
        batch["img0"], batch["img1"], batch["attention"], batch["z0"], batch["z1"],
    )
    _sync(device)
    t3 = time.perf_counter()
    stages["clip_images"] += t1 - t0
    stages["clip_texts"] += t2 - t1
    stages["metrics_and_background"] += t3 - t2
    return len(rows)


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    on_cuda = device.type == "cuda"
    model = args.model or (RANDOM_VIT_L14 if on_cuda else TINY)
    dtype = torch.float16 if on_cuda and not args.fp32 else torch.float32
    batch_pairs = args.batch or (64 if on_cuda else 16)
    size = args.image_size or (512 if on_cuda else 64)
    batches = 3 if args.quick else 20
    torch.set_grad_enabled(False)
    peak = measure_peak(device)

    t0 = time.perf_counter()
    scorer = ClipScorer.load(model, device, dtype)
    _sync(device)
    load_s = time.perf_counter() - t0

    data = [make_batch(batch_pairs, size, device, args.seed + i) for i in range(batches + 1)]
    stages = {"clip_images": 0.0, "clip_texts": 0.0, "metrics_and_background": 0.0}
    evaluate_batch(scorer, data[0], dict(stages))  # warm-up (kernels, allocator, caches)
    _sync(device)
    pairs = 0
    t0 = time.perf_counter()
    for batch in data[1:]:
        pairs += evaluate_batch(scorer, batch, stages)
    _sync(device)
    elapsed = time.perf_counter() - t0
    one = make_batch(1, size, device, args.seed)
    flops = {"image": count_flops(lambda: scorer.embed_images(one["img0"], batch_size=1)),
             "prompt": count_flops(lambda: scorer.embed_texts(one["prompts0"]))}
    work = 2 * pairs * (flops["image"] + flops["prompt"])
    result: dict[str, Any] = {
        "benchmark": "evaluate",
        "mode": "quick" if args.quick else "full",
        "device": torch.cuda.get_device_name(device) if on_cuda else "cpu",
        "threads": torch.get_num_threads(),
        "model": model,
        "dtype": str(dtype).removeprefix("torch."),
        "clip_input_px": scorer.crop_size,
        "image_px": size,
        "batch_pairs": batch_pairs,
        "batches": batches,
        "pairs": pairs,
        "seconds": elapsed,
        "pairs_per_s": pairs / elapsed,
        "seconds_per_batch": {k: v / batches for k, v in stages.items()},
        "load_seconds": load_s,
        "torch": torch.__version__,
        "peak": peak,
        "flops": flops,
        **achieved(work, elapsed, peak["tflops"]),
    }
    if on_cuda:
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 timed batches instead of 20")
    ap.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    ap.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--model", help=f"CLIP spec (default: {RANDOM_VIT_L14} on CUDA, {TINY} else)")
    ap.add_argument("--batch", type=int, help="pairs per batch (default: 64 on CUDA, 16 else)")
    ap.add_argument("--image-size", type=int, help="image side (default: 512 on CUDA, 64 else)")
    ap.add_argument("--fp32", action="store_true", help="fp32 on CUDA too (default fp16)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    result = run(args)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
