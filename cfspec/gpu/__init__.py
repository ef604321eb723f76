"""Image generation for counterfactual pairs: Prompt-to-Prompt attention control on diffusers.

Everything under `cfspec.gpu` may import torch, diffusers and transformers, but only when one
of its modules is imported; this file stays import-light so that `cfspec.gpu.command` can be
registered by the CLI without loading any of them.

Generation: `tiny` (the embedded random-weight model), `models` (loading, schedulers), `plan` (a
pair's edit map rebuilt for the real tokenizer), `p2p` (attention processors and LocalBlend),
`engine` (the batched denoising loop), `store` (PNGs, extras, manifest, resume; imports only the
standard library), `generate` (the `generate()` entry point) and `command` (the Typer command).
Evaluation: `clip` (our CLIP wrapper), `metrics` (pure metric functions) and `evaluate` (the
stage that reads OUT and writes metrics.jsonl).
"""

from __future__ import annotations

__all__ = ["generate"]


def __getattr__(name: str) -> object:
    if name == "generate":  # lazy: importing cfspec.gpu must not import torch
        from cfspec.gpu.generate import generate

        return generate
    raise AttributeError(name)
