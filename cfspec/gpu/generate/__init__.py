"""`cfspec generate OUT`: both images of every pair, with Prompt-to-Prompt attention control.

Modules may import torch, diffusers and transformers, but only when imported; this file stays
import-light. `tiny` (the embedded random-weight models, SD 1.x's and SDXL's layouts),
`pipelines` (which pipelines cfspec drives, read from model_index.json; standard library only),
`weights` (loading, schedulers), `doctor` (`cfspec doctor`'s checks),
`edit_plan` (a pair's edit map rebuilt for the real tokenizer), `published` (the published
code's conventions), `p2p` (the attention control and LocalBlend; its processors are
`p2p_processor`, a batch's edit maps `p2p_batch`), `engine` (the batched denoising loop:
per pair, or sets of counterfactuals sharing one factual row) and `stage` (the `generate()`
entry point). Files in OUT are written through `cfspec.workspace.store`; groups,
batch packing and sampled settings are `cfspec.workspace.batching` (torch-free, shared with plan).
"""

from __future__ import annotations

from cfspec.workspace.usercache import private_torch_caches

# Before any module below imports torch: its compile caches go to the user's own folder, never
# to the shared temp dir (cfspec.workspace.usercache says why).
private_torch_caches()

__all__ = ["generate"]


def __getattr__(name: str) -> object:
    if name == "generate":  # lazy: importing cfspec.gpu.generate must not import torch
        from cfspec.gpu.generate.stage import generate

        return generate
    raise AttributeError(name)
