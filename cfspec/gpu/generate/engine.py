"""The batched denoising loop: many independent pairs per UNet call, P2P-controlled.

Each job is one (pair, seed). A set is jobs that share their factual image: the same factual
prompt, seed and guidance (`cfspec.workspace.batching`: the pairs of one (group, seed)). `run_sets`
gives each set one factual row and each of its jobs one edited row, edited against that factual
row (K + 1 image rows for K counterfactuals); `run` is the per-pair layout, every job a set of
its own (2 rows per job). The initial noise of a set comes from its own CPU `torch.Generator`
seeded with the seed, and all its images start from that same noise, so an image never depends
on the batch it ran in, its position there or the number of processes. (That is also how
`StableDiffusionPipeline(generator=torch.Generator("cpu").manual_seed(seed))` draws an fp32
image's latents, so the factual image is the plain pipeline's image for that seed.)

Guidance may differ per set (sampled per (group, seed)); a batch whose sets all use one value
takes diffusers' own scalar classifier-free guidance, so fixed guidance stays exactly the plain
pipeline's arithmetic.

`Engine(..., compile=CompileOptions())` runs the UNet through `torch.compile` with the P2P
processors in their compiled form (`p2p_processor` doc): one graph per batch shape, CUDA graphs on
CUDA, q/k/v projections fused, channels-last convolutions. Its images equal the eager ones
within the dtype's rounding (the kernels differ); `compile_seconds` is the time the first call
of each batch shape took (tracing and compiling, or loading them from the inductor cache).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cfspec.gpu.generate.edit_plan import MAX_TOKENS, EditPlan
from cfspec.gpu.generate.p2p import P2PControl
from cfspec.gpu.generate.p2p_batch import BatchEdit
from cfspec.gpu.generate.weights import Components, make_scheduler
from cfspec.workspace.store import BLEND_START  # plan reads the same defaults without torch

STEP_NOISE_SALT = 0x5EED  # stochastic schedulers draw step noise from seed ^ salt


@dataclass(frozen=True, eq=False)
class Start:
    """Where an inverted photo's denoising starts (gpu/generate/inversion.py): `latents`
    (1, C, h, w) x_T instead of the seed's noise, `uncond` (steps, 77, D) the unconditional
    context of each step instead of the empty prompt's, shared by the set's rows (as the
    notebook's `text2image_ldm_stable` with `uncond_embeddings`). `key` names the inversion."""

    key: str
    latents: torch.Tensor
    uncond: torch.Tensor


@dataclass(frozen=True)
class Job:
    pair_id: str
    seed: int
    plan: EditPlan
    guidance: float | None = None  # None: the run's (Settings.guidance)
    start: Start | None = None  # an inverted photo's; None: the seed's noise


@dataclass
class JobOutput:
    job: Job
    images: tuple[Any, Any]  # PIL images, factual and counterfactual
    latents: np.ndarray  # (2, C, h, w) float32, the final latents before decoding
    attention: np.ndarray  # (2, h', w') float32, the blend words' attention, max-normalised
    mask: np.ndarray  # (h, w) uint8, LocalBlend's final mask at latent resolution


@dataclass(frozen=True)
class Settings:
    scheduler: str = "ddim"
    steps: int = 50
    guidance: float = 7.5
    height: int | None = None
    width: int | None = None
    blend_start: float | None = None  # None: the profile's default (BLEND_START)
    eta: float = 0.0
    compat: str = "cfspec"  # or "published": google/prompt-to-prompt's behaviour exactly

    @property
    def resolved_blend_start(self) -> float:
        return BLEND_START[self.compat] if self.blend_start is None else self.blend_start


@dataclass(frozen=True)
class CompileOptions:
    """How `Engine` compiles the UNet (`torch.compile`, inductor).

    mode None: `reduce-overhead` (CUDA graphs) on CUDA, inductor's default elsewhere.
    `fp8`: float8 weights and activations in the UNet's linear layers (torchao, Hopper or
    newer): faster, and it changes the images (not only their rounding)."""

    mode: str | None = None
    fullgraph: bool = False
    backend: str = "inductor"  # "eager" / "aot_eager": dynamo's tracing alone (tests)
    fuse_qkv: bool = True
    channels_last: bool = True
    fp8: bool = False

    def resolved_mode(self, device: torch.device) -> str:
        if self.mode is not None:
            return self.mode
        return "reduce-overhead" if device.type == "cuda" else "default"


def _start_key(job: Job) -> str | None:
    return None if job.start is None else job.start.key


def prepare_for_compile(unet: Any, options: CompileOptions, device: torch.device) -> None:
    """Change the UNet in place for compiled runs: fused q/k/v projections (the weights are
    concatenated once; the separate ones stay for processors that read them), channels-last
    weights, and float8 linear layers if asked. Idempotent."""
    if options.fuse_qkv:
        from diffusers.models.attention_processor import Attention

        for module in unet.modules():
            if isinstance(module, Attention) and not getattr(module, "fused_projections", False):
                module.fuse_projections()
                module.requires_grad_(False)
    if options.channels_last:
        unet.to(memory_format=torch.channels_last)
    if options.fp8:
        quantize_fp8(unet, device)
    # Inductor: 1x1 convolutions as matmuls (diffusers' advice for the SD UNet), and room for
    # one graph per batch shape (a run has a few: full batches, the last one, set layouts).
    import torch._inductor.config as inductor_config

    inductor_config.conv_1x1_as_mm = True
    dynamo_config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, max(int(getattr(dynamo_config, name)), 64))


