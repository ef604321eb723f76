"""Prompt-to-Prompt attention control as diffusers attention processors.

One `P2PAttnProcessor` per attention layer of the UNet (installed with `unet.set_attn_processor`,
keyed by the processor names diffusers gives, so nothing depends on module classes), all sharing
one `P2PControl` that knows the current batch of pairs and the current denoising step.

Batch layout (F factual rows, E edited rows, N = F + E images; classifier-free guidance on):
rows `[0, F)` are the factual images' unconditional branch, `[F, N)` the edited (counterfactual)
images', `[N, N + F)` the factual conditional rows and `[N + F, 2N)` the edited conditional rows.
Without guidance only the last two blocks exist. Each edited row j names its base, the factual
row `base[j]` it is edited against: per-pair generation has F = E and base[j] = j (each pair its
own factual); set generation has one factual row per (group, seed) and all of that group's
counterfactuals edited against it, as P2P's own batches (one base prompt, several edited ones).
As in the published code (google/prompt-to-prompt), only the conditional edited rows are ever
edited; the factual image is generated exactly as a plain pipeline would.

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

Speed: a layer that edits nothing runs `F.scaled_dot_product_attention` on every row. A layer
that edits runs it on every row it does not edit. Edits that amount to attn_1 <- attn_0 stay
fused too, since softmax(q_0 k_0^T) v_1 is plain attention with the factual's queries and keys:
self-attention replacement, and cross-attention replacement with an identity mapper (same
token counts, no reweighting) while the whole prompt is inside its window. Only the remaining
cross-attention edits, and the rows LocalBlend must read, compute probabilities explicitly, in
fp32, so fp16 and bf16 runs stay finite.

Compiled (`P2PControl(static=True)`, used by `Engine(compile=...)`): the same edits with no
Python branch that depends on the step or on which pairs are edited, so `torch.compile` traces
one graph per batch shape and CUDA graphs can replay it every step. What changes per step is
a handful of small device tensors (`StepInputs`, graph inputs): which rows take their base's
queries and keys, which pairs are edited explicitly, alpha. Self-attention stays fused, its
edited rows selected with `torch.where`; every cross-attention layer computes the conditional
rows' fp32 probabilities and keeps the edited result only where the step edits (where it does
not, fused attention's result, as eagerly). Blend maps of every pair (zero columns for pairs
without blend words) are handed out as layer outputs (`pending`), added up after the UNet
call in layer order, as the eager path adds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cfspec.gpu.generate.edit_plan import (
    MAX_TOKENS,
    EditPlan,
    cross_alpha,
    dense_mapper,
    self_steps,
)

AttentionHook = Callable[["AttentionEvent"], None]


@dataclass
class AttentionEvent:
    """What an edited layer saw and did (for tests and debugging, via `P2PControl.hook`).

    `jobs` are the batch positions of the edited pairs; `attn_0`, `attn_1` the factual and the
    counterfactual's own probabilities, `edited` what the counterfactual used instead; shapes
    (len(jobs), heads, queries, keys), fp32."""

    layer: str
    step: int
    is_cross: bool
    jobs: list[int]
    attn_0: torch.Tensor
    attn_1: torch.Tensor
    edited: torch.Tensor


@dataclass
class LayerInfo:
    name: str
    is_cross: bool
    queries: int


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


@dataclass
class StepInputs:
    """One step's edit switches for the compiled form, as device tensors (graph inputs):
    `self_on`, `fused_on` (E,) bool: the edited row takes its base's queries and keys in
    self-attention (inside the self window) or cross-attention (an identity edit over the
    whole prompt); `explicit_on` (E,) bool: the pair's cross-attention is edited from explicit
    probabilities; `alpha` (E, 77) fp32: the cross-attention window at this step."""

    self_on: torch.Tensor
    fused_on: torch.Tensor
    explicit_on: torch.Tensor
    alpha: torch.Tensor


class BatchEdit:
    """The edit maps of the E pairs (edited rows) in one UNet batch, as tensors on the device.

    `bases[j]` is the factual row (0 <= bases[j] < factuals) pair j is edited against; None:
    every pair its own factual (bases = 0..E-1), the per-pair layout."""

    def __init__(
        self,
        plans: Sequence[EditPlan],
        num_steps: int,
        device: torch.device,
        guidance: bool,
        blend_start: float,
        edited_blend: bool = False,
        self_queries: int | None = None,
        bases: Sequence[int] | None = None,
    ) -> None:
        self.size = len(plans)
        self.guidance = guidance
        self.num_steps = num_steps
        self.device = device
        b = self.size
        self.bases = list(range(b)) if bases is None else [int(i) for i in bases]
        if len(self.bases) != b:
            raise ValueError("one base (factual row) per edited row")
        self.factuals = max(self.bases, default=-1) + 1
        if sorted(set(self.bases)) != list(range(self.factuals)):
            raise ValueError("every factual row must be the base of some edited row")
        self.images = self.factuals + b  # image rows per branch
        self.cond_0 = self.images if guidance else 0  # the first factual conditional row
        self.cond_1 = self.cond_0 + self.factuals  # the first edited conditional row
        self.rows = 2 * self.images if guidance else self.images
        # Device copies: each edited row's base among the factual rows.
        self.base = torch.tensor(self.bases, dtype=torch.long, device=device)
        self.base_rows = self.base + self.cond_0  # each edited row's factual conditional row
        self.own_factuals = self.bases == list(range(b))  # the per-pair layout
        f32 = torch.float32
        self.mapper = torch.tensor([dense_mapper(p) for p in plans], dtype=f32, device=device)
        self.keep = torch.tensor([p.keep for p in plans], dtype=f32, device=device)
        self.equalizer = torch.tensor([p.equalizer for p in plans], dtype=f32, device=device)
        alpha = [cross_alpha(p, num_steps) for p in plans]
        self.alpha = torch.tensor(alpha, dtype=f32, device=device)  # (B, T + 1, 77)
        # Host-side copies decide which pairs are active without a device sync per layer.
        self._cross_on = [[any(row) for row in a] for a in alpha]
        self._cross_full = [[all(v == 1.0 for v in row) for row in a] for a in alpha]
        # An identity mapper with nothing kept or reweighted makes the edit attn_1 <- attn_0
        # wherever alpha is 1 everywhere: plain attention with the factual's queries and keys.
        self._identity = [_is_identity(p) for p in plans]
        self._self_window = [self_steps(p, num_steps) for p in plans]
        cols_0 = torch.zeros(b, MAX_TOKENS, dtype=f32)
        cols_1 = torch.zeros(b, MAX_TOKENS, dtype=f32)
        for i, p in enumerate(plans):
            cols_0[i, list(p.blend_0)] = 1.0
            cols_1[i, list(p.blend_1)] = 1.0
        self.blend_cols = torch.stack([cols_0, cols_1], 1).to(device)  # (B, 2, 77)
        self.blend_jobs = [i for i, p in enumerate(plans) if p.blend_0 or p.blend_1]
        self.threshold = torch.tensor([p.threshold for p in plans], dtype=f32, device=device)
        # P2P (null-text notebook): blend from step int(start_blend * NUM_DDIM_STEPS) on. A
        # pair's own `local_blend.start` wins over the run's.
        self.blend_starts = [int((blend_start if p.blend_start is None else p.blend_start)
                                 * num_steps) for p in plans]
        # The published code's LocalBlend reads the counterfactual's cross-attention after the
        # edit (its AttentionStore keeps a view the edit overwrites); cfspec's reads it before.
        self.edited_blend = edited_blend
        # Self-attention is replaced on maps of at most this many positions: the published code
        # hard-codes 16 ** 2; None: cfspec's blend resolution (the same 16x16 at 512 px, and
        # a quarter of the latent's side at other sizes).
        self.self_queries = self_queries
        self.maps: torch.Tensor | None = None  # (B, 2, blend queries), summed attention

    def cross_jobs(self, step: int) -> tuple[list[int], list[int]]:
        """(pairs edited with explicit probabilities, pairs whose edit is attn_1 <- attn_0)."""
        row = min(step, self.num_steps)
        on = [i for i in range(self.size) if self._cross_on[i][row]]
        fused = [i for i in on if self._identity[i] and self._cross_full[i][row]]
        return [i for i in on if i not in fused], fused

    def self_jobs(self, step: int) -> list[int]:
        return [i for i, (s, e) in enumerate(self._self_window) if s <= step < e]


def _is_identity(plan: EditPlan) -> bool:
    if plan.kind == "refine" or any(v != 1.0 for v in plan.equalizer + plan.keep):
        return False
    cells = {(a, b): w for a, b, w in plan.mapper if w != 0.0}
    return len(cells) == MAX_TOKENS and all(
        cells.get((i, i)) == 1.0 for i in range(MAX_TOKENS))


class P2PControl:
    """Shared state of the P2P processors: layers found by the probe, the batch, the step."""

    def __init__(self, static: bool = False) -> None:
        # static: the compiled form (module doc); the step's switches are `StepInputs`.
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


def _probs(q: torch.Tensor, k: torch.Tensor, scale: float, mask: torch.Tensor | None
           ) -> torch.Tensor:
    """softmax(q k^T * scale + mask) in fp32."""
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    if mask is not None:
        scores = scores + mask.float()
    return scores.softmax(dim=-1)


def _rows(mask: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor | None:
    if mask is None or mask.shape[0] == 1:
        return mask
    return mask.index_select(0, index)


class P2PAttnProcessor:
    """`AttnProcessor2_0` plus the P2P edit of the counterfactual rows (see the module doc)."""

    def __init__(self, control: P2PControl, name: str) -> None:
        self.control = control
        self.name = name

    def __call__(  # noqa: C901
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        # The prologue and epilogue are diffusers' AttnProcessor2_0, step for step.
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        is_cross = encoder_hidden_states is not None
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length,
                                                         batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1,
                                                 attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        if getattr(attn, "fused_projections", False):
            # `Attention.fuse_projections`: one matmul for q, k and v (self-attention) or k
            # and v (cross); edits act on q, k and v after the projections, so every layer
            # can fuse.
            if is_cross:
                query = attn.to_q(hidden_states)
                key, value = attn.to_kv(encoder_hidden_states).chunk(2, dim=-1)
            else:
                query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        else:
            query = attn.to_q(hidden_states)
            key = attn.to_k(encoder_hidden_states)
            value = attn.to_v(encoder_hidden_states)
        inner_dim = key.shape[-1]
        head_dim = inner_dim // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        control = self.control
        if control._probing:
            control.layers[self.name] = LayerInfo(self.name, is_cross, query.shape[2])
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        elif control.static:
            if is_cross:
                out = self._cross_static(attn, query, key, value, attention_mask)
            else:
                out = self._self_static(query, key, value, attention_mask)
        elif is_cross:
            out = self._cross(attn, query, key, value, attention_mask)
        else:
            out = self._self(attn, query, key, value, attention_mask)

        hidden_states = out.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height,
                                                                    width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _self(self, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None) -> torch.Tensor:
        control = self.control
        selection = control.self_selection(q.shape[2], q.shape[0])
        if selection is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        source, jobs = selection
        # softmax(q_0 k_0^T) v_1 is still plain attention: swap in the factual's queries and
        # keys on the edited rows and keep the fused kernel.
        q_src, k_src = q.index_select(0, source), k.index_select(0, source)
        out = F.scaled_dot_product_attention(q_src, k_src, v, attn_mask=_rows(mask, source))
        if control.hook is not None:
            batch = control.batch
            assert batch is not None
            rows_0, rows_1 = batch.cond_0 + batch.base[jobs], batch.cond_1 + jobs
            attn_0 = _probs(q[rows_0], k[rows_0], attn.scale, _rows(mask, rows_0))
            attn_1 = _probs(q[rows_1], k[rows_1], attn.scale, _rows(mask, rows_1))
            control.hook(AttentionEvent(self.name, control.step, False, jobs.tolist(), attn_0,
                                        attn_1, attn_0))
        return out

    def _cross(self, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None) -> torch.Tensor:
        control = self.control
        sel = control.cross_selection(self.name, q.shape[0])
        if sel is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        batch = control.batch
        assert batch is not None
        if control.hook is not None and sel.fused_jobs is not None:
            self._report_fused(attn, q, k, mask, sel.fused_jobs)
        out_1 = None
        if sel.count:
            probs = _probs(q[sel.rows], k[sel.rows], attn.scale, _rows(mask, sel.rows))
            attn_0, attn_1 = probs[: sel.factuals], probs[sel.factuals :]
            if sel.base_of is not None:
                attn_0 = attn_0.index_select(0, sel.base_of)  # each pair's factual
            all_0, all_1 = attn_0, attn_1
            record = sel.record is not None and sel.record_jobs is not None
            if record and not batch.edited_blend:
                # cfspec: LocalBlend reads the counterfactual's own attention, before the edit.
                assert sel.record is not None and sel.record_jobs is not None
                control.record(sel.record_jobs, attn_0[sel.record], attn_1[sel.record])
                record = False
            edited = None
            if sel.edit_jobs is not None and sel.edit_rows_1 is not None:
                if sel.edit is not None:
                    attn_0, attn_1 = attn_0[sel.edit], attn_1[sel.edit]
                edited = control.edit_cross(attn_0, attn_1, sel.edit_jobs)
                out_1 = torch.matmul(edited, v[sel.edit_rows_1].float()).to(v.dtype)
                if control.hook is not None:
                    control.hook(AttentionEvent(self.name, control.step, True,
                                                sel.edit_jobs.tolist(), attn_0, attn_1, edited))
            if record:
                # published: LocalBlend reads the counterfactual's attention as edited (the
                # identity edits done fused read attn_0; pairs outside their window, attn_1).
                after = all_1.clone()
                if edited is not None:
                    if sel.edit is None:
                        after = edited
                    else:
                        after[sel.edit] = edited
                if sel.fused_in_rows is not None:
                    after[sel.fused_in_rows] = all_0[sel.fused_in_rows]
                assert sel.record is not None and sel.record_jobs is not None
                control.record(sel.record_jobs, all_0[sel.record], after[sel.record])
        if out_1 is None or sel.edit_rows_1 is None:
            return self._fused(q, k, v, mask, sel.source)
        if sel.all_edited:
            # Every counterfactual row is edited: fused attention for the rows before them only.
            c1 = batch.cond_1
            head_mask = mask if mask is None or mask.shape[0] == 1 else mask[:c1]
            head = F.scaled_dot_product_attention(q[:c1], k[:c1], v[:c1], attn_mask=head_mask)
            return torch.cat([head, out_1], 0)
        out = self._fused(q, k, v, mask, sel.source)
        return out.index_copy(0, sel.edit_rows_1, out_1)

    # -- the compiled form: the same edits, switched by tensors ---------------------------------

    def _edited_rows(self, switch: torch.Tensor, q: torch.Tensor, k: torch.Tensor,
                     mask: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """q, k (and a per-row mask) with each edited conditional row whose pair `switch` (E,)
        turns on replaced by its base's row: attn_1 <- attn_0, still fused."""
        batch = self.control.batch
        assert batch is not None
        c1 = batch.cond_1
        rows_0 = batch.base_rows
        on = switch.view(-1, 1, 1, 1)

        def swap(t: torch.Tensor) -> torch.Tensor:
            tail = torch.where(on, t.index_select(0, rows_0), t[c1:])
            return torch.cat([t[:c1], tail])

        return swap(q), swap(k), mask if mask is None or mask.shape[0] == 1 else swap(mask)

    def _self_static(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     mask: torch.Tensor | None) -> torch.Tensor:
        control = self.control
        batch, now = control.batch, control.now
        if batch is None or now is None or q.shape[0] != batch.rows:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        limit = control.blend_queries if batch.self_queries is None else batch.self_queries
        if q.shape[2] > limit:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        q, k, mask = self._edited_rows(now.self_on, q, k, mask)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def _cross_static(self, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      mask: torch.Tensor | None) -> torch.Tensor:
        control = self.control
        batch, now = control.batch, control.now
        if batch is None or now is None or q.shape[0] != batch.rows:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        c0, c1 = batch.cond_0, batch.cond_1
        q_f, k_f, mask_f = self._edited_rows(now.fused_on, q, k, mask)
        fused = F.scaled_dot_product_attention(q_f, k_f, v, attn_mask=mask_f)
        # Every conditional row's probabilities: the factual ones, then the edited ones.
        probs = _probs(q[c0:], k[c0:], attn.scale,
                       mask if mask is None or mask.shape[0] == 1 else mask[c0:])
        attn_0, attn_1 = probs[: batch.factuals], probs[batch.factuals :]
        if not batch.own_factuals:
            attn_0 = attn_0.index_select(0, batch.base)  # each pair's factual
        edited = control.edit_all(attn_0, attn_1, now.alpha)
        explicit = now.explicit_on.view(-1, 1, 1, 1)
        if self.name in control.blend_layers:
            if batch.edited_blend:
                # published: the maps as edited (identity edits done fused read attn_0).
                after = torch.where(explicit, edited, attn_1)
                after = torch.where(now.fused_on.view(-1, 1, 1, 1), attn_0, after)
                control.pending.append(control.blend_terms(attn_0, after))
            else:
                control.pending.append(control.blend_terms(attn_0, attn_1))
        out_1 = torch.matmul(edited, v[c1:].float()).to(v.dtype)
        return torch.cat([fused[:c1], torch.where(explicit, out_1, fused[c1:])])

    @staticmethod
    def _fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
               source: torch.Tensor | None) -> torch.Tensor:
        """Fused attention on every row; rows named in `source` take another row's queries
        and keys (attn_1 <- attn_0 without ever forming the probabilities)."""
        if source is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return F.scaled_dot_product_attention(q.index_select(0, source), k.index_select(0, source),
                                              v, attn_mask=_rows(mask, source))

    def _report_fused(self, attn: Any, q: torch.Tensor, k: torch.Tensor,
                      mask: torch.Tensor | None, jobs: torch.Tensor) -> None:
        control = self.control
        batch = control.batch
        assert batch is not None and control.hook is not None
        rows_0, rows_1 = batch.cond_0 + batch.base[jobs], batch.cond_1 + jobs
        attn_0 = _probs(q[rows_0], k[rows_0], attn.scale, _rows(mask, rows_0))
        attn_1 = _probs(q[rows_1], k[rows_1], attn.scale, _rows(mask, rows_1))
        control.hook(AttentionEvent(self.name, control.step, True, jobs.tolist(), attn_0,
                                    attn_1, attn_0))
