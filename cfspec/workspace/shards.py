"""`--shard I/N`: one of N disjoint parts of the work, for SLURM arrays and machines that share
OUT (or write their own and are merged by copying images and concatenating manifests).

Shards split by group (`cfspec.workspace.batching`: the pairs that share a factual image): a group
goes to shard `position % N`, its position among the groups in pairs.jsonl order (the order of
their first pairs). The N shards are disjoint and together complete, and the split depends only
on pairs.jsonl, not on what is already done or on which shard runs first. Every pair and seed
of a group stays in its shard, so a group's factual image is computed once per seed, by one
process. I counts from 0 (`--shard $SLURM_ARRAY_TASK_ID/N` with `--array=0-(N-1)`)."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cfspec.workspace.batching import group_key
from cfspec.workspace.pairs import Pair

T = TypeVar("T")
_SHARD = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    index: int  # 0 <= index < count
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def takes(self, position: int) -> bool:
        return position % self.count == self.index

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's items of a list in pairs.jsonl order, whole groups at a time: Pairs by
        their group (same spec, spec_name and prompt_0), anything else one by one."""
        keys: list[Hashable] = [group_key(item) if isinstance(item, Pair) else ("position", n)
                                for n, item in enumerate(items)]
        order = {k: None for k in keys}  # groups in the order of their first item
        mine = {k for position, k in enumerate(order) if self.takes(position)}
        return [item for item, k in zip(items, keys, strict=True) if k in mine]


ALL = Shard(0, 1)


def parse_shard(text: str) -> Shard:
    """`I/N` with 0 <= I < N; ValueError saying what is wrong otherwise."""
    found = _SHARD.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/4 (shards count from 0)")
    index, count = int(found.group(1)), int(found.group(2))
    if count < 1 or index >= count:
        raise ValueError(f"--shard {text!r}: I must be 0 to N-1 and N at least 1 "
                         f"(shards count from 0: 0/{max(count, 1)} is the first)")
    return Shard(index, count)
