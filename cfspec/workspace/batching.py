"""Batching: the pairs that share a factual image (a group; for one seed, a set), how generate packs
them into UNet batches, and the settings it samples per (group, seed) or (pair, seed), keyed by
the same group. Torch-free: `cfspec plan` counts with it.

* A group is the pairs with the same `spec`, `spec_name` and `prompt_0`: everything that makes
  the factual image besides the seed and the guidance. A set is a group's pairs for one seed:
  one factual row and one edited row per pair (K + 1 image rows for K counterfactuals, where
  per-pair generation needs 2K).
* A batch holds up to `2 * batch_pairs` image rows (what `batch_pairs` pairs took per pair).
  Whole sets are packed in order while they fit; a set larger than a batch is cut into chunks
  of `2 * batch_pairs - 1` pairs, each with its own copy of the factual row.
* Sampled settings (`--guidance uniform(lo, hi)`, a pair's `edit.sample`) are drawn from the
  SHA-256 of (key, seed, setting): the same values whatever the shard, batch, process count or
  order. Guidance is drawn per (group, seed), the group's key, since the factual row is shared;
  edit windows per (pair id, seed).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cfspec.workspace.pairs import Pair

T = TypeVar("T")


def group_key(pair: Pair) -> str:
    """The key of the pair's group: pairs with the same key share their factual image."""
    return json.dumps([pair.spec, pair.spec_name, pair.prompt_0], ensure_ascii=False)


def groups(pairs: Iterable[Pair]) -> dict[str, list[Pair]]:
    """Pairs by group key, groups in the order of their first pair, pairs in their own order."""
    out: dict[str, list[Pair]] = {}
    for pair in pairs:
        out.setdefault(group_key(pair), []).append(pair)
    return out


# -- packing ----------------------------------------------------------------------------------


def chunks(members: Sequence[T], batch_pairs: int) -> list[list[T]]:
    """A set cut into pieces that fit one batch (2 * batch_pairs image rows, one of them the
    piece's factual row); one piece when it fits."""
    size = 2 * batch_pairs - 1
    return [list(members[start : start + size]) for start in range(0, len(members), size)]


def pack(sets: Sequence[Sequence[T]], batch_pairs: int) -> list[list[list[T]]]:
    """Batches of sets, in order: each set (cut into chunks first where it does not fit) goes
    into the current batch while its rows (its pairs + 1) fit in 2 * batch_pairs."""
    capacity = 2 * batch_pairs
    batches: list[list[list[T]]] = []
    used = capacity
    for members in sets:
        for piece in chunks(members, batch_pairs):
            rows = len(piece) + 1
            if used + rows > capacity:
                batches.append([])
                used = 0
            batches[-1].append(piece)
            used += rows
    return batches


def batches(jobs: Sequence[T], group_of: Callable[[T], str], seed_of: Callable[[T], int],
            batch_pairs: int, per_pair: bool = False) -> list[list[list[T]]]:
    """The UNet batches generate runs these jobs in, and plan counts: one set per (group,
    seed), groups in the order of their first job, then seeds, then the jobs' own order, packed
    by `pack`. `per_pair`: every job its own set (2 rows), the layout before sets."""
    if per_pair:
        return pack([[job] for job in jobs], batch_pairs)
    rank = {key: n for n, key in enumerate(dict.fromkeys(group_of(job) for job in jobs))}
    sets: dict[tuple[int, int], list[T]] = {}
    for job in jobs:
        sets.setdefault((rank[group_of(job)], seed_of(job)), []).append(job)
    return pack([sets[key] for key in sorted(sets)], batch_pairs)


# -- sampled settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class Uniform:
    """x ~ U(low, high), drawn deterministically from a key and a seed."""

    low: float
    high: float

    def draw(self, key: str, seed: int, name: str) -> float:
        return draw(key, seed, name, self.low, self.high)

    def to_json(self) -> list[float]:
        return [self.low, self.high]

    def __str__(self) -> str:
        return f"uniform({self.low:g}, {self.high:g})"


