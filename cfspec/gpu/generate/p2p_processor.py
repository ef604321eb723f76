"""The Prompt-to-Prompt attention processor: diffusers' `AttnProcessor2_0` plus the edit of
the counterfactual rows, asking its `P2PControl` (`cfspec.gpu.generate.p2p`) what to edit at
this layer and step.

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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from cfspec.gpu.generate.p2p import P2PControl

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


def _project(attn: Any, hidden_states: torch.Tensor, context: torch.Tensor, is_cross: bool,
             batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values, (batch, heads, positions, head_dim), as AttnProcessor2_0
    makes them."""
    if getattr(attn, "fused_projections", False):
        # `Attention.fuse_projections`: one matmul for q, k and v (self-attention) or k and v
        # (cross); edits act on q, k and v after the projections, so every layer can fuse.
        if is_cross:
            query = attn.to_q(hidden_states)
            key, value = attn.to_kv(context).chunk(2, dim=-1)
        else:
            query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
    else:
        query = attn.to_q(hidden_states)
        key = attn.to_k(context)
        value = attn.to_v(context)
    inner_dim = key.shape[-1]
    head_dim = inner_dim // attn.heads
    query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
    key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
    value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return query, key, value


class P2PAttnProcessor:
    """`AttnProcessor2_0` plus the P2P edit of the counterfactual rows (see the module doc)."""

    def __init__(self, control: P2PControl, name: str) -> None:
        self.control = control
        self.name = name

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        # diffusers' AttnProcessor2_0 step for step, but for the attention itself (`_attend`).
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
        query, key, value = _project(attn, hidden_states, encoder_hidden_states, is_cross,
                                     batch_size)
        out = self._attend(attn, query, key, value, attention_mask, is_cross)

        hidden_states = out.transpose(1, 2).reshape(batch_size, -1, attn.heads * query.shape[-1])
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height,
                                                                    width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _attend(self, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None, is_cross: bool) -> torch.Tensor:
        """The attention of every row, each edited row edited as this step asks."""
        control = self.control
        if control._probing:
            control.layers[self.name] = LayerInfo(self.name, is_cross, q.shape[2])
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        if control.static:
            if is_cross:
                return self._cross_static(attn, q, k, v, mask)
            return self._self_static(q, k, v, mask)
        if is_cross:
            return self._cross(attn, q, k, v, mask)
        return self._self(attn, q, k, v, mask)

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
