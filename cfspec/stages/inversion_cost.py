"""The UNet work of inverting photos, counted without torch, for `cfspec plan`.

A pair whose spec names a photo (`Pair.image`) starts from the photo's inversion instead of
noise. Each photo is inverted once per factual prompt (never per seed), `batch` photos to a
UNet batch, one row each, and every step of every method below is one UNet call per batch:

- **DDIM inversion** (`ddim`, and the first pass of the others): `steps` conditional rows, the
  denoising schedule run backwards.
- **negative-prompt** (Miyake et al. 2023): the DDIM inversion only; the factual prompt stands in
  for the unconditional context, so nothing is optimised.
- **null-text** (Mokady et al. 2023, google/prompt-to-prompt's `null_optimization`): after the
  DDIM inversion, per denoising step one conditional row, at most `inner_steps` unconditional
  rows that are optimised (each a forward and a backward pass; published default 10, stopping
  early once the step's loss is small) and one unconditional row to take the step:
  `steps x (inner_steps + 2)` more. Counted at the most: early stopping only makes fewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cfspec.gpu.models import INVERSION_METHODS as METHODS
from cfspec.gpu.models import NULL_TEXT_INNER_STEPS as INNER_STEPS


@dataclass(frozen=True)
class InversionCost:
    photos: int  # distinct (photo, factual prompt)s to invert
    unet_calls: int  # at most
    unet_rows: int  # at most


def rows_per_photo(method: str, steps: int, inner_steps: int = INNER_STEPS) -> int:
    """The UNet rows one photo's inversion takes at most (also the calls one batch of photos
    takes: each call holds one row per photo). ValueError for an unknown method."""
    if method not in METHODS:
        raise ValueError(f"unknown inversion {method!r}; choose one of {', '.join(METHODS)}")
    optimised = inner_steps + 2 if method == "null-text" else 0  # per denoising step
    return steps * (1 + optimised)


def inversion_cost(method: str, steps: int, photos: int, batch: int,
                   inner_steps: int = INNER_STEPS) -> InversionCost:
    """What inverting `photos` photos, `batch` to a UNet batch, costs at most."""
    per_photo = rows_per_photo(method, steps, inner_steps)
    batches = math.ceil(photos / max(1, batch))
    return InversionCost(photos, batches * per_photo, photos * per_photo)
