"""`--shard I/N`: one of N disjoint parts of the work, for SLURM arrays and machines that share
OUT (or write their own and are merged by copying images and concatenating manifests).

A pair goes to shard `position % N`, its position in pairs.jsonl: the N shards are disjoint and
together complete, and the split depends only on pairs.jsonl, not on what is already done or on
which shard runs first. Every seed of a pair stays in its shard, so a pair's images are made
by one process. I counts from 0 (`--shard $SLURM_ARRAY_TASK_ID/N` with `--array=0-(N-1)`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

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
        """This shard's items of a list in pairs.jsonl order."""
        return [item for position, item in enumerate(items) if self.takes(position)]


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
