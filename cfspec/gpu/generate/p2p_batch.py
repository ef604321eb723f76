"""The edit maps of one UNet batch of Prompt-to-Prompt pairs, on the device (`BatchEdit`),
and the compiled form's per-step switches (`StepInputs`).

Batch layout (F factual rows, E edited rows, N = F + E images; classifier-free guidance on):
rows `[0, F)` are the factual images' unconditional branch, `[F, N)` the edited (counterfactual)
images', `[N, N + F)` the factual conditional rows and `[N + F, 2N)` the edited conditional rows.
Without guidance only the last two blocks exist. Each edited row j names its base, the factual
row `base[j]` it is edited against: per-pair generation has F = E and base[j] = j (each pair its
own factual); set generation has one factual row per (group, seed) and all of that group's
counterfactuals edited against it, as P2P's own batches (one base prompt, several edited ones).
As in the published code (google/prompt-to-prompt), only the conditional edited rows are ever
edited; the factual image is generated exactly as a plain pipeline would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from cfspec.gpu.generate.edit_plan import (
    MAX_TOKENS,
    EditPlan,
    cross_alpha,
    dense_mapper,
    self_steps,
)


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
