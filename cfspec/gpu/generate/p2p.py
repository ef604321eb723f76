"""Prompt-to-Prompt attention control as diffusers attention processors.

One `P2PAttnProcessor` per attention layer of the UNet (installed with `unet.set_attn_processor`,
keyed by the processor names diffusers gives, so nothing depends on module classes), all sharing
one `P2PControl` that knows the current batch of pairs and the current denoising step.

The processors are `cfspec.gpu.generate.p2p_processor` (how each layer edits, fused where
it can, and the compiled form); the batch's edit maps are `cfspec.gpu.generate.p2p_batch`
(which rows are factual and which are edited).

Published semantics, per pair and step (attn_0: its base's factual conditional probabilities,
attn_1: the counterfactual's own, alpha: 1 inside the cross-attention window of a prompt_1 column):

* replace:  edit = einsum(attn_0, mapper)
* refine:   edit = attn_0[..., mapper] * keep + attn_1 * (1 - keep)
* reweight: edit = (replace or refine edit) * equalizer   (P2P's AttentionReweight on top of
  a replace or refine controller; with an identity mapper this is attn_0 * equalizer, and on
  a refine it scales inserted words too)
* cross layers: attn_1 <- alpha * edit + (1 - alpha) * attn_1
* self layers, inside the self window, for maps no larger than the blend resolution:
  attn_1 <- attn_0
* LocalBlend after each step from `blend_start` on: the blend words' cross-attention summed over
  heads, layers and the steps so far at the blend resolution, 3x3 max-pooled, resized to the
  latent, divided by its maximum, thresholded; mask = mask_0 | mask_1;
  x_1 <- x_0 + mask * (x_1 - x_0). The counterfactual's maps are read before the edit (cfspec)
  or after it (`published`, as the published AttentionStore ends up holding).

The blend resolution is the cross-attention map size nearest to a quarter of the latent's side
(16x16 for 512x512 Stable Diffusion, as P2P hard-codes), found by probing the UNet once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cfspec.gpu.generate.p2p_batch import BatchEdit, StepInputs
from cfspec.gpu.generate.p2p_processor import AttentionHook, LayerInfo, P2PAttnProcessor


@dataclass
class _Selection:
    """The pairs a cross-attention layer handles explicitly at one step. Every index is a device
    tensor made once per batch, so no layer copies indices from the host."""

    rows: torch.Tensor  # batch rows of these pairs: factual conditional ones, then the
    # counterfactual conditional ones (one gather, one matmul for both)
    count: int  # how many pairs
    factuals: int  # how many factual rows lead `rows`: `count`, or fewer where pairs share one
    base_of: torch.Tensor | None  # each pair's factual among them; None: the i-th is the i-th's
    edit: torch.Tensor | None  # positions (in rows_*) that are edited; None: all of them
    edit_jobs: torch.Tensor | None  # the edited pairs; None: nothing is edited
    edit_rows_1: torch.Tensor | None  # their counterfactual conditional rows
    record: torch.Tensor | None  # positions whose maps LocalBlend accumulates; None: none
    record_jobs: torch.Tensor | None
    all_edited: bool  # every pair of the batch is edited: the fused part is one slice
    source: torch.Tensor | None  # fused rows: each row's query/key row (identity edits)
    fused_jobs: torch.Tensor | None  # pairs edited through `source`
    fused_in_rows: torch.Tensor | None  # positions (in rows_*) of recorded pairs edited fused


class P2PControl:
    """Shared state of the P2P processors: layers found by the probe, the batch, the step."""

    def __init__(self, static: bool = False) -> None:
        # static: the compiled form (p2p_processor's doc); the step's switches are `StepInputs`.
        self.static = static
        self.layers: dict[str, LayerInfo] = {}
        self.batch: BatchEdit | None = None
        self.step = 0
        self.hook: AttentionHook | None = None
        self.blend_queries = 0
        self.blend_shape = (0, 0)
        self.blend_layers: set[str] = set()
        self._probing = False
        # Per step: the cross selections (plain layer, blend layer) and the self-attention
        # source rows, all built in `begin`.
        self._plan: list[tuple[_Selection | None, _Selection | None, torch.Tensor | None,
                               torch.Tensor | None]] = []
        self._cross: tuple[_Selection | None, _Selection | None] = (None, None)
        self._self: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        self._blend_rows: torch.Tensor | None = None
        self._blend_active: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None] = []
        self._saved: dict[str, Any] | None = None
        self._steps: list[StepInputs] = []  # static: per step
        self.now: StepInputs | None = None  # static: this step's
        self.pending: list[torch.Tensor] = []  # static: blend-map terms of the last UNet call

    # -- installation -------------------------------------------------------------------------

    def install(self, unet: Any) -> None:
        """Put a P2P processor of this control on every attention layer, unless they are there.
        The processors found the first time (if not P2P ones) are kept for `restore`."""
        current = unet.attn_processors
        if all(isinstance(p, P2PAttnProcessor) and p.control is self for p in current.values()):
            return
        if self._saved is None:
            mine = any(isinstance(p, P2PAttnProcessor) for p in current.values())
            self._saved = {} if mine else dict(current)
        unet.set_attn_processor({name: P2PAttnProcessor(self, name) for name in current})

    def restore(self, unet: Any) -> None:
        """Back to the processors found at `install` (AttnProcessor2_0 if those were P2P)."""
        if self._saved is None:
            return
        if self._saved:
            unet.set_attn_processor(dict(self._saved))
        else:
            from diffusers.models.attention_processor import AttnProcessor2_0

            unet.set_attn_processor(AttnProcessor2_0())
        self._saved = None

    def probe(self, unet: Any, latent_shape: tuple[int, int, int], context: torch.Tensor,
              added: dict[str, torch.Tensor] | None = None) -> None:
        """One forward pass to learn each layer's kind and query count, then pick the blend
        resolution: the cross-attention map nearest to (latent side / 4)^2 (16x16 for SD 1.x
        at 512 px, 32x32 for SDXL at 1024 px). `added`: SDXL's added conditioning, one row."""
        channels, height, width = latent_shape
        self.layers = {}
        self._probing = True
        try:
            sample = torch.zeros(1, channels, height, width, device=context.device,
                                 dtype=context.dtype)
            with torch.inference_mode():
                unet(sample, 0, encoder_hidden_states=context[:1], added_cond_kwargs=added)
        finally:
            self._probing = False
        cross = sorted({i.queries for i in self.layers.values() if i.is_cross})
        if not cross:
            raise RuntimeError("the UNet has no cross-attention layers to control")
        target = height * width / 16.0
        self.blend_queries = min(cross, key=lambda q: (abs(math.log(q / target)), -q))
        self.blend_shape = _map_shape(height, width, self.blend_queries)
        at_blend = {n for n, i in self.layers.items() if i.is_cross
                    and i.queries == self.blend_queries}
        # P2P reads the down and up blocks; the middle block only if nothing else has that size.
        self.blend_layers = {n for n in at_blend if not n.startswith("mid_block")} or at_blend

    # -- per batch and per step ---------------------------------------------------------------

    def begin(self, batch: BatchEdit) -> None:
        """Take a batch: build every step's index tensors now, once."""
        if not self.layers:
            raise RuntimeError("P2PControl.probe() must run before begin()")
        self.batch = batch
        batch.maps = torch.zeros(batch.size, 2, self.blend_queries, dtype=torch.float32,
                                 device=batch.device)
        dev = batch.device

        def index(values: Sequence[int]) -> torch.Tensor:
            return torch.tensor(list(values), dtype=torch.long, device=dev)

        cache: dict[tuple[Any, ...], Any] = {}
        base = batch.bases

        def cross(edit: tuple[int, ...], fused: tuple[int, ...], record: tuple[int, ...]
                  ) -> _Selection | None:
            key = ("cross", edit, fused, record)
            if key not in cache:
                rows = sorted(set(edit) | set(record))
                source = list(range(batch.rows))
                for j in fused:
                    source[batch.cond_1 + j] = batch.cond_0 + base[j]
                # Pairs that share a factual row: its probabilities are computed once.
                shared = list(dict.fromkeys(base[j] for j in rows))
                factuals = shared if len(shared) < len(rows) else [base[j] for j in rows]
                cache[key] = None if not rows and not fused else _Selection(
                    rows=index([batch.cond_0 + f for f in factuals]
                               + [batch.cond_1 + j for j in rows]),
                    count=len(rows),
                    factuals=len(factuals),
                    base_of=(index([shared.index(base[j]) for j in rows])
                             if len(shared) < len(rows) else None),
                    edit=None if list(edit) == rows else index([rows.index(j) for j in edit]),
                    edit_jobs=index(edit) if edit else None,
                    edit_rows_1=index([batch.cond_1 + j for j in edit]) if edit else None,
                    record=index([rows.index(j) for j in record]) if record else None,
                    record_jobs=index(record) if record else None,
                    all_edited=len(edit) == batch.size,
                    source=index(source) if fused else None,
                    fused_jobs=index(fused) if fused else None,
                    fused_in_rows=(index([rows.index(j) for j in fused if j in rows])
                                   if set(fused) & set(rows) else None),
                )
            return cache[key]  # type: ignore[no-any-return]

        def self_rows(jobs: tuple[int, ...]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
            key = ("self", jobs)
            if key not in cache:
                if not jobs:
                    cache[key] = (None, None)
                else:
                    source = list(range(batch.rows))
                    for j in jobs:
                        source[batch.cond_1 + j] = batch.cond_0 + base[j]
                    cache[key] = (index(source), index(jobs))
            return cache[key]  # type: ignore[no-any-return]

        blend = tuple(batch.blend_jobs)
        self._plan = []
        for step in range(batch.num_steps + 1):
            explicit, fused = (tuple(j) for j in batch.cross_jobs(step))
            self._plan.append((cross(explicit, fused, ()), cross(explicit, fused, blend),
                               *self_rows(tuple(batch.self_jobs(step)))))
        self._blend_rows = index(blend) if blend else None
        # Per step, the blend pairs whose LocalBlend has started (None: none yet): the pairs,
        # their bases' latent rows and their own latent rows.
        active: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._blend_active = []
        for step in range(batch.num_steps + 1):
            jobs = tuple(j for j in blend if batch.blend_starts[j] <= step)
            if jobs and jobs not in active:
                active[jobs] = (index(jobs), index([base[j] for j in jobs]),
                                index([batch.factuals + j for j in jobs]))
            self._blend_active.append(active.get(jobs) if jobs else None)
        self._steps = self._step_inputs(batch) if self.static else []
        self.set_step(0)

    @staticmethod
    def _step_inputs(batch: BatchEdit) -> list[StepInputs]:
        """The compiled form's switches for every step, made once per batch."""
        steps = []
        for step in range(batch.num_steps + 1):
            explicit, fused = batch.cross_jobs(step)
            on_self = set(batch.self_jobs(step))

            def flags(jobs: Sequence[int] | set[int]) -> torch.Tensor:
                return torch.tensor([j in jobs for j in range(batch.size)], dtype=torch.bool,
                                    device=batch.device)

            steps.append(StepInputs(
                self_on=flags(on_self), fused_on=flags(set(fused)),
                explicit_on=flags(set(explicit)),
                alpha=batch.alpha[:, min(step, batch.num_steps)].contiguous()))
        return steps

    def end(self) -> None:
        self.batch = None
        self._plan = []
        self._cross = (None, None)
        self._self = (None, None)
        self._blend_rows = None
        self._blend_active = []
        self._steps = []
        self.now = None
        self.pending = []

    @property
    def blend_rows(self) -> torch.Tensor | None:
        """The batch's pairs that have LocalBlend words (a device index), or None."""
        return self._blend_rows

    def set_step(self, step: int) -> None:
        """Point the processors at this step's selections (no work, no device traffic)."""
        self.step = step
        if self._steps:
            self.now = self._steps[min(step, len(self._steps) - 1)]
        if self.batch is None or not self._plan:
            return
        plain, blend, source, jobs = self._plan[min(step, len(self._plan) - 1)]
        self._cross = (plain, blend)
        self._self = (source, jobs)

    # -- what the processors ask ---------------------------------------------------------------

    def cross_selection(self, name: str, rows: int) -> _Selection | None:
        batch = self.batch
        if batch is None or rows != batch.rows:
            return None  # not our batch (e.g. someone calls the UNet directly): plain attention
        return self._cross[1] if name in self.blend_layers else self._cross[0]

    def self_selection(self, queries: int, rows: int
                       ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(source row of every batch row, edited pairs), or None when nothing is replaced."""
        batch = self.batch
        if batch is None or rows != batch.rows:
            return None
        limit = self.blend_queries if batch.self_queries is None else batch.self_queries
        if queries > limit:
            return None  # P2P replaces self-attention only on maps up to 16x16 (at 512px)
        source, jobs = self._self
        if source is None or jobs is None:
            return None
        return source, jobs

    def flush(self) -> None:
        """Static: add the blend-map terms the last UNet call handed out, in layer order."""
        batch = self.batch
        if batch is not None and batch.maps is not None:
            for term in self.pending:
                batch.maps.add_(term)
        self.pending = []

    def edit_cross(self, attn_0: torch.Tensor, attn_1: torch.Tensor, jobs: torch.Tensor
                   ) -> torch.Tensor:
        """attn_* (E, heads, queries, 77) fp32 for the pairs `jobs` -> edited attn_1."""
        batch = self.batch
        assert batch is not None
        e, h, q, k = attn_0.shape
        mapped = torch.bmm(attn_0.reshape(e, h * q, k), batch.mapper[jobs]).reshape(e, h, q, k)
        keep = batch.keep[jobs][:, None, None, :]
        # The equalizer scales the refined map as a whole, inserted columns included (as
        # P2P's AttentionReweight on top of AttentionRefine), so an inserted word reweights.
        edit = (mapped + attn_1 * (1.0 - keep)) * batch.equalizer[jobs][:, None, None, :]
        alpha = batch.alpha[jobs, min(self.step, batch.num_steps)][:, None, None, :]
        return alpha * edit + (1.0 - alpha) * attn_1

    def edit_all(self, attn_0: torch.Tensor, attn_1: torch.Tensor, alpha: torch.Tensor
                 ) -> torch.Tensor:
        """`edit_cross` for every pair of the batch, with this step's alpha (E, 77) passed in
        (the compiled form: no index from the host)."""
        batch = self.batch
        assert batch is not None
        e, h, q, k = attn_0.shape
        mapped = torch.bmm(attn_0.reshape(e, h * q, k), batch.mapper).reshape(e, h, q, k)
        keep = batch.keep[:, None, None, :]
        edit = (mapped + attn_1 * (1.0 - keep)) * batch.equalizer[:, None, None, :]
        a = alpha[:, None, None, :]
        return a * edit + (1.0 - a) * attn_1

    def blend_terms(self, attn_0: torch.Tensor, attn_1: torch.Tensor) -> torch.Tensor:
        """(E, 2, queries): what `record` adds, for every pair (zero for pairs without blend
        words)."""
        batch = self.batch
        assert batch is not None
        m0 = torch.einsum("rhqk,rk->rq", attn_0, batch.blend_cols[:, 0])
        m1 = torch.einsum("rhqk,rk->rq", attn_1, batch.blend_cols[:, 1])
        return torch.stack([m0, m1], 1)

    def record(self, rows: torch.Tensor, attn_0: torch.Tensor, attn_1: torch.Tensor) -> None:
        """Add the blend words' attention (summed over words and heads) to the pairs' maps."""
        batch = self.batch
        assert batch is not None and batch.maps is not None
        cols = batch.blend_cols[rows]  # (R, 2, 77)
        m0 = torch.einsum("rhqk,rk->rq", attn_0, cols[:, 0])
        m1 = torch.einsum("rhqk,rk->rq", attn_1, cols[:, 1])
        batch.maps.index_add_(0, rows, torch.stack([m0, m1], 1))

    # -- LocalBlend ----------------------------------------------------------------------------

    def blend_maps(self, rows: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(len(rows), 2, *size): the pairs' accumulated blend-word maps as LocalBlend
        thresholds them: 3x3 max-pooled, resized to `size`, divided by their maximum."""
        batch = self.batch
        assert batch is not None and batch.maps is not None
        n = rows.shape[0]
        maps = batch.maps[rows].reshape(n * 2, 1, *self.blend_shape)
        maps = F.max_pool2d(maps, kernel_size=3, stride=1, padding=1)
        maps = F.interpolate(maps, size=size)
        peak = maps.amax(dim=(2, 3), keepdim=True)
        # An empty word list gives an all-zero map: no mask, rather than 0 / 0.
        maps = torch.where(peak > 0, maps / peak.clamp_min(1e-30), torch.zeros_like(maps))
        return maps.reshape(n, 2, *size)

    def masks(self, rows: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """LocalBlend masks (len(rows), 1, *size), bool, for the pairs `rows`, from the maps
        accumulated so far."""
        batch = self.batch
        assert batch is not None
        over = self.blend_maps(rows, size) > batch.threshold[rows][:, None, None, None]
        return (over[:, 0] | over[:, 1]).unsqueeze(1)

    def local_blend(self, latents: torch.Tensor, step: int) -> torch.Tensor:
        """latents (F + E, C, h, w) = [x_t of every factual row, x_t of every edited row]; each
        edited row blends with its base."""
        batch = self.batch
        if batch is None or not self._blend_active:
            return latents
        active = self._blend_active[min(step, len(self._blend_active) - 1)]
        if active is None:
            return latents
        jobs, rows_0, rows_1 = active
        mask = self.masks(jobs, (latents.shape[2], latents.shape[3])).to(latents.dtype)
        x0, x1 = latents[rows_0], latents[rows_1]
        latents = latents.clone()
        latents[rows_1] = x0 + mask * (x1 - x0)
        return latents

    def attention_maps(self) -> torch.Tensor | None:
        """(B, 2, h, w): each pair's accumulated blend-word attention, each map divided by its
        maximum (zeros where a prompt has no blend words)."""
        batch = self.batch
        if batch is None or batch.maps is None:
            return None
        maps = batch.maps.reshape(batch.size, 2, *self.blend_shape)
        peak = maps.amax(dim=(2, 3), keepdim=True)
        return torch.where(peak > 0, maps / peak.clamp_min(1e-30), torch.zeros_like(maps))


def _map_shape(height: int, width: int, queries: int) -> tuple[int, int]:
    """(h, w) of an attention map with `queries` positions: the latent halved (rounding up, as
    a stride-2 convolution does) until the sizes match."""
    h, w = height, width
    while h * w > queries and (h > 1 or w > 1):
        h, w = (h + 1) // 2, (w + 1) // 2
    if h * w != queries:
        raise RuntimeError(f"cannot place a {queries}-position map in a {height}x{width} latent")
    return h, w
