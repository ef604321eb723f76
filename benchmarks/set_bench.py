"""Set generation against per-pair generation: K counterfactuals of one factual image.

    python benchmarks/set_bench.py                  # tiny model, CPU, K = 1, 3, 11
    python benchmarks/set_bench.py --quick --json   # fewer steps; one JSON object on stdout
    python benchmarks/set_bench.py --model random-sd15 --device cuda   # SD 1.5, 512 px, fp16

Per pair (`generate(per_pair=True)`, the layout before sets) every pair renders its own copy
of the factual image: 2K image rows for K counterfactuals. A set renders the factual row once
and edits every counterfactual against it: K + 1 rows. Both go through the same `Engine` and
the same batching generate uses (`batching.batches`, per pair or as sets, `--batch-pairs` pairs'
worth of rows per UNet call; the default 12 puts each K below in one call either way), on the
same prompts (replace edits with LocalBlend, P2P's default windows), noise and steps, and both
include text encoding, the denoising loop and VAE decoding into PIL images (writing files is
not timed). The UNet rows are counted by a forward hook, not computed.

Printed per K and method: UNet rows per step (both guidance branches), pair images (2 per pair:
factual and counterfactual) per UNet row per step, pairs/s, and the ratio sets / per-pair of
pairs/s against the rows ratio 2K / (K + 1), the most sets can gain. Goal: >= 1.7x at K = 11
(22 / 12 = 1.83 rows).

Defaults on the CPU: the embedded `tiny` model at 64x64 (32x32 latents), 20 steps, one torch
thread, times by this process's CPU time (`--clock cpu`): on a shared machine other work then
does not count, and with one thread CPU time is the work done. 64 px and 20 steps make the
denoising loop most of the time (text encoding is one call, decoding one VAE pass per image,
both proportional to the rows too), as at 512 px and 50 steps on a GPU. Each measurement is the
minimum of `--repeats` runs (3) after one warm-up, the two methods alternating.

How far from the limit: each result's `tflops` and `of_peak`, the model FLOPs of the UNet rows
the hook counted plus the images decoded and prompts encoded (`roofline.py`), over the time,
against the peak matmul rate measured in this run. Sets do less work for the same pairs, so
their TFLOP/s can be equal while their pairs/s is higher.

GPU: `--model random-sd15 --device cuda` is the SD 1.5 architecture with random weights
(`cfspec.gpu.generate.weights`), 512x512, fp16, 50 steps; `--model random-sdxl` SDXL base at
1024 px; or a local SD 1.x/2.x/SDXL pipeline folder. The clock is then the wall clock, with
`torch.cuda.synchronize` around each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: import the cfspec beside it
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from roofline import achieved, generation_flops, measure_peak  # noqa: E402
from torch.nn.modules.module import register_module_forward_pre_hook  # noqa: E402

from cfspec.gpu.generate.edit_plan import PromptTokenizer, build_plan  # noqa: E402
from cfspec.gpu.generate.engine import Engine, Job, Settings  # noqa: E402
from cfspec.gpu.generate.weights import load_components, resolve_dtype  # noqa: E402
from cfspec.workspace.batching import batches  # noqa: E402
from cfspec.workspace.pairs import Pair, schema_errors  # noqa: E402

FACTUAL = "a cat sitting on a wooden table"
SUBSTITUTES = ["dog", "fox", "rabbit", "hamster", "parrot", "owl", "duck", "puppy", "kitten",
               "lamb", "goat"]


def pair_line(n: int, word: str) -> dict[str, Any]:
    """A words-sourced replace pair: `cat` -> `word`, blended (P2P's default windows)."""
    w0 = FACTUAL.split()
    w1 = [word if w == "cat" else w for w in w0]
    t0 = ["<|startoftext|>", *w0, "<|endoftext|>"]
    t1 = ["<|startoftext|>", *w1, "<|endoftext|>"]
    at = w0.index("cat") + 1
    line = {
        "id": f"cat__{n}_{word}", "spec": "benchmarks/set_bench.py", "counterfactual": word,
        "prompt_0": FACTUAL, "prompt_1": " ".join(w1), "intervention": [],
        "edit": {
            "type": "replace",
            "cross_replace_steps": {"default": [0.0, 0.8], "words": {}},
            "self_replace_steps": [0.0, 0.4],
            "local_blend": {"words_0": ["cat"], "words_1": [word], "tokens_0": [at],
                            "tokens_1": [at], "threshold": 0.3},
            "equalizer": {"words": [], "values": [], "tokens": []},
            "alignment": {"source": "words", "tokens_0": t0, "tokens_1": t1,
                          "words": [[i, i] for i in range(len(w0))],
                          "token_map": [[i, i, 1.0] for i in range(len(t0))]},
        },
        "scm": ["Animal → Table: sits on"], "scm_aug": ["Animal → Table: sits on"],
    }
    assert schema_errors(line) == [], schema_errors(line)
    return line


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], Any], device: torch.device, clock: Callable[[], float]) -> float:
    _sync(device)
    start = clock()
    fn()
    _sync(device)
    return clock() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA if present)")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--size", type=int, default=None, help="image side (default: 64 for "
                        "tiny, else the model's)")
    parser.add_argument("--steps", type=int, default=None, help="default 20 (tiny), else 50")
    parser.add_argument("--ks", default="1,3,11", help="counterfactuals per factual")
    parser.add_argument("--batch-pairs", type=int, default=12)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default 1)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default=None,
                        help="default: cpu on the CPU, wall on CUDA")
    parser.add_argument("--quick", action="store_true", help="5 steps, 1 repeat")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    dtype = resolve_dtype(args.dtype, device)
    tiny = args.model in ("tiny", "tiny-sdxl")
    steps = args.steps or (5 if args.quick else 20 if tiny else 50)
    repeats = 1 if args.quick else args.repeats
    clock_name = args.clock or ("cpu" if device.type == "cpu" else "wall")
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    ks = [int(k) for k in args.ks.split(",")]
    if max(ks) > len(SUBSTITUTES):
        parser.error(f"K at most {len(SUBSTITUTES)}")

    peak = measure_peak(device)
    comps = load_components(args.model, device, dtype)
    size = args.size or (64 if tiny else comps.default_size)
    engine = Engine(comps, device, dtype, Settings(steps=steps, guidance=args.guidance,
                                                    height=size, width=size))
    flops = generation_flops(engine)
    words = PromptTokenizer(comps.tokenizer, comps.tokenizer_2)
    plans = [build_plan(Pair.from_json(pair_line(n, w)), words)
             for n, w in enumerate(SUBSTITUTES)]

    rows_seen: list[int] = []

    def count(module: Any, inputs: Any) -> None:
        if module is comps.unet and inputs:
            rows_seen.append(int(inputs[0].shape[0]))

    results: list[dict[str, Any]] = []
    handle = register_module_forward_pre_hook(count)
    try:
        for k in ks:
            jobs = [Job(f"p{n}", 0, plans[n]) for n in range(k)]
            layouts = {method: batches(jobs, lambda job: "one factual", lambda job: job.seed,
                                       args.batch_pairs, per_pair=method == "per_pair")
                       for method in ("per_pair", "sets")}

            def run(packed: list[list[list[Job]]]) -> None:
                for batch in packed:
                    engine.run_sets(batch)

            rows: dict[str, int] = {}
            for name, packed in layouts.items():  # warm-up, and the rows counted
                rows_seen.clear()
                run(packed)
                rows[name] = sum(rows_seen)
            best = {name: float("inf") for name in layouts}
            for _ in range(repeats):  # alternating, so both see the same machine
                for name, packed in layouts.items():
                    best[name] = min(best[name], measure(lambda b=packed: run(b), device,
                                                         clock))
            for name in layouts:
                images = rows[name] / steps / (2 if args.guidance > 1 else 1)
                work = (rows[name] * flops["unet_row"]
                        + images * (flops["vae_image"] + flops["text_prompt"]))
                results.append({
                    "k": k, "method": name, "seconds": best[name],
                    "unet_rows_per_step": rows[name] / steps,
                    "images_per_row": 2 * k * steps / rows[name],
                    "pairs_per_s": k / best[name],
                    **achieved(work, best[name], peak["tflops"]),
                })
    finally:
        handle.remove()
        engine.close()

    summary = []
    for k in ks:
        per_pair, sets = (next(r for r in results if r["k"] == k and r["method"] == m)
                          for m in ("per_pair", "sets"))
        summary.append({"k": k, "speedup": sets["pairs_per_s"] / per_pair["pairs_per_s"],
                        "rows_ratio": per_pair["unet_rows_per_step"]
                        / sets["unet_rows_per_step"]})
    report = {
        "model": args.model, "device": str(device), "dtype": str(dtype).replace("torch.", ""),
        "size": size, "steps": steps, "guidance": args.guidance,
        "batch_pairs": args.batch_pairs, "repeats": repeats, "clock": clock_name,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "torch": torch.__version__, "machine": platform.machine(),
        "peak": peak, "flops": flops,
        "results": results, "summary": summary,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.model} on {device} ({report['dtype']}), {size}x{size}, {steps} steps, "
          f"guidance {args.guidance}, --batch-pairs {args.batch_pairs}, min of {repeats} "
          f"({clock_name} clock" + (f", {report['threads']} thread(s))" if report["threads"]
                                    else ")"))
    print(f"{'K':>3} {'method':<9} {'rows/step':>9} {'images/row':>10} {'seconds':>9} "
          f"{'pairs/s':>9} {'TFLOP/s':>8} {'of peak':>8}")
    for r in results:
        print(f"{r['k']:>3} {r['method']:<9} {r['unet_rows_per_step']:>9.0f} "
              f"{r['images_per_row']:>10.3f} {r['seconds']:>9.3f} {r['pairs_per_s']:>9.3f} "
              f"{r['tflops']:>8.3f} {100 * r['of_peak']:>7.1f}%")
    print(f"peak: {peak['tflops']:.2f} TFLOP/s ({peak['dtype']} {peak['n']}^3 matmul)")
    for s in summary:
        print(f"K = {s['k']:>2}: sets / per-pair = {s['speedup']:.2f}x pairs/s "
              f"(UNet rows {s['rows_ratio']:.2f}x)" + ("   goal >= 1.7x" if s["k"] == 11 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