def draw(key: str, seed: int, name: str, low: float, high: float) -> float:
    """A number in [low, high) from the SHA-256 of (key, seed, name): a pure function of them."""
    digest = hashlib.sha256(json.dumps([key, int(seed), name], ensure_ascii=False)
                            .encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    return low if high == low else min(low + (high - low) * u, math.nextafter(high, low))


_UNIFORM = re.compile(r"\s*uniform\s*\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*", re.IGNORECASE)

GuidanceSetting = float | Uniform


def parse_guidance(value: Any) -> GuidanceSetting:
    """`--guidance`: a number, or `uniform(lo, hi)` with 1 < lo <= hi (every draw guided, so a
    batch never mixes guided and unguided rows). ValueError saying what is wrong otherwise."""
    if isinstance(value, Uniform):
        text, bounds = str(value), (value.low, value.high)
    else:
        text = str(value)
        found = _UNIFORM.fullmatch(text)
        if found is None:
            return _finite(text, text)
        bounds = (_finite(found.group(1), text), _finite(found.group(2), text))
    low, high = bounds
    if not 1.0 < low <= high:
        raise ValueError(f"--guidance {text!r}: needs 1 < lo <= hi (a sampled guidance is "
                         "always classifier-free guided)")
    return Uniform(low, high)


def _finite(number: Any, whole: str) -> float:
    try:
        value = float(number)
    except (TypeError, ValueError):
        raise ValueError(f"--guidance {whole!r}: {str(number)!r} is not a number; expected a "
                         "number (7.5) or uniform(lo, hi), e.g. uniform(7.5, 15)") from None
    if not math.isfinite(value):
        raise ValueError(f"--guidance {whole!r}: expected finite numbers")
    return value


def guidance_params(setting: GuidanceSetting) -> dict[str, Any]:
    """How the manifest records a run's guidance (and resume matches it): the fixed scale, or
    the range the scales were drawn from (each line then holds its own draw)."""
    if isinstance(setting, Uniform):
        return {"guidance_range": setting.to_json()}
    return {"guidance": setting}


def guided(setting: GuidanceSetting) -> bool:
    """Whether the UNet runs an unconditional branch (as diffusers: guidance above 1)."""
    return True if isinstance(setting, Uniform) else setting > 1.0


def edit_samples(pair: Pair) -> dict[str, Uniform]:
    """The pair's `edit.sample` ranges (checked when pairs.jsonl is read: bounds in [0, 1],
    low <= high)."""
    sample = pair.edit.get("sample") or {}
    ranges = {"cross_replace": sample.get("cross_replace"),
              "self_replace": sample.get("self_replace")}
    return {name: Uniform(float(draw["uniform"][0]), float(draw["uniform"][1]))
            for name, draw in ranges.items() if draw is not None}


@dataclass(frozen=True)
class Draws:
    """What one (pair, seed) drew: the guidance (None: the run's fixed one) and the windows."""

    guidance: float | None = None
    cross_replace: float | None = None
    self_replace: float | None = None

    def to_json(self) -> dict[str, float]:
        """The manifest's `drawn`: only the sampled settings."""
        return {name: value for name, value in (("guidance", self.guidance),
                                                ("cross_replace", self.cross_replace),
                                                ("self_replace", self.self_replace))
                if value is not None}


def draws(pair: Pair, seed: int, guidance: GuidanceSetting) -> Draws:
    """The (pair, seed)'s sampled settings: guidance per (group, seed), windows per (id, seed)."""
    g = guidance.draw(group_key(pair), seed, "guidance") if isinstance(guidance, Uniform) \
        else None
    windows = {name: r.draw(pair.id, seed, name) for name, r in edit_samples(pair).items()}
    return Draws(g, windows.get("cross_replace"), windows.get("self_replace"))
