"""`cfspec filter OUT`: keep the best candidate (seed) per pair, by InstructPix2Pix's CLIP gates.

A (pair, seed) passes when, as in InstructPix2Pix's dataset filter (Brooks et al. 2023,
`dataset_creation/generate_img_dataset.py`):

* each image's CLIP similarity to its own prompt (cosine, i.e. `clip_score / 100`) >= 0.2,
* the CLIP directional similarity >= 0.2,
* the image-image CLIP similarity >= 0.7.

Of the seeds that pass, the one with the highest directional similarity is kept (ties: the
lowest seed); with `--keep K`, the K best in that order (fewer when fewer pass). Thresholds
come from `--min-clip`, `--min-directional`, `--min-image-similarity`, else from
`[tool.cfspec]` keys `filter-min-clip`, `filter-min-directional`,
`filter-min-image-similarity` in the nearest pyproject.toml, else the defaults above.

`OUT/filter.jsonl` records every decision, one line per pair of pairs.jsonl, in its order:
`{"id", "kept_seed" (int or null), "reason", "directional_similarity" (of the kept seed),
"gates", "seeds": [{"seed", "passed", "failed": [{"gate", "metric", "value", "threshold",
"reason"?}]}]}`. With `--keep K` for K > 1, each line also has `"keep": K` and `"kept_seeds"`
(best first; `kept_seed` is its first); with K = 1 (the default) the file is byte for byte
what it was before `--keep` existed.

The files are read through `cfspec.workspace.reading` and `cfspec.workspace.metrics_rows`, and
filter.jsonl's lines are `cfspec.workspace.filter_lines`'; this module only decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cfspec.diagnostics.records import Diagnostic
from cfspec.workspace.atomic import write_text_atomic
from cfspec.workspace.filter_lines import FilterLine, GateFailure, SeedVerdict
from cfspec.workspace.layout import FILTER_FILE
from cfspec.workspace.metrics_rows import MetricsRow, read_metrics
from cfspec.workspace.reading import StageError, is_number, json_line, read_pair_file

# --- gates ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bound:
    """A gate on any numeric metric of the registry: `--gate NAME>=X` or `--gate NAME<=X`."""

    metric: str
    op: str  # ">=" or "<="
    threshold: float

    @property
    def key(self) -> str:  # as filter.jsonl's "gates" records it
        return ("min_" if self.op == ">=" else "max_") + self.metric

    def passes(self, value: float) -> bool:
        return value >= self.threshold if self.op == ">=" else value <= self.threshold


def parse_bound(text: str) -> Bound:
    """`NAME>=X` or `NAME<=X` for a numeric metric of the registry, else StageError."""
    from cfspec.workspace.metrics import numeric

    for op in (">=", "<="):
        name, found, number = text.partition(op)
        if found:
            break
    else:
        raise StageError(f"--gate {text!r}: expected NAME>=VALUE or NAME<=VALUE")
    name = name.strip()
    metrics = {metric.name: metric for metric in numeric()}
    if name not in metrics:
        raise StageError(f"--gate {text!r}: {name!r} is not a numeric metric; one of: "
                         + ", ".join(metrics))
    try:
        threshold = float(number)
    except ValueError:
        raise StageError(f"--gate {text!r}: {number.strip()!r} is not a number") from None
    if not math.isfinite(threshold):
        raise StageError(f"--gate {text!r}: the threshold must be finite")
    return Bound(name, op, threshold)


@dataclass(frozen=True)
class Gates:
    """Minimum values a (pair, seed) must reach (InstructPix2Pix's defaults), and any bounds on
    other metrics of the registry."""

    min_clip: float = 0.2  # each image's cosine similarity to its own prompt
    min_directional: float = 0.2
    min_image_similarity: float = 0.7
    bounds: tuple[Bound, ...] = ()
    source: str = field(default="defaults", compare=False)  # where they were read from

    def as_dict(self) -> dict[str, float]:
        return {"min_clip": self.min_clip, "min_directional": self.min_directional,
                "min_image_similarity": self.min_image_similarity,
                **{bound.key: bound.threshold for bound in self.bounds}}

    def describe(self) -> str:
        return (f"CLIP similarity >= {self.min_clip:g} per image, directional >= "
                f"{self.min_directional:g}, image-image >= {self.min_image_similarity:g}"
                + "".join(f", {b.metric} {b.op} {b.threshold:g}" for b in self.bounds))


# [tool.cfspec] key -> (Gates attribute, lowest, highest allowed value)
CONFIG_KEYS: dict[str, tuple[str, float, float]] = {
    "filter-min-clip": ("min_clip", 0.0, 1.0),
    "filter-min-directional": ("min_directional", -1.0, 1.0),
    "filter-min-image-similarity": ("min_image_similarity", -1.0, 1.0),
}


_RANGES = {attr: (low, high) for attr, low, high in CONFIG_KEYS.values()}


def check_gate_value(attr: str, value: object, what: str | None = None) -> float:
    """A threshold as a float, or StageError naming the setting (`what`, default the flag)
    and its range."""
    low, high = _RANGES[attr]
    what = what or "--" + attr.replace("_", "-")
    if not is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
        raise StageError(f"{what} must be a number, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if not low <= number <= high:
        raise StageError(f"{what} must be between {low:g} and {high:g}, got {number:g}")
    return number


def load_gates(start: Path | None = None, bounds: tuple[str, ...] = (),
               **overrides: float | None) -> Gates:
    """Gates from the `filter-*` keys of `[tool.cfspec]` (read and range-checked by
    cfspec.lang.config), then `overrides` (the flags) that are not None."""
    from cfspec.lang.config import Config, ConfigError, load_config

    try:
        config = load_config(start)
    except ConfigError as error:
        raise StageError(str(error)) from error
    values = {
        "min_clip": config.filter_min_clip,
        "min_directional": config.filter_min_directional,
        "min_image_similarity": config.filter_min_image_similarity,
    }
    defaults = Config()
    from_file = values != {
        "min_clip": defaults.filter_min_clip,
        "min_directional": defaults.filter_min_directional,
        "min_image_similarity": defaults.filter_min_image_similarity,
    }
    sources = [str(config.source)] if from_file else []
    for attr, value in overrides.items():
        if attr not in _RANGES:
            raise TypeError(f"unknown gate {attr!r}")
        if value is not None:
            values[attr] = check_gate_value(attr, value)
            if "command line" not in sources:
                sources.append("command line")
    parsed = tuple(parse_bound(text) for text in bounds)
    keys = [bound.key for bound in parsed]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:  # filter.jsonl records one threshold per key: two would hide one
        raise StageError(f"--gate: {', '.join(repeated)} is given more than once; keep one")
    if parsed and "command line" not in sources:
        sources.append("command line")
    return Gates(**values, bounds=parsed, source=" and ".join(sources) or "defaults")


# (gate, reported metric, row key, value as the gate reads it)
_CHECKS: tuple[tuple[str, str, str, Callable[[float], float]], ...] = (
    ("min_clip", "clip_similarity_0", "clip_score_0", lambda v: v / 100.0),
    ("min_clip", "clip_similarity_1", "clip_score_1", lambda v: v / 100.0),
    ("min_directional", "directional_similarity", "directional_similarity", float),
    ("min_image_similarity", "image_image_similarity", "image_image_similarity", float),
)

UNDEFINED_DIRECTION = ("undefined: the images or the prompts do not differ in CLIP space, so "
                       "the change has no direction")


def check_seed(row: MetricsRow, gates: Gates) -> SeedVerdict:
    """Every gate for one (pair, seed); each failure names the gate, the metric, its value and
    the threshold (and a reason when the value is missing or undefined). All gates are
    checked, so every failure is recorded."""
    failed: list[GateFailure] = []
    thresholds = gates.as_dict()
    for gate, metric, key, convert in _CHECKS:
        threshold = thresholds[gate]
        raw = row.number(key)
        name = gate.replace("_", "-")
        if raw is None:
            failed.append(GateFailure(name, metric, None, threshold, "not measured"))
            continue
        value = convert(raw)
        if key == "directional_similarity" and row.directional_defined is False:
            failed.append(GateFailure(name, metric, value, threshold, UNDEFINED_DIRECTION))
        elif value < threshold:
            failed.append(GateFailure(name, metric, value, threshold))
    for bound in gates.bounds:
        raw = row.number(bound.metric)
        name = bound.key.replace("_", "-", 1)
        if raw is None:
            failed.append(GateFailure(name, bound.metric, None, bound.threshold, "not measured"))
        elif not bound.passes(raw):
            failed.append(GateFailure(name, bound.metric, raw, bound.threshold))
    return SeedVerdict(row.seed, not failed, tuple(failed))


def decide(pair_id: str, rows: Mapping[int, MetricsRow], gates: Gates,
           keep: int = 1) -> FilterLine:
    """The filter's decision for one pair from its seeds' metric rows: its `keep` best
    passing seeds (fewer when fewer pass)."""
    check_keep(keep)
    verdicts = tuple(check_seed(rows[seed], gates) for seed in sorted(rows))

    def decision(kept: int | None, reason: str, similarity: float | None = None,
                 ranked: tuple[int, ...] = ()) -> FilterLine:
        return FilterLine(pair_id, kept, reason, similarity, gates.as_dict(), verdicts,
                          ranked, keep)

    if not verdicts:
        return decision(None, "not evaluated: no rows in metrics.jsonl (run `cfspec evaluate`)")
    passing = [v.seed for v in verdicts if v.passed]
    if not passing:
        counts: dict[str, int] = {}
        for verdict in verdicts:
            for gate in {f.gate for f in verdict.failed}:
                counts[gate] = counts.get(gate, 0) + 1
        which = ", ".join(f"{gate} ({n})" for gate, n in sorted(counts.items()))
        return decision(None, f"none of {len(verdicts)} seed(s) passed every gate; failed: "
                        f"{which}")
    # A passing seed has a finite directional similarity: its gate checked it.
    ranked = tuple(sorted(passing, key=lambda s: (
        -(rows[s].number("directional_similarity") or 0.0), s))[:keep])
    best = ranked[0]
    value = rows[best].number("directional_similarity") or 0.0
    if keep == 1:
        return decision(best, f"seed {best}: the highest directional similarity "
                        f"({value:.4f}) of {len(passing)} of {len(verdicts)} seed(s) that "
                        "passed every gate", value, ranked)
    values = ", ".join(f"{rows[s].number('directional_similarity') or 0.0:.4f}" for s in ranked)
    fewer = (f"; only {len(passing)} passed, fewer than --keep {keep}"
             if len(passing) < keep else "")
    seeds = ", ".join(str(s) for s in ranked)
    return decision(best, f"seed(s) {seeds}: the {len(ranked)} highest directional "
                    f"similarities ({values}) of {len(passing)} of {len(verdicts)} seed(s) "
                    f"that passed every gate{fewer}", value, ranked)


def check_keep(keep: object) -> int:
    """`--keep K`: an integer K >= 1, else StageError."""
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise StageError(f"--keep must be an integer of at least 1 (seeds kept per pair), "
                         f"got {keep!r}")
    return keep


@dataclass
class FilterResult:
    path: Path
    decisions: list[FilterLine]
    gates: Gates
    diagnostics: list[Diagnostic]
    keep: int = 1

    @property
    def kept(self) -> int:
        """Pairs with at least one kept seed."""
        return sum(1 for d in self.decisions if d.kept_seed is not None)

    @property
    def kept_rows(self) -> int:
        """Kept (pair, seed)s: the rows an export writes."""
        return sum(len(d.kept) for d in self.decisions)

    @property
    def short(self) -> int:
        """Pairs kept with fewer than `keep` seeds (fewer passed every gate)."""
        return sum(1 for d in self.decisions if 0 < len(d.kept) < self.keep)

    def failure_counts(self) -> dict[str, int]:
        """How many (pair, seed) failed each gate."""
        counts: dict[str, int] = {}
        for decision in self.decisions:
            for verdict in decision.seeds:
                for gate in {f.gate for f in verdict.failed}:
                    counts[gate] = counts.get(gate, 0) + 1
        return counts


def run_filter(out: Path, gates: Gates, keep: int = 1) -> FilterResult:
    """Decide every pair of OUT/pairs.jsonl from OUT/metrics.jsonl, keeping each pair's `keep`
    best seeds; write OUT/filter.jsonl (atomically). Raises StageError when an input file is
    missing or `keep` is below 1."""
    check_keep(keep)
    pairs, diagnostics = read_pair_file(out)
    by_id = {p.id: p for p in pairs}
    rows, problems = read_metrics(out, by_id)
    decisions = [decide(p.id, rows.get(p.id, {}), gates, keep) for p in pairs]
    target = out / FILTER_FILE
    write_text_atomic(target, "".join(json_line(d.to_json()) for d in decisions))
    return FilterResult(target, decisions, gates, [*diagnostics, *problems], keep)