def quantize_fp8(unet: Any, device: torch.device) -> None:
    """torchao's float8 dynamic-activation, float8-weight quantization of the UNet's linear
    layers. Needs torchao and a GPU of compute capability 8.9 or more (Ada, Hopper)."""
    if device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9):
        raise ValueError("fp8 needs a CUDA GPU of compute capability 8.9 or newer (Ada, Hopper)")
    try:
        from torchao.quantization import (  # type: ignore[import-not-found]
            Float8DynamicActivationFloat8WeightConfig,
            quantize_,
        )
    except ImportError:
        raise ValueError("fp8 needs torchao (pip install torchao)") from None
    quantize_(unet, Float8DynamicActivationFloat8WeightConfig(),
              filter_fn=lambda module, _name: isinstance(module, torch.nn.Linear))


PUBLISHED_SELF_QUERIES = 16**2  # replace_self_attention: `att_replace.shape[2] <= 16 ** 2`


def classifier_free(uncond: torch.Tensor, text: torch.Tensor, scale: float | torch.Tensor
                    ) -> torch.Tensor:
    """uncond + scale * (text - uncond). A float is diffusers' own scalar arithmetic; a
    (rows, 1, 1, 1) fp32 tensor gives each row what that row's scalar would: PyTorch multiplies
    a half or bfloat16 tensor by a Python scalar in fp32 and rounds the product once."""
    if isinstance(scale, float):
        return uncond + scale * (text - uncond)
    return uncond + ((text - uncond).float() * scale).to(text.dtype)


