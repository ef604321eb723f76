"""Which candidates `cfspec export` writes: the filter's kept (pair, seed)s, else each pair's first
seed, less any whose image or .npz is damaged. Read by the export (`stages.export`), its
Croissant metadata (`stages.croissant`) and the pipeline's summary of what would be exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfspec.diagnostics.records import Diagnostic
from cfspec.workspace.filter_lines import read_filter
from cfspec.workspace.integrity import check_generated
from cfspec.workspace.layout import FILTER_FILE, METRICS_FILE, row_id
from cfspec.workspace.manifest_lines import Generated, read_manifest
from cfspec.workspace.metrics_rows import MetricsRow, read_metrics
from cfspec.workspace.pairs import Pair
from cfspec.workspace.reading import read_pair_file


@dataclass(frozen=True)
class Candidate:
    """One exported row: a pair, the seed chosen for it, its images and metrics."""

    pair: Pair
    generated: Generated
    metrics: MetricsRow | None  # None: not evaluated
    rank: int | None = None  # 1 = the filter's best seed of the pair; None: unfiltered
    several: bool = False  # the export holds several seeds per pair (filter --keep K > 1)

    @property
    def id(self) -> str:
        """The row's id: the pair's, or `<pair id>__s<seed>` with several seeds per pair."""
        return row_id(str(self.pair.id), self.seed, self.several)

    @property
    def pair_id(self) -> str:
        return str(self.pair.id)

    @property
    def seed(self) -> int:
        return self.generated.seed


@dataclass
class Selection:
    candidates: list[Candidate]
    description: str  # which candidates, in words
    filtered: bool  # True: the filter's kept candidates
    left_out: list[str] = field(default_factory=list)  # pair ids not exported, with why
    diagnostics: list[Diagnostic] = field(default_factory=list)
    gates: dict[str, Any] | None = None  # the filter's gates, when it chose the candidates
    keep: int = 1  # the filter's --keep: seeds kept per pair at most



def select(out: Path) -> Selection:
    """The candidates to export: the filter's kept ones, else each pair's first seed; a
    candidate with a damaged file (`workspace.integrity`) is left out and reported."""
    selection = _choose(out)
    check = check_generated(out, [c.generated for c in selection.candidates],
                            "not exported: the other rows are")
    if not check.damage:
        return selection
    for cand in selection.candidates:
        for damage in check.damaged(cand.generated):
            selection.left_out.append(f"{cand.pair_id}: seed {cand.seed}'s {damage.path.name} "
                                      f"is damaged: {damage.problem}")
    selection.candidates = [c for c in selection.candidates if check.ok(c.generated)]
    selection.diagnostics += check.diagnostics
    selection.description += (f", less {len(check.keys())} (pair, seed)(s) with damaged "
                              "files")
    return selection


def _choose(out: Path) -> Selection:
    """The filter's kept candidates, else each pair's first seed, before the files are
    checked."""
    pairs, diagnostics = read_pair_file(out)
    by_id = {p.id: p for p in pairs}
    generated, problems = read_manifest(out, by_id)
    diagnostics += problems
    metrics: dict[str, dict[int, MetricsRow]] = {}
    if (out / METRICS_FILE).is_file():
        metrics, problems = read_metrics(out, by_id)
        diagnostics += problems
    decisions = read_filter(out, by_id)
    candidates: list[Candidate] = []
    left_out: list[str] = []
    if decisions is not None:
        kept, problems = decisions
        diagnostics += problems
        keep = max((d.keep for d in kept.values()), default=1)
        exported: set[str] = set()
        for pair in pairs:
            decision = kept.get(pair.id)
            if decision is None:
                left_out.append(f"{pair.id}: not in {FILTER_FILE} (re-run `cfspec filter`)")
                continue
            if not decision.kept:
                left_out.append(f"{pair.id}: filtered out ({decision.reason})")
                continue
            for rank, seed in enumerate(decision.kept, start=1):
                found = generated.get(pair.id, {}).get(seed)
                if found is None:
                    left_out.append(f"{pair.id}: kept seed {seed} has no images in the "
                                    "manifest (re-run `cfspec filter`)")
                    continue
                exported.add(pair.id)
                candidates.append(Candidate(pair, found, metrics.get(pair.id, {}).get(seed),
                                            rank, keep > 1))
        rows = "" if keep == 1 else (f", {len(candidates)} (pair, seed)s (up to {keep} per "
                                     "pair, --keep)")
        description = (f"the filter's kept candidates ({FILTER_FILE}): {len(exported)} of "
                       f"{len(pairs)} pair(s){rows}")
        gates = next((d.gates for d in kept.values() if d.gates), None)
        return Selection(candidates, description, True, left_out, diagnostics, gates, keep)
    for pair in pairs:
        seeds = generated.get(pair.id, {})
        if not seeds:
            left_out.append(f"{pair.id}: no images (run `cfspec generate`)")
            continue
        first = min(seeds)
        candidates.append(Candidate(pair, seeds[first],
                                    metrics.get(pair.id, {}).get(first)))
    description = (f"every pair's first seed, unfiltered (no {FILTER_FILE}; run `cfspec filter` "
                   f"to keep the best seed by the CLIP gates): {len(candidates)} of "
                   f"{len(pairs)} pair(s)")
    return Selection(candidates, description, False, left_out, diagnostics)


def row_extras(cand: Candidate) -> dict[str, Any]:
    """Which candidate a row is, and how it was made where generate may sample: the columns
    every export but coco-cf (whose five columns are COCO-Counterfactuals') adds."""
    drawn = cand.generated.line.drawn()
    return {"pair_id": cand.pair_id, "seed": cand.seed, "rank": cand.rank,
            "guidance": drawn.guidance, "cross_replace": drawn.cross_replace,
            "self_replace": drawn.self_replace}
