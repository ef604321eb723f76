"""Generation throughput: our batched P2P engine against a plain pipeline and a naive P2P.

    python benchmarks/generate_bench.py                 # CUDA if present, else CPU
    python benchmarks/generate_bench.py --quick --json  # fewer steps; one JSON object on stdout
    python benchmarks/generate_bench.py --device cpu --batches 1,4
    python benchmarks/generate_bench.py --model tiny-sdxl --quick      # SDXL's layout, CPU
    python benchmarks/generate_bench.py --model random-sdxl --batches 1,8   # SDXL, 1024 px, fp16

Three ways to make the same image pairs (same prompts, steps, guidance, resolution and noise),
each at 1, 4 and 8 pairs per batch:

* `ours`: `gpu.generate.engine.Engine`, B pairs in one UNet batch, fused attention outside the
  edits, explicit fp32 probabilities only where P2P needs them.
* `plain`: diffusers' `StableDiffusionPipeline` (`StableDiffusionXLPipeline` for SDXL) on the
  same 2B prompts in one call, no editing at all: the floor. `overhead` = ours' time / plain's time.
* `naive`: P2P as published (google/prompt-to-prompt's register_attention_control): an explicit
  softmax in every attention layer in the model's dtype, an AttentionStore of every map up to
  32x32, one pair per call. `speedup` = naive's time / ours'.

Every method's time includes text encoding, the denoising loop and VAE decoding into PIL images
(writing files is not timed). Peak memory is `torch.cuda.max_memory_allocated` on CUDA and the
process's peak resident set (VmHWM, reset before each measurement) on the CPU.

`--compile ours,plain` also times those methods with the UNet compiled (`torch.compile`,
inductor; `--compile-mode`, default CUDA graphs on CUDA): ours through
`Engine(compile=CompileOptions())` (P2P processors in their compiled form, fused q/k/v,
channels-last), plain through diffusers' fused-projection processors on the same compiled,
channels-last UNet. They run after every eager measurement (compiling changes the UNet's modules
in place). `compile_seconds` is each one's first call per batch shape (tracing and compiling,
or loading both from the inductor cache) beyond a timed call.

How far from the limit: each method's TFLOP/s (`tflops`) and its fraction of the device's
peak (`of_peak`), from the model's FLOPs (counted once per model and resolution by
`torch.utils.flop_counter`, `roofline.py`) times the rows the images need, and the peak
measured in this run (a bf16 matmul on CUDA, fp32 on the CPU).

Models: on the CPU the embedded `tiny` model at its 64x64 default, 20 steps (`--quick`: 32x32,
4 steps); on CUDA the Stable Diffusion 1.5 architecture with random weights (`random-sd15`) at
512x512 in fp16, 50 steps (`--quick`: 10). `--model random-sdxl` is SDXL base's architecture
(both text encoders, 2.6B UNet) at 1024x1024, `tiny-sdxl` its layout in miniature (64x64, or
32x32 with `--quick`). Random weights make noise images but cost exactly what the real model
costs. `--methods` picks which of ours, plain and naive to time (naive SDXL at 1024 px, one
pair per call, is the slow one). Times are the minimum of `--repeats` runs (3) after one
warm-up run.

On the CPU the default is one thread (`--threads`): the tiny model's kernels are so small that
with several threads on a shared machine one measures OpenMP workers spin-waiting for a core,
which swamps every difference between the three methods.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: import the cfspec beside it
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from roofline import achieved, generation_flops, measure_peak  # noqa: E402

from cfspec.gpu.generate.edit_plan import PromptTokenizer, build_plan  # noqa: E402
from cfspec.gpu.generate.engine import CompileOptions, Engine, Job, Settings  # noqa: E402
from cfspec.gpu.generate.p2p_batch import BatchEdit  # noqa: E402
from cfspec.gpu.generate.weights import Components, load_components  # noqa: E402
from cfspec.workspace.pairs import Pair, schema_errors  # noqa: E402

# Counterfactual prompt pairs in the bundled specs' style: replace, refine and reweight edits.
PROMPTS = [
    ("replace", "a spotty banana sitting on top of an orange", "a spotty apple sitting on top of "
     "an orange"),
    ("refine", "a baseball bat is in a window looking out over the street",
     "a baseball bat is in an umbrella stand looking out over the street"),
    ("replace", "a very cute flock of sheep in a grassy field",
     "a very cute pair of sheep in a grassy field"),
    ("reweight", "a baseball player lunges and reaches back with the ball",
     "a football player lunges and reaches back with the ball"),
    ("refine", "a polar bear partially submerged in a body of water",
     "a walrus partially submerged in a body of water"),
    ("replace", "a woman is cutting into a cake with a large knife",
     "a woman is cutting into a pie with a large knife"),
    ("refine", "a large elephant that has people sitting on top",
     "a small elephant that has a child sitting on top"),
    ("replace", "a white plate with a sliced up piece of food on top of it",
     "a white bowl with a sliced up piece of food on top of it"),
]


def _pair(n: int, kind: str, prompt_0: str, prompt_1: str) -> Pair:
    """A words-sourced pair for these prompts (P2P's default windows), checked against
    pair.schema.json as compile's would be."""
    from cfspec.compile.align import Tokens, refine_map

    w0, w1 = prompt_0.split(), prompt_1.split()
    t0 = ["<|startoftext|>", *w0, "<|endoftext|>"]
    t1 = ["<|startoftext|>", *w1, "<|endoftext|>"]
    alignment: dict[str, Any] = {"source": "words", "tokens_0": t0, "tokens_1": t1}
    if kind == "refine":
        mapper = refine_map(Tokens(tuple(t0), ((),) * len(t0)),
                            Tokens(tuple(t1), ((),) * len(t1)))
        alignment["token_map"] = mapper
        changed_1 = [j for j, i in enumerate(mapper) if i < 0]
        kept = {i for i in mapper if i >= 0}
        changed_0 = [i for i in range(1, len(t0) - 1) if i not in kept]
    else:
        alignment["words"] = [[i, i] for i in range(len(w0))]
        alignment["token_map"] = [[i, i, 1.0] for i in range(len(t0))]
        changed_0 = changed_1 = [i + 1 for i in range(len(w0)) if w0[i] != w1[i]]
    eq_tokens = [[changed_1[0]]] if kind == "reweight" else []
    record = {
        "id": f"bench_{n}", "spec": "benchmark", "counterfactual": kind,
        "prompt_0": prompt_0, "prompt_1": prompt_1, "intervention": [],
        "scm": [], "scm_aug": [],
        "edit": {
            "type": kind,
            "cross_replace_steps": {"default": [0.0, 0.8], "words": {}},
            "self_replace_steps": [0.0, 0.4],
            "local_blend": {"words_0": [t0[i] for i in changed_0],
                            "words_1": [t1[i] for i in changed_1],
                            "tokens_0": changed_0, "tokens_1": changed_1, "threshold": 0.3},
            "equalizer": {"words": [t1[t[0]] for t in eq_tokens],
                          "values": [2.0] * len(eq_tokens), "tokens": eq_tokens},
            "alignment": alignment,
        },
    }
    problems = schema_errors(record)
    if problems:
        raise ValueError(f"benchmark pair {n} breaks pair.schema.json: {problems}")
    return Pair.from_json(record)


def make_jobs(comps: Components, count: int) -> list[Job]:
    words = PromptTokenizer(comps.tokenizer, comps.tokenizer_2)
    jobs = []
    for n in range(count):
        kind, p0, p1 = PROMPTS[n % len(PROMPTS)]
        jobs.append(Job(f"bench_{n}", n, build_plan(_pair(n, kind, p0, p1), words)))
    return jobs


# -- measuring ----------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: "5" resets the resident-set high-water mark of this process
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(fn: Callable[[], Any], device: torch.device, repeats: int) -> dict[str, float]:
    _sync(device)
    start = time.perf_counter()
    fn()  # warm-up: kernels, caches, allocator (and compiling, for compiled methods)
    _sync(device)
    first = time.perf_counter() - start
    times = []
    _reset_peak(device)
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    # The minimum: the machine may be shared, and other load only ever adds time.
    return {"seconds": min(times), "median_seconds": round(statistics.median(times), 4),
            "first_seconds": round(first, 4), "peak_mib": round(_peak_mib(device), 1)}


# -- the three methods --------------------------------------------------------------------------


def run_ours(engine: Engine, jobs: list[Job]) -> list[Any]:
    return engine.run(jobs)


def run_plain(pipe: Any, engine: Engine, jobs: list[Job]) -> list[Any]:
    """The same 2B images with no editing: one StableDiffusionPipeline (or XL) call."""
    settings = engine.settings
    prompts = [j.plan for j in jobs]
    xl = engine.comps.is_xl
    embeds, pooled = engine._encode(
        [p.ids_0 for p in prompts] + [p.ids_1 for p in prompts],
        [p.ids2_0 for p in prompts] + [p.ids2_1 for p in prompts] if xl else ())
    noise = torch.cat([engine.initial_noise(j.seed) for j in jobs])
    latents = torch.cat([noise, noise]).to(engine.device, engine.dtype)
    # The pipeline makes the unconditional branch itself (SDXL base: zeros).
    extra: dict[str, Any] = ({"pooled_prompt_embeds": pooled} if xl else
                             {"negative_prompt": [""] * embeds.shape[0]})
    out = pipe(prompt_embeds=embeds, latents=latents, num_inference_steps=settings.steps,
               guidance_scale=settings.guidance, height=engine.height, width=engine.width,
               output_type="pil", **extra)
    return list(out.images)


class NaiveController:
    """google/prompt-to-prompt's AttentionStore + AttentionControlEdit + LocalBlend, for one
    pair (two images), run on attention probabilities every layer hands it."""

    def __init__(self, batch: BatchEdit, blend_queries: int, blend_shape: tuple[int, int],
                 blend_layers: set[str]) -> None:
        self.batch = batch
        self.blend_queries = blend_queries
        self.blend_shape = blend_shape
        self.blend_layers = blend_layers
        self.step = 0
        self.step_store: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.attention_store: dict[str, list[torch.Tensor]] = {}

    def __call__(self, attn: torch.Tensor, is_cross: bool, name: str, heads: int
                 ) -> torch.Tensor:
        half = attn.shape[0] // 2  # conditional half: [prompt_0 heads, prompt_1 heads]
        cond = attn[half:].reshape(2, heads, *attn.shape[1:])
        if attn.shape[1] <= 32**2:  # AttentionStore.forward keeps maps up to 32x32
            self.step_store[name].append(cond.clone())
        s, e = self.batch._self_window[0]
        if is_cross or (s <= self.step < e):
            base, own = cond[0], cond[1]
            if is_cross:
                edited = self.batch.alpha[0, min(self.step, self.batch.num_steps)].to(attn.dtype)
                mapper = self.batch.mapper[0].to(attn.dtype)
                replaced = torch.einsum("hpw,wn->hpn", base, mapper)
                replaced = replaced * self.batch.equalizer[0].to(attn.dtype)
                keep = self.batch.keep[0].to(attn.dtype)
                replaced = replaced + own * (1 - keep)
                cond = torch.stack([base, replaced * edited + (1 - edited) * own])
            elif attn.shape[1] <= self.blend_queries:
                cond = torch.stack([base, base])
            attn = torch.cat([attn[:half], cond.reshape(-1, *attn.shape[1:])])
        return attn

    def between_steps(self) -> None:
        for name, maps in self.step_store.items():
            if name not in self.attention_store:
                self.attention_store[name] = maps
            else:
                self.attention_store[name] = [a + b for a, b in
                                              zip(self.attention_store[name], maps, strict=True)]
        self.step_store = defaultdict(list)
        self.step += 1

    def local_blend(self, x_t: torch.Tensor) -> torch.Tensor:
        batch = self.batch
        if self.step <= batch.blend_starts[0] or not batch.blend_jobs:
            return x_t
        maps = [m for name in self.blend_layers for m in self.attention_store.get(name, [])]
        if not maps:
            return x_t
        stacked = torch.stack([m.float() for m in maps], 1)  # (2, layers, heads, q, 77)
        cols = batch.blend_cols[0][:, None, None, None, :]
        words = (stacked * cols).sum(-1).mean((1, 2)).reshape(2, 1, *self.blend_shape)
        words = F.max_pool2d(words, 3, 1, padding=1)
        mask = F.interpolate(words, size=x_t.shape[2:])
        mask = mask / mask.amax((2, 3), keepdim=True).clamp_min(1e-30)
        mask = mask > batch.threshold[0]
        mask = (mask[:1] | mask[1:]).to(x_t.dtype)
        return torch.cat([x_t[:1], x_t[:1] + mask * (x_t[1:] - x_t[:1])])


class NaiveProcessor:
    """P2P's patched attention forward: explicit softmax, then the controller, every layer."""

    def __init__(self, holder: dict[str, Any], name: str) -> None:
        self.holder = holder
        self.name = name

    def __call__(self, attn: Any, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        is_cross = encoder_hidden_states is not None
        context = encoder_hidden_states if is_cross else hidden_states
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(context))
        v = attn.head_to_batch_dim(attn.to_v(context))
        probs = (torch.einsum("bid,bjd->bij", q, k) * attn.scale).softmax(dim=-1)
        controller = self.holder.get("controller")
        if controller is not None:
            probs = controller(probs, is_cross, self.name, attn.heads)
        out = attn.batch_to_head_dim(torch.einsum("bij,bjd->bid", probs, v))
        return attn.to_out[1](attn.to_out[0](out))


def run_naive(comps: Components, engine: Engine, holder: dict[str, Any],
              jobs: list[Job]) -> list[Any]:
    """One pair per call, the published way."""
    images = []
    settings = engine.settings
    for job in jobs:
        with torch.inference_mode():
            plan = job.plan
            cond, pooled = engine._encode([plan.ids_0, plan.ids_1],
                                          [plan.ids2_0, plan.ids2_1] if comps.is_xl else ())
            context = torch.cat([engine._uncond.expand(2, -1, -1), cond])
            if pooled is not None and engine._uncond_pooled is not None:
                pooled = torch.cat([engine._uncond_pooled.expand(2, -1), pooled])
            added = engine._added(pooled, 4)
            scheduler = engine.scheduler
            scheduler.set_timesteps(settings.steps, device=engine.device)
            noise = engine.initial_noise(job.seed)
            latents = torch.cat([noise, noise]).to(engine.device, engine.dtype)
            latents = latents * scheduler.init_noise_sigma
            batch = BatchEdit([job.plan], len(scheduler.timesteps), engine.device, True,
                              settings.resolved_blend_start)
            control = engine.control
            controller = NaiveController(batch, control.blend_queries, control.blend_shape,
                                         control.blend_layers)
            holder["controller"] = controller
            for t in scheduler.timesteps:
                model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
                pred = comps.unet(model_input, t, encoder_hidden_states=context,
                                  added_cond_kwargs=added).sample
                uncond, text = pred.chunk(2)
                pred = uncond + settings.guidance * (text - uncond)
                latents = scheduler.step(pred, t, latents).prev_sample
                controller.between_steps()
                latents = controller.local_blend(latents)
            holder["controller"] = None
            images += engine._decode(latents)
    return images


def make_pipeline(comps: Components, engine: Engine, unet: Any, dtype: torch.dtype) -> Any:
    """The plain diffusers pipeline on these components (and this UNet, maybe compiled).

    SDXL in fp16 gets an fp16 copy of the VAE, which the pipeline upcasts to decode itself
    (`force_upcast`), as a plain diffusers user's would: our components keep the VAE in fp32
    already, and the pipeline would hand that fp32 VAE its fp16 latents."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    pipe: Any
    if comps.is_xl:
        vae = comps.vae
        if vae.dtype != dtype:
            vae = copy.deepcopy(vae).to(dtype=dtype)
        pipe = StableDiffusionXLPipeline(
            vae=vae, text_encoder=comps.text_encoder, text_encoder_2=comps.text_encoder_2,
            tokenizer=comps.tokenizer, tokenizer_2=comps.tokenizer_2, unet=unet,
            scheduler=engine.scheduler, add_watermarker=False,
            force_zeros_for_empty_prompt=comps.force_zeros_for_empty_prompt,
        )
    else:
        pipe = StableDiffusionPipeline(
            vae=comps.vae, text_encoder=comps.text_encoder, tokenizer=comps.tokenizer,
            unet=unet, scheduler=engine.scheduler, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer steps (10 on CUDA; 4 at 32x32 on the CPU)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", default="1,4,8", help="pairs per batch, comma-separated")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--model", default=None,
                        help="tiny, tiny-sdxl, random-sd15, random-sdxl or a pipeline folder")
    parser.add_argument("--methods", default="ours,plain,naive",
                        help="which to time, comma-separated (ours, plain, naive)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default 1 on the CPU: see the module doc)")
    parser.add_argument("--compile", default="",
                        help="methods to time compiled as well, comma-separated (ours, plain)")
    parser.add_argument("--compile-batches", default=None,
                        help="pairs per batch to time compiled (default: every --batches); "
                        "each size is one more compile")
    parser.add_argument("--compile-mode", default=None,
                        help="torch.compile mode (default: reduce-overhead on CUDA, else "
                        "default)")
    args = parser.parse_args(argv)

    from diffusers.models.attention_processor import AttnProcessor2_0
    from diffusers.utils import logging as dlogging

    dlogging.set_verbosity_error()
    # SDXL's pipeline announces that `upcast_vae` is deprecated on every call.
    warnings.filterwarnings("ignore", message=".*upcast_vae.*")
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    model = args.model or ("random-sd15" if cuda else "tiny")
    dtype = torch.float16 if cuda else torch.float32
    steps = args.steps or ((10 if cuda else 4) if args.quick else (50 if cuda else 20))
    repeats = args.repeats or 3
    batches = [int(b) for b in args.batches.split(",")]
    methods = [m for m in ("ours", "plain", "naive") if m in args.methods.split(",")]
    compiled = [m for m in ("ours", "plain") if m in args.compile.split(",")]
    if not cuda:
        torch.set_num_threads(args.threads or 1)
    peak = measure_peak(device)

    comps = load_components(model, device, dtype)
    size = args.size or (512 if model == "random-sd15" else
                         (32 if args.quick and not cuda else comps.default_size))
    engine = Engine(comps, device, dtype, Settings(steps=steps, height=size, width=size))
    pipe = make_pipeline(comps, engine, comps.unet, dtype)
    holder: dict[str, Any] = {}
    naive_procs = {name: NaiveProcessor(holder, name) for name in comps.unet.attn_processors}
    flops = generation_flops(engine)

    def model_flops(b: int) -> int:
        """The images' work for b pairs: 2b images, both guidance branches every step."""
        return (steps * 4 * b * flops["unet_row"] + 2 * b * flops["vae_image"]
                + 2 * b * flops["text_prompt"])

    results = []
    for b in batches:
        jobs = make_jobs(comps, b)
        row: dict[str, Any] = {"batch_pairs": b, "tflop": round(model_flops(b) / 1e12, 4)}

        if "ours" in methods:
            engine.control.install(comps.unet)
            row["ours"] = measure(lambda jobs=jobs: run_ours(engine, jobs), device, repeats)
        if "plain" in methods:
            comps.unet.set_attn_processor(AttnProcessor2_0())
            row["plain"] = measure(lambda jobs=jobs: run_plain(pipe, engine, jobs), device,
                                   repeats)
        if "naive" in methods:
            comps.unet.set_attn_processor(dict(naive_procs))
            row["naive"] = measure(lambda jobs=jobs: run_naive(comps, engine, holder, jobs),
                                   device, repeats)
        results.append(row)

    # Agreement, on one pair: the naive published code and ours make the same counterfactual,
    # and the plain pipeline and ours the same factual image (in this run's dtype and device).
    import numpy as np

    def pixel_diff(a: Any, b: Any) -> Any:
        return np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))

    agreement: dict[str, Any] = {}
    check = make_jobs(comps, 1)
    ours_images = None
    if "ours" in methods or "ours" in compiled:
        engine.control.install(comps.unet)
        ours_images = engine.run(check)[0].images
    if "ours" in methods and ("naive" in methods or "plain" in methods):
        assert ours_images is not None
        if "naive" in methods:
            comps.unet.set_attn_processor(dict(naive_procs))
            diff = pixel_diff(ours_images[1], run_naive(comps, engine, holder, check)[1])
            agreement |= {"ours_vs_naive_counterfactual_max_pixel_diff": int(diff.max()),
                          "ours_vs_naive_counterfactual_mean_pixel_diff":
                          round(float(diff.mean()), 4)}
        if "plain" in methods:
            comps.unet.set_attn_processor(AttnProcessor2_0())
            diff = pixel_diff(ours_images[0], run_plain(pipe, engine, check)[0])
            agreement |= {"ours_vs_plain_factual_max_pixel_diff": int(diff.max()),
                          "ours_vs_plain_factual_mean_pixel_diff": round(float(diff.mean()), 4)}
    engine.close()

    # Compiled: after every eager measurement, since compiling changes the UNet in place.
    compile_info: dict[str, Any] = {}
    if compiled:
        from diffusers.models.attention_processor import FusedAttnProcessor2_0
        from torch._dynamo.utils import counters

        counters.clear()
        options = CompileOptions(mode=args.compile_mode)
        fast = Engine(comps, device, dtype, engine.settings, compile=options)
        ours_procs = dict(comps.unet.attn_processors)  # the same objects: no retrace
        fast_pipe = make_pipeline(comps, fast, torch.compile(
            comps.unet, mode=options.resolved_mode(device), dynamic=False), dtype)
        wanted = (set(batches) if args.compile_batches is None
                  else {int(b) for b in args.compile_batches.split(",")})
        for row in results:
            if row["batch_pairs"] not in wanted:
                continue
            jobs = make_jobs(comps, row["batch_pairs"])
            if "ours" in compiled:
                comps.unet.set_attn_processor(dict(ours_procs))
                row["ours_compiled"] = measure(lambda jobs=jobs: run_ours(fast, jobs), device,
                                               repeats)
            if "plain" in compiled:
                comps.unet.set_attn_processor(FusedAttnProcessor2_0())
                row["plain_compiled"] = measure(lambda jobs=jobs: run_plain(fast_pipe, fast,
                                                                            jobs),
                                                device, repeats)
        for key in ("ours", "plain"):
            if key in compiled:
                compile_info[key] = round(sum(
                    r[f"{key}_compiled"]["first_seconds"] - r[f"{key}_compiled"]["seconds"]
                    for r in results if f"{key}_compiled" in r), 2)
        if "ours" in compiled:
            comps.unet.set_attn_processor(dict(ours_procs))
            images = fast.run(check)[0].images
            if ours_images is not None:
                diff = np.maximum(pixel_diff(images[0], ours_images[0]),
                                  pixel_diff(images[1], ours_images[1]))
                agreement |= {"ours_compiled_vs_eager_max_pixel_diff": int(diff.max()),
                              "ours_compiled_vs_eager_mean_pixel_diff":
                              round(float(diff.mean()), 4)}
        fast.close()
        compile_info |= {"mode": options.resolved_mode(device),
                         "unique_graphs": int(counters["stats"]["unique_graphs"]),
                         "graph_breaks": int(sum(counters["graph_break"].values()))}

    every = [*methods, *(f"{m}_compiled" for m in compiled)]
    for row in results:
        b = row["batch_pairs"]
        for key in (k for k in every if k in row):
            row[key]["pairs_per_s"] = round(b / row[key]["seconds"], 4)
            row[key] |= achieved(row["tflop"] * 1e12, row[key]["seconds"], peak["tflops"])
            row[key]["seconds"] = round(row[key]["seconds"], 4)
        ratios = {"overhead_vs_plain": ("ours", "plain"), "speedup_vs_naive": ("naive", "ours"),
                  "compiled_speedup": ("ours", "ours_compiled"),
                  "compiled_overhead_vs_plain_compiled": ("ours_compiled", "plain_compiled"),
                  "compiled_vs_eager_plain": ("ours_compiled", "plain")}
        for name, (num, den) in ratios.items():
            if num in row and den in row:
                row[name] = round(row[num]["seconds"] / row[den]["seconds"], 3)
        if not args.json:
            parts = [f"{key} {row[key]['pairs_per_s']:8.3f} pairs/s "
                     f"{row[key]['tflops']:7.2f} TFLOP/s ({100 * row[key]['of_peak']:.0f}% "
                     f"of peak, {row[key]['peak_mib']:.0f} MiB)" for key in every if key in row]
            parts += [f"{key} x{row[key]}" for key in ratios if key in row]
            print(f"B={b:2d}  " + "\n      ".join(parts), file=sys.stderr)

    report = {
        "benchmark": "generate",
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "model": model,
        "dtype": str(dtype).replace("torch.", ""),
        "resolution": size,
        "steps": steps,
        "guidance": engine.settings.guidance,
        "repeats": repeats,
        "torch": torch.__version__,
        "peak": peak,
        "flops": flops,
        "compile_seconds": compile_info,
        "results": results,
        **agreement,
    }
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
