"""Seconds per photo of each `generate --inversion` method, against plain generation measured
in the same run (same model, size, steps, guidance, device).

    python benchmarks/inversion_bench.py [--model tiny] [--steps 50] [--photos 4] [--size N]
        [--device auto] [--repeats 3] [--quick] [--json]

Each method inverts `--photos` made-up photos in one UNet batch (`inversion.invert`, what
generate runs), timed from the encoded latents to the inverted x_T and contexts; `plain` is the
engine generating the same number of pairs from noise (factual and counterfactual rows, one
batch). `ratio` is a method's seconds over plain's: what inverting costs on top of generating.
The UNet calls per step are counted by a forward hook (a backward pass not counted): DDIM
inversion's 1, and for null-text the conditional prediction, the inner steps (10 unless they
stop early) and the guided step: 13; plain generation 1 (both guidance halves in one batch).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 steps, 2 photos, 1 repeat")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.photos, args.repeats = 2, 2, 1
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for row in result["results"]:
        print(f"{row['method']:>16}: {row['seconds_per_photo']:.3f} s/photo "
              f"({row['ratio']:.2f}x plain), {row['unet_calls_per_step']:.1f} UNet calls/step")


def run(args: Any) -> dict[str, Any]:
    import numpy as np
    import torch

    from cfspec.gpu.device import pick
    from cfspec.gpu.generate import inversion
    from cfspec.gpu.generate.edit_plan import PromptTokenizer, build_plan
    from cfspec.gpu.generate.engine import Engine, Job, Settings
    from cfspec.gpu.generate.weights import load_components, resolve_dtype

    device = torch.device(pick(args.device))
    dtype = resolve_dtype("auto", device)
    comps = load_components(args.model, device, dtype)
    engine = Engine(comps, device, dtype, Settings(steps=args.steps, height=args.size,
                                                   width=args.size))
    calls = [0]
    hook = comps.unet.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (engine.height, engine.width, 3), dtype=np.uint8)
              for _ in range(args.photos)]
    pair = _pair()
    plan = build_plan(pair, PromptTokenizer(comps.tokenizer, comps.tokenizer_2))
    cond, _ = engine._encode([plan.ids_0] * args.photos)
    uncond = engine._uncond

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed(work: Any) -> tuple[float, float]:
        work()  # warm-up, untimed: first-call set-up (the P2P probe, allocator, kernels)
        seconds = []
        for _ in range(args.repeats):
            calls[0] = 0
            sync()
            started = time.perf_counter()
            work()
            sync()
            seconds.append(time.perf_counter() - started)
        return statistics.median(seconds), calls[0] / args.steps

    plain, plain_calls = timed(lambda: engine.run(
        [Job(f"p{n}", n, plan) for n in range(args.photos)]))
    engine.control.restore(comps.unet)
    latents = inversion.encode_photos(comps.vae, photos, device, dtype)
    rows = [{"method": "plain", "seconds_per_photo": plain / args.photos, "ratio": 1.0,
             "unet_calls_per_step": plain_calls}]
    from cfspec.gpu.models import INVERSION_METHODS

    for method in INVERSION_METHODS:
        settings = inversion.InversionSettings(method, args.steps, engine.settings.guidance)
        seconds, per_step = timed(lambda s=settings: inversion.invert(
            comps.unet, engine.scheduler, latents, cond.clone(), uncond.clone(), s))
        rows.append({"method": method, "seconds_per_photo": seconds / args.photos,
                     "ratio": seconds / plain, "unet_calls_per_step": per_step})
    hook.remove()
    return {"model": args.model, "device": str(device), "dtype": str(dtype),
            "steps": args.steps, "photos": args.photos, "size": engine.height,
            "repeats": args.repeats, "results": rows}


SPEC = """scm bench {
  id "bench"
  prompt "a {{ A }} sitting on a {{ B }}"
  var A = "cat"
  var B = "car"
  A -> B "what sits picks the seat"
  counterfactual dog { do(A = "dog") }
}
"""


def _pair() -> Any:
    """The benchmark's pair, compiled from SPEC as `cfspec compile` would."""
    import tempfile

    from cfspec.compile.stage import compile_paths
    from cfspec.lang.config import Config
    from cfspec.workspace.pairs import Pair

    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "bench.scm"
        spec.write_text(SPEC, encoding="utf-8")
        result = compile_paths([str(spec)], Config(), Path(folder) / "out")
    return Pair.from_json(result.pairs[0])


if __name__ == "__main__":
    main()
