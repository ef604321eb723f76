"""Reading back OUT/filter.jsonl: `read_filter`, one `FilterLine` (the filter's decision on a
pair and every seed's verdict) per line. The shared line checks are `cfspec.workspace.reading`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfspec.diagnostics.records import Diagnostic
from cfspec.workspace.layout import FILTER_FILE
from cfspec.workspace.pairs import Pair
from cfspec.workspace.reading import (
    LineReport,
    check_id_seed,
    finite,
    is_int,
    json_lines,
    read_text,
)


@dataclass(frozen=True)
class GateFailure:
    gate: str  # min-clip, min-directional, ..., or min-/max-<metric> of a --gate
    metric: str
    value: float | None  # None: not measured
    threshold: float
    reason: str | None = None  # why the value does not count (not measured, undefined)

    def to_json(self) -> dict[str, Any]:
        data = {"gate": self.gate, "metric": self.metric, "value": self.value,
                "threshold": self.threshold}
        return data if self.reason is None else {**data, "reason": self.reason}


@dataclass(frozen=True)
class SeedVerdict:
    seed: int
    passed: bool
    failed: tuple[GateFailure, ...]

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "passed": self.passed,
                "failed": [f.to_json() for f in self.failed]}


@dataclass(frozen=True)
class FilterLine:
    """One line of filter.jsonl: the filter's decision on a pair and every seed's verdict."""

    id: str
    kept_seed: int | None
    reason: str
    directional_similarity: float | None  # of the kept seed
    gates: dict[str, float]  # gate key -> threshold, as the run used them
    seeds: tuple[SeedVerdict, ...]
    # `filter --keep K`: the kept seeds, best first (kept_seed is the first); written only
    # for K > 1, so a K = 1 filter.jsonl is what it always was.
    kept_seeds: tuple[int, ...] = ()
    keep: int = 1

    @property
    def kept(self) -> tuple[int, ...]:
        """The kept seeds, best first: at most `keep`, none when the pair was filtered out."""
        if self.kept_seeds:
            return self.kept_seeds
        return () if self.kept_seed is None else (self.kept_seed,)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "kept_seed": self.kept_seed}
        if self.keep != 1:
            data.update(keep=self.keep, kept_seeds=list(self.kept))
        data.update(reason=self.reason, directional_similarity=self.directional_similarity,
                    gates=self.gates, seeds=[v.to_json() for v in self.seeds])
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FilterLine:
        """From a line whose id and kept_seed were checked; ValueError(field, message) for any
        other field of the wrong shape."""
        gates = data.get("gates", {})
        if not isinstance(gates, dict) or not all(isinstance(k, str) and finite(v) is not None
                                                  for k, v in gates.items()):
            raise ValueError("gates", "expected an object of gate -> number")
        seeds = data.get("seeds", [])
        if not isinstance(seeds, list):
            raise ValueError("seeds", "expected a list")
        verdicts = []
        for verdict in seeds:
            try:
                failed = tuple(GateFailure(str(f["gate"]), str(f["metric"]),
                                           finite(f["value"]),
                                           float(f["threshold"]), f.get("reason"))
                               for f in verdict["failed"])
                verdicts.append(SeedVerdict(int(verdict["seed"]), bool(verdict["passed"]),
                                            failed))
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
                raise ValueError("seeds", f"a verdict is not of the filter's shape: "
                                 f"{json.dumps(verdict)[:80]}") from None
        similarity = data.get("directional_similarity")
        keep = data.get("keep", 1)
        if not is_int(keep) or keep < 1:
            raise ValueError("keep", f"expected an integer of at least 1, got {keep!r}")
        first = data["kept_seed"]
        kept = data.get("kept_seeds", [] if first is None else [first])
        if (not isinstance(kept, list) or not all(is_int(s) and s >= 0 for s in kept)
                or len(set(kept)) != len(kept)):
            raise ValueError("kept_seeds", "expected a list of distinct non-negative integers")
        if len(kept) > keep or (kept[:1] or [None])[0] != first:
            raise ValueError("kept_seeds", f"{kept!r} does not fit kept_seed {first!r} and "
                             f"keep {keep}: at most `keep` seeds, kept_seed first")
        return cls(data["id"], first, str(data.get("reason", "")),
                   finite(similarity), {k: float(v) for k, v in gates.items()},
                   tuple(verdicts), tuple(kept), keep)


def read_filter(out: Path, pairs: Mapping[str, Pair]
                ) -> tuple[dict[str, FilterLine], list[Diagnostic]] | None:
    """OUT/filter.jsonl, validated: id -> decision; None when there is no filter.jsonl."""
    path = out / FILTER_FILE
    if not path.is_file():
        return None
    report = LineReport(path, read_text(path), "invalid-filter-file")
    decisions: dict[str, FilterLine] = {}
    for number, line in json_lines(path, report, torn_ok=False):
        if "kept_seed" not in line:
            report.add(number, None, "no `kept_seed` field")
            continue
        if not check_id_seed(line, number, report, pairs, "kept_seed", seed_optional=True):
            continue
        if line["id"] in decisions:
            report.add(number, "id", f"repeats the id {line['id']!r}")
            continue
        try:
            decisions[line["id"]] = FilterLine.from_json(line)
        except ValueError as error:
            key, message = error.args
            report.add(number, key, message, help=f"re-run `cfspec filter {out}`")
    return decisions, report.items