class Engine:
    """Drives a model's components through the P2P loop, one batch of jobs at a time."""

    def __init__(self, comps: Components, device: torch.device, dtype: torch.dtype,
                 settings: Settings, compile: CompileOptions | None = None) -> None:
        self.comps = comps
        self.device = device
        self.dtype = dtype
        self.settings = settings
        factor = comps.vae_scale_factor
        self.height = settings.height or comps.default_size
        self.width = settings.width or comps.default_size
        if self.height % factor or self.width % factor:
            raise ValueError(f"height and width must be multiples of {factor} for this model")
        self.latent_shape = (int(comps.unet.config.in_channels), self.height // factor,
                             self.width // factor)
        self.scheduler = make_scheduler(settings.scheduler, comps.scheduler)
        self.control = P2PControl()
        self.control.install(comps.unet)
        self.compile = compile
        self.compile_seconds = 0.0
        self._compiled: Any = None
        self._cudagraphs = False
        self._compiled_shapes: set[tuple[int, ...]] = set()
        self._uncond, self._uncond_pooled = self._unconditional()
        self._time_ids = self._make_time_ids()
        self.control.probe(comps.unet, self.latent_shape, self._uncond,
                           self._added(self._uncond_pooled, 1))
        if compile is not None:
            prepare_for_compile(comps.unet, compile, device)
            self.control.static = True  # after the probe, which runs eagerly
            inductor = compile.backend == "inductor"
            mode = compile.resolved_mode(device) if inductor else None
            self._cudagraphs = mode is not None and "reduce-overhead" in mode
            self._compiled = torch.compile(comps.unet, backend=compile.backend, mode=mode,
                                           fullgraph=compile.fullgraph, dynamic=False)
        step_params = set(inspect.signature(self.scheduler.step).parameters)
        self._takes_eta = "eta" in step_params
        self._takes_generator = "generator" in step_params

    def close(self) -> None:
        """Put the UNet's original attention processors back."""
        self.control.restore(self.comps.unet)

    def _uncond_ids(self, tok: Any = None) -> list[int]:
        tok = self.comps.tokenizer if tok is None else tok
        ids = tok([""], padding="max_length", max_length=MAX_TOKENS, truncation=True).input_ids
        return list(ids[0])

    def _unconditional(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The unconditional branch's context (1, 77, D) and, for SDXL, pooled embedding: the
        empty prompt's, or zeros where the pipeline says `force_zeros_for_empty_prompt`."""
        comps = self.comps
        if not comps.is_xl:
            return self._encode([self._uncond_ids()])
        context, pooled = self._encode([self._uncond_ids()],
                                       [self._uncond_ids(comps.tokenizer_2)])
        if comps.force_zeros_for_empty_prompt and pooled is not None:
            context, pooled = torch.zeros_like(context), torch.zeros_like(pooled)
        return context, pooled

    def _make_time_ids(self) -> torch.Tensor | None:
        """SDXL's micro-conditioning, as its pipeline's defaults: original size = target size
        = (height, width), crop corner (0, 0)."""
        unet = self.comps.unet
        if getattr(unet.config, "addition_embed_type", None) != "text_time":
            return None
        ids = [self.height, self.width, 0, 0, self.height, self.width]
        pooled = int(self._uncond_pooled.shape[-1]) if self._uncond_pooled is not None else 0
        expected = int(unet.add_embedding.linear_1.in_features)
        passed = int(unet.config.addition_time_embed_dim) * len(ids) + pooled
        if passed != expected:
            raise ValueError(f"the UNet expects {expected} added conditioning values, but "
                             f"the time ids and the pooled text embedding give {passed}")
        return torch.tensor([ids], dtype=self.dtype, device=self.device)

    def _added(self, pooled: torch.Tensor | None, rows: int) -> dict[str, torch.Tensor] | None:
        """The UNet's `added_cond_kwargs` for `rows` batch rows (None for SD 1.x/2.x)."""
        if self._time_ids is None or pooled is None:
            return None
        return {"text_embeds": pooled, "time_ids": self._time_ids.expand(rows, -1)}

    @torch.inference_mode()
    def _encode(self, ids: Sequence[Sequence[int]], ids_2: Sequence[Sequence[int]] = ()
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(context, pooled): SD 1.x/2.x's last hidden state, pooled None; SDXL's two encoders'
        penultimate hidden states side by side, and the second's projected pooled output
        (what StableDiffusionXLPipeline.encode_prompt computes)."""
        comps = self.comps
        encoder = comps.text_encoder
        tensor = torch.tensor([list(i) for i in ids], dtype=torch.long, device=self.device)
        if not comps.is_xl:
            mask = None
            if getattr(encoder.config, "use_attention_mask", False):
                pad = comps.tokenizer.pad_token_id
                mask = (tensor != pad).long()
            out = encoder(tensor, attention_mask=mask)[0]
            return out.to(self.dtype), None
        tensor_2 = torch.tensor([list(i) for i in ids_2], dtype=torch.long, device=self.device)
        if tensor_2.shape != tensor.shape:
            raise ValueError("SDXL needs the second tokenizer's ids of every prompt")
        first = encoder(tensor, output_hidden_states=True)
        second = comps.text_encoder_2(tensor_2, output_hidden_states=True)
        context = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
        return context.to(self.dtype), second[0].to(self.dtype)

    def initial_noise(self, seed: int) -> torch.Tensor:
        """(1, C, h, w) fp32 on the CPU, from the job's own generator."""
        generator = torch.Generator("cpu").manual_seed(int(seed))
        return torch.randn((1, *self.latent_shape), generator=generator, dtype=torch.float32)

    def run(self, jobs: Sequence[Job]) -> list[JobOutput]:
        """Generate both images of every job, all in one UNet batch, each job with its own
        factual row (the per-pair layout: 2 image rows per job)."""
        return self.run_sets([[job] for job in jobs])

    def _guidance(self, job: Job) -> float:
        return self.settings.guidance if job.guidance is None else float(job.guidance)

    @torch.inference_mode()
    def run_sets(self, sets: Sequence[Sequence[Job]]) -> list[JobOutput]:
        """Generate every job of every set in one UNet batch: one factual row per set, one
        edited row per job, edited against its set's factual row. The jobs of a set must share
        the factual prompt, the seed and the guidance. Outputs in the order of the jobs."""
        comps, settings, control = self.comps, self.settings, self.control
        if not sets:
            return []
        jobs = [job for members in sets for job in members]
        bases = [n for n, members in enumerate(sets) for _ in members]
        firsts = [members[0] for members in sets if members]
        if len(firsts) != len(sets):
            raise ValueError("a set without jobs")
        self._check_sets(sets)
        f, b = len(sets), len(jobs)
        n = f + b  # image rows
        scales = [self._guidance(j) for j in firsts]
        scales += [scales[k] for k in bases]
        guided = scales[0] > 1.0  # as diffusers: no unconditional pass at 1
        if any((g > 1.0) != guided for g in scales):
            raise ValueError("one batch cannot mix guidance above 1 with guidance of at most 1")
        scheduler = self.scheduler
        control.install(comps.unet)  # another engine may share this UNet

        # 1. Encode the prompts: rows [factual of each set, counterfactual of each job]
        cond, pooled = self._encode([j.plan.ids_0 for j in firsts] + [j.plan.ids_1 for j in jobs],
                                    [j.plan.ids2_0 for j in firsts]
                                    + [j.plan.ids2_1 for j in jobs] if comps.is_xl else ())
        context = torch.cat([self._uncond.expand(n, -1, -1), cond]) if guided else cond
        if pooled is not None and self._uncond_pooled is not None and guided:
            pooled = torch.cat([self._uncond_pooled.expand(n, -1), pooled])
        added = self._added(pooled, context.shape[0])
        # One scale for the batch: diffusers' scalar; else one per row, as that scalar would be
        # applied to the row (the product in fp32, rounded to the latents' dtype).
        scale: float | torch.Tensor = scales[0]
        if len(set(scales)) > 1:
            scale = torch.tensor(scales, dtype=torch.float32, device=self.device).view(-1, 1, 1, 1)

        # 2. Prepare the timesteps (a fresh schedule resets multistep schedulers' state)
        scheduler.set_timesteps(settings.steps, device=self.device)
        timesteps = scheduler.timesteps
        num_steps = len(timesteps)

        starts = [j.start for j in firsts]
        uncond_steps = self._inverted_context(starts, bases, num_steps, guided)

        # 3. Prepare the latents: every image of a set starts from the set's own noise (or
        # its photo's inverted latents, which DDIM does not scale)
        noise = torch.cat([self.initial_noise(j.seed) if j.start is None
                           else j.start.latents.float().cpu() / scheduler.init_noise_sigma
                           for j in firsts])
        latents = torch.cat([noise, noise[bases]]).to(self.device, self.dtype)
        latents = latents * scheduler.init_noise_sigma
        extra: dict[str, Any] = {}
        if self._takes_eta:
            extra["eta"] = settings.eta
        if self._takes_generator:
            # Identical step noise for every image of a set, independent of the batch.
            seeds = [j.seed for j in firsts] + [firsts[k].seed for k in bases]
            extra["generator"] = [torch.Generator("cpu").manual_seed(s ^ STEP_NOISE_SALT)
                                  for s in seeds]

        # 4. Set up the attention control for this batch. Windows are fractions of the steps
        # run (cfspec) or of the steps asked for (published: NUM_DDIM_STEPS, which PNDM's
        # extra step outruns).
        window_steps = settings.steps if settings.compat == "published" else num_steps
        control.begin(BatchEdit([j.plan for j in jobs], window_steps, self.device, guided,
                                settings.resolved_blend_start,
                                edited_blend=settings.compat == "published",
                                self_queries=PUBLISHED_SELF_QUERIES
                                if settings.compat == "published" else None, bases=bases))
        try:
            # 5. Denoising loop
            for i, t in enumerate(timesteps):
                # 5.1 expand the latents for classifier-free guidance
                model_input = torch.cat([latents, latents]) if guided else latents
                model_input = scheduler.scale_model_input(model_input, t)
                # 5.2 tell the processors which step this is (edit windows are per step)
                control.set_step(i)
                # 5.3 predict the noise residual (or v, for v-prediction models); an inverted
                # photo's rows take their step's unconditional context
                if uncond_steps is not None:
                    context = torch.cat([uncond_steps[i], cond])
                pred = self._unet(model_input, t, context, added)
                # 5.4 classifier-free guidance
                if guided:
                    uncond, text = pred.chunk(2)
                    pred = classifier_free(uncond, text, scale)
                # 5.5 compute the previous noisy sample x_t -> x_t-1
                latents = scheduler.step(pred, t, latents, **extra).prev_sample
                # 5.6 LocalBlend: outside the changed words' region, copy the factual latents
                latents = control.local_blend(latents, i)

            # 6. Keep what evaluation needs: final latents, attention maps and the blend mask
            maps = control.attention_maps()
            assert maps is not None
            size = (self.latent_shape[1], self.latent_shape[2])
            masks = torch.zeros(b, 1, *size, dtype=torch.bool, device=self.device)
            blend_rows = control.blend_rows
            if blend_rows is not None:
                masks[blend_rows] = control.masks(blend_rows, size)
        finally:
            control.end()

        # 7. Decode the latents into images
        images = self._decode(latents)
        final = latents.float().cpu().numpy()
        maps_np = maps.float().cpu().numpy()
        masks_np = masks[:, 0].cpu().numpy().astype(np.uint8)
        outputs = []
        for j, job in enumerate(jobs):
            k = bases[j]
            outputs.append(JobOutput(
                job=job,
                images=(images[k], images[f + j]),
                latents=np.stack([final[k], final[f + j]]),
                attention=maps_np[j],
                mask=masks_np[j],
            ))
        return outputs

    def _check_sets(self, sets: Sequence[Sequence[Job]]) -> None:
        for members in sets:
            head = members[0]
            for job in members[1:]:
                if (job.seed, job.plan.ids_0, job.plan.ids2_0) != (
                        head.seed, head.plan.ids_0, head.plan.ids2_0) or \
                        self._guidance(job) != self._guidance(head) or \
                        _start_key(job) != _start_key(head):
                    raise ValueError(f"{job.pair_id} and {head.pair_id} cannot share a factual "
                                     "row: their factual prompt, seed, guidance or photo differ")

    def _inverted_context(self, starts: Sequence[Start | None], bases: Sequence[int],
                          num_steps: int, guided: bool) -> torch.Tensor | None:
        """(steps, rows, 77, D): each image row's unconditional context per step (rows:
        the sets' factual rows, then the jobs' edited rows), or None when no set starts from
        a photo (the plain path, unchanged)."""
        if all(s is None for s in starts):
            return None
        if not guided:
            raise ValueError("an inverted photo needs guidance above 1")
        if type(self.scheduler).__name__ != "DDIMScheduler":
            raise ValueError("an inverted photo needs --scheduler ddim (the inversion retraces "
                             "DDIM's steps)")
        plain = self._uncond[0].expand(num_steps, -1, -1)
        per_set = []
        for start in starts:
            if start is not None and start.uncond.shape[0] != num_steps:
                raise ValueError(f"the inversion has {start.uncond.shape[0]} steps, the run "
                                 f"{num_steps}")
            per_set.append(plain if start is None
                           else start.uncond.to(self.device, self.dtype))
        rows = list(range(len(starts))) + list(bases)
        return torch.stack([per_set[k] for k in rows], dim=1)

    def _unet(self, sample: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
              added: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """The UNet's prediction, eagerly or through the compiled graph."""
        if self._compiled is None:
            return self.comps.unet(sample, t, encoder_hidden_states=context,
                                   added_cond_kwargs=added).sample  # type: ignore[no-any-return]
        shape = tuple(sample.shape)
        first = shape not in self._compiled_shapes
        if first:
            started = time.perf_counter()
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()  # last step's outputs are consumed
        pred = self._compiled(sample, t, encoder_hidden_states=context,
                              added_cond_kwargs=added, return_dict=False)[0]
        self.control.flush()  # the blend-map terms, before the next replay reuses them
        if first:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.compile_seconds += time.perf_counter() - started
            self._compiled_shapes.add(shape)
        return pred  # type: ignore[no-any-return]

    def _decode(self, latents: torch.Tensor, chunk: int = 8) -> list[Any]:
        from PIL import Image

        vae = self.comps.vae
        scale = float(vae.config.scaling_factor)
        # Some SDXL-derived VAEs normalise latents per channel: undone as StableDiffusionXL-
        # Pipeline does (StableDiffusionPipeline ignores these settings).
        mean = getattr(vae.config, "latents_mean", None) if self.comps.is_xl else None
        std = getattr(vae.config, "latents_std", None) if self.comps.is_xl else None
        out: list[Any] = []
        for start in range(0, latents.shape[0], chunk):  # chunks bound the VAE's peak memory
            # The VAE may be in fp32 under an fp16 UNet (force_upcast): decode in its dtype.
            part = latents[start : start + chunk].to(vae.dtype)
            if mean is not None and std is not None:
                shape = (1, len(mean), 1, 1)
                part = (part * torch.tensor(std, dtype=part.dtype, device=part.device).view(shape)
                        / scale + torch.tensor(mean, dtype=part.dtype,
                                               device=part.device).view(shape))
            else:
                part = part / scale
            pixels = vae.decode(part, return_dict=False)[0]
            pixels = (pixels / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
            for array in pixels:
                out.append(Image.fromarray((array * 255).round().astype(np.uint8)))
        return out
