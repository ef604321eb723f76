"""The models the GPU commands take, by name: the defaults, the built-in random-weight ones, and
what a `--model` string that names nothing loadable is told. Standard library only: the CLI
reads the defaults when it registers its commands, and `cfspec run`'s preflight checks names
before anything heavy loads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["BUILT_IN_CLIPS", "BUILT_IN_MODELS", "BUILT_IN_VQAS", "DEFAULT_CLIP", "DEFAULT_MODEL",
           "DEFAULT_INVERSION", "DEFAULT_VQA", "INVERSION_METHODS", "NULL_TEXT_INNER_STEPS",
           "is_offline", "looks_like_path", "missing_path", "not_cached",
           "random_weights_warning"]

def is_offline() -> bool:
    """HF_HUB_OFFLINE is set: hub ids load from the local cache only."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


# Stable Diffusion 1.5, the family of the Prompt-to-Prompt and COCO-Counterfactuals papers.
DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_CLIP = "openai/clip-vit-large-patch14"
# BLIP VQA base: a yes/no question answerer whose answer decoder gives P(yes) (VQAScore).
DEFAULT_VQA = "Salesforce/blip-vqa-base"

# Built in, random weights: their images are noise and their CLIP scores meaningless. For
# tests, trying the pipeline without a download, and benchmarks (the random-* ones have the
# real architectures' cost).
BUILT_IN_MODELS = ("tiny", "tiny-sdxl", "random-sd15", "random-sdxl")  # = weights.BUILT_IN
BUILT_IN_CLIPS = ("tiny", "random-vit-l-14")  # = evaluate.clip.TINY, RANDOM_VIT_L14
BUILT_IN_VQAS = ("tiny",)  # = evaluate.vqa.TINY

# `generate --inversion`: how a photo becomes the factual image (gpu/generate/inversion.py),
# the default first; null-text optimises each step's unconditional context at most this many
# times (google/prompt-to-prompt's `num_inner_steps`; `cfspec plan` counts them).
INVERSION_METHODS = ("null-text", "negative-prompt", "ddim")
DEFAULT_INVERSION = INVERSION_METHODS[0]
NULL_TEXT_INNER_STEPS = 10

# A hub id: `name` or `owner/name` (the hub's characters, no leading dot or dash).
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?\Z")


def random_weights_warning(option: str, name: str) -> str | None:
    """The warning a command prints (on stderr) when `name`, given to `option` (`--model` or
    `--clip-model`, `--vqa-model`), is a built-in random-weight model."""
    if option == "--vqa-model":
        if name not in BUILT_IN_VQAS:
            return None
        return (f"{option} {name} has random weights: its answers mean nothing and the "
                f"question metrics' gates act on noise (the default is {DEFAULT_VQA})")
    if option == "--clip-model":
        if name not in BUILT_IN_CLIPS:
            return None
        return (f"{option} {name} has random weights: its scores mean nothing and the filter's "
                f"gates act on noise (the default is {DEFAULT_CLIP})")
    if name not in BUILT_IN_MODELS:
        return None
    return (f"{option} {name} has random weights: its images are noise, fit for tests and a "
            f"trial run, not a dataset (the default is {DEFAULT_MODEL})")


def looks_like_path(name: str) -> bool:
    """A local path rather than a hub id: it starts with `.`, `/` or `~`, or holds a path
    separator without being `owner/name`."""
    if name.startswith((".", "/", "~")):
        return True
    separators = [s for s in (os.sep, os.altsep) if s]
    return any(s in name for s in separators) and not _HUB_ID.match(name)


def missing_path(option: str, name: str) -> str:
    """`name` looks like a path and there is nothing there."""
    return (f"{option} {name}: no such folder ({Path(name).expanduser().absolute()}); pass a "
            f"saved model folder, a hub id such as {DEFAULT_MODEL}, or tiny for a test run")


def not_cached(option: str, name: str, try_instead: str) -> str:
    """A hub id that is not in the local cache while HF_HUB_OFFLINE is set: what it is, how to
    get it, and what runs without it (two lines, the second a help note)."""
    return (f"{option} {name}: not in the local Hugging Face cache, and HF_HUB_OFFLINE is set\n"
            "  = help: get it once where there is network: run without HF_HUB_OFFLINE (only the "
            f"files it loads are fetched), or `hf download {name}` (the whole repository); or "
            f"pass a local folder; {try_instead}")
