"""Reading back what the stages leave in OUT: pairs.jsonl, manifest.jsonl, metrics.jsonl,
filter.jsonl and metrics_summary.json.

Each line is validated and every problem is a diagnostic that names the file, the line and the
field, so a hand-edited or truncated file is reported, never a traceback. Evaluate, filter,
export and the report all read through here. Imports neither torch nor anything heavy.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cfspec.diagnostics.codes import BY_NAME, Code, Severity
from cfspec.diagnostics.records import Diagnostic, DiagnosticBag
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.workspace.layout import (
    FILTER_FILE,
    IMAGES_DIR,
    MANIFEST_FILE,
    METRICS_FILE,
    METRICS_SHARD_GLOB,
    METRICS_SHARD_PATTERN,
    PAIRS_FILE,
    SUMMARY_FILE,
    image_paths,
)
from cfspec.workspace.metrics import METRICS, RESERVED
from cfspec.workspace.pairs import Pair


class StageError(RuntimeError):
    """A stage cannot run at all (a missing input file, bad settings): a usage error, exit 2."""


# --- diagnostics for the files cfspec reads back ------------------------------------------------

def stage_code(name: str) -> Code:
    return BY_NAME[name]


class LineReport:
    """Diagnostics about the lines of one JSON Lines file, each pointing at the line and, when
    the field's key is on it, at the field."""

    def __init__(self, path: Path, text: str, code: str) -> None:
        self.source = SourceFile(str(path), text)
        self.bag = DiagnosticBag(self.source)
        self.code = stage_code(code)

    def _span(self, line: int, key: str | None) -> Span:
        span = self.source.line_span(line)
        if key is not None:
            text = self.source.line_text(line)
            at = text.find(json.dumps(key) + ":")
            if at >= 0:
                start = span.start + at
                return self.source.span(start, start + len(json.dumps(key)))
        return span

    def add(self, line: int, key: str | None, message: str, *, help: str | None = None,
            severity: Severity | None = None) -> None:
        where = f"line {line}" + (f", field `{key}`" if key else "")
        self.bag.items.append(Diagnostic(
            code=self.code, message=f"{where}: {message}", source=self.source,
            span=self._span(line, key), label=key or "this line", help=help, severity=severity,
        ))

    @property
    def items(self) -> list[Diagnostic]:
        return self.bag.items


def _json_lines(path: Path, report: LineReport,
                torn_ok: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line that is a JSON object; other lines are reported
    (a warning where a killed writer may have torn a line, else an error)."""
    # split("\n"), not splitlines(): a prompt may hold U+2028, U+2029 or U+0085 unescaped.
    for number, line in enumerate(report.source.text.rstrip("\n").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            if torn_ok:
                report.add(number, None, f"not JSON ({error.msg}); skipped (a run killed "
                           "mid-write leaves such a line; `cfspec generate` compacts it away)",
                           severity=Severity.WARNING)
            else:
                report.add(number, None, f"not JSON: {error.msg}",
                           help=f"re-run the stage that writes {path.name}")
            continue
        if not isinstance(value, dict):
            report.add(number, None, f"expected a JSON object, got {type(value).__name__}")
            continue
        yield number, value


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise StageError(f"{path}: not UTF-8 text ({error.reason})") from error
    except OSError as error:
        raise StageError(f"{path}: cannot read it: {error.strerror or error}") from error


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value: object) -> float | None:
    """`value` as a finite float, or None: not a number, a bool, inf, nan, or an integer too
    large for a float (JSON allows any number of digits; a hand-edited file may have one)."""
    if not is_number(value):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _check_id_seed(record: dict[str, Any], number: int, report: LineReport,
                   pairs: Mapping[str, Pair], seed_key: str = "seed",
                   seed_optional: bool = False) -> bool:
    pair_id = record.get("id")
    if not isinstance(pair_id, str) or not pair_id:
        report.add(number, "id", "missing or not a string")
        return False
    if pair_id not in pairs:
        report.add(number, "id", f"{pair_id!r} is not in pairs.jsonl; skipped (a pair removed "
                   "since this file was written)", severity=Severity.WARNING)
        return False
    seed = record.get(seed_key)
    if seed is None and seed_optional and seed_key in record:
        return True
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        report.add(number, seed_key, f"expected a non-negative integer, got {seed!r}")
        return False
    return True


def _stale_prompt(record: dict[str, Any], number: int, report: LineReport, pair: Pair,
                  rerun: str) -> bool:
    for which, key in enumerate(("prompt_0", "prompt_1")):
        if key in record and record[key] != pair.prompt(which):
            report.add(number, key, f"{record[key]!r} differs from pairs.jsonl's "
                       f"{pair.prompt(which)!r}: written for an older compile",
                       help=f"re-run `{rerun}`")
            return True
    return False


# --- OUT's files ---------------------------------------------------------------------------------


def read_pair_file(out: Path) -> tuple[list[Pair], list[Diagnostic]]:
    """OUT/pairs.jsonl through `workspace.pairs.read_pairs` (validated against the schema)."""
    from cfspec.workspace.pairs import read_pairs

    path = out / PAIRS_FILE
    if not path.is_file():
        raise StageError(f"{path}: not found (run `cfspec compile SPECS -o {out}` first)")
    try:
        return read_pairs(path)
    except UnicodeDecodeError as error:
        raise StageError(f"{path}: not UTF-8 text ({error.reason})") from error
    except OSError as error:
        raise StageError(f"{path}: cannot read it: {error.strerror or error}") from error


@dataclass(frozen=True)
class ManifestLine:
    """One line of manifest.jsonl: a finished (pair, seed) and every setting that made it."""

    id: str
    seed: int
    # As recorded (model, scheduler, steps, guidance, dtype, size, ...): provenance shows every
    # key, including ones a later generate adds, so they stay a name -> JSON value table.
    settings: dict[str, object]

    @property
    def superseded(self) -> bool:
        """A tombstone: a run began to overwrite this (pair, seed) with other parameters."""
        return self.settings.get("superseded") is True

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "seed": self.seed, **self.settings}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManifestLine:
        return cls(data["id"], data["seed"],
                   {k: v for k, v in data.items() if k not in ("id", "seed")})

    def text(self, name: str) -> str | None:
        value = self.settings.get(name)
        return value if isinstance(value, str) else None

    def integer(self, name: str) -> int | None:
        value = self.settings.get(name)
        return value if is_int(value) else None  # type: ignore[return-value]

    def number(self, name: str) -> float | None:
        return finite(self.settings.get(name))

    def drawn(self) -> Drawn:
        """The guidance this (pair, seed) was made with, and the settings generate drew for it
        (`"drawn": {"guidance"?, "cross_replace"?, "self_replace"?}`, only the sampled keys;
        absent when nothing was sampled). A value that is not a finite number counts as not
        drawn (`read_manifest` warns about it)."""
        found = self.settings.get("drawn")
        values = found if isinstance(found, dict) else {}
        return Drawn(self.number("guidance"), finite(values.get("guidance")) is not None,
                     finite(values.get("cross_replace")), finite(values.get("self_replace")))


# The settings generate may draw per (pair, seed), as its manifest's `drawn` names them.
DRAWN_KEYS = ("guidance", "cross_replace", "self_replace")


@dataclass(frozen=True)
class Drawn:
    """How one (pair, seed) was made, where generate may have sampled it."""

    guidance: float | None  # the effective guidance, drawn or fixed; None: not recorded
    guidance_drawn: bool  # True: sampled for this (pair, seed)
    cross_replace: float | None  # the drawn x of the cross-attention window [0, x]; None: fixed
    self_replace: float | None  # the drawn x of the self-attention window [0, x]; None: fixed

    def sampled(self) -> dict[str, float]:
        """Only what was drawn: name -> value, in DRAWN_KEYS order."""
        values = {"guidance": self.guidance if self.guidance_drawn else None,
                  "cross_replace": self.cross_replace, "self_replace": self.self_replace}
        return {k: v for k, v in values.items() if v is not None}


def _drawn_problem(record: Mapping[str, Any]) -> str | None:
    """Why a manifest line's `drawn` is not what generate writes, or None."""
    if "drawn" not in record:
        return None
    drawn = record["drawn"]
    if not isinstance(drawn, dict):
        return f"expected an object of setting -> number, got {json.dumps(drawn)[:60]}"
    unknown = sorted(set(drawn) - set(DRAWN_KEYS))
    if unknown:
        return f"unknown drawn setting(s) {', '.join(map(repr, unknown))}; skipped"
    bad = [k for k, v in drawn.items() if finite(v) is None]
    if bad:
        return f"{bad[0]!r} is {json.dumps(drawn[bad[0]])[:40]}, not a finite number; skipped"
    return None


@dataclass(frozen=True)
class Generated:
    """One finished (pair, seed) of the manifest, with its files (all inside OUT/images)."""

    id: str
    seed: int
    line: ManifestLine
    image_0: Path
    image_1: Path
    extras: Path | None  # None: the .npz is missing (latent and background metrics skipped)


MetricValue = float | bool | None


@dataclass(frozen=True)
class MetricsRow:
    """One line of metrics.jsonl: a (pair, seed)'s metrics, checked against the registry."""

    id: str
    seed: int
    # Each registry metric the row has, then any other number evaluate wrote (CLD's counts,
    # flags): name -> value, null where not measured.
    values: dict[str, MetricValue]
    reasons: dict[str, str]  # metric -> why it is null (`<metric>_reason` in the file)
    directional_defined: bool | None = None
    clip_model: str | None = None
    # What the row is about, as evaluate copies it from pairs.jsonl and the manifest.
    about: RowAbout | None = None

    def to_json(self) -> dict[str, Any]:
        """The metrics.jsonl line: what it is about, the values, then why any is null."""
        data: dict[str, Any] = {"id": self.id, "seed": self.seed}
        if self.about is not None:
            data.update(self.about.to_json())
        if self.clip_model is not None:
            data["clip_model"] = self.clip_model
        data.update(self.values)
        if self.directional_defined is not None:
            data["directional_defined"] = self.directional_defined
        data.update({f"{name}_reason": reason for name, reason in self.reasons.items()})
        return data

    def number(self, name: str) -> float | None:
        """The metric as a finite float, or None (not measured, or a bool)."""
        return finite(self.values.get(name))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricsRow:
        """From a line whose id, seed and registry metrics were checked."""
        values: dict[str, MetricValue] = {}
        for key, value in data.items():
            if key in _ROW_FIELDS or key.endswith("_reason"):
                continue
            if value is None or isinstance(value, bool) or is_number(value):
                values[key] = value
        reasons = {key[:-len("_reason")]: str(value) for key, value in data.items()
                   if key.endswith("_reason") and isinstance(value, str)}
        defined = data.get("directional_defined")
        clip = data.get("clip_model")
        return cls(data["id"], data["seed"], values, reasons,
                   defined if isinstance(defined, bool) else None,
                   clip if isinstance(clip, str) else None, RowAbout.from_json(data))


@dataclass(frozen=True)
class RowAbout:
    """What a metrics line is about: its pair's spec and prompts, the model and image size."""

    spec: str | None = None
    counterfactual: str | None = None
    prompt_0: str | None = None
    prompt_1: str | None = None
    model: str | None = None
    height: int | None = None
    width: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "counterfactual": self.counterfactual,
                "prompt_0": self.prompt_0, "prompt_1": self.prompt_1, "model": self.model,
                "height": self.height, "width": self.width}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RowAbout | None:
        if not any(key in data for key in _ABOUT):
            return None

        def text(key: str) -> str | None:
            return data[key] if isinstance(data.get(key), str) else None

        def size(key: str) -> int | None:
            return data[key] if is_int(data.get(key)) else None

        return cls(text("spec"), text("counterfactual"), text("prompt_0"), text("prompt_1"),
                   text("model"), size("height"), size("width"))


_ABOUT = tuple(f.name for f in fields(RowAbout))
# Fields of a metrics line that describe the (pair, seed) rather than measure it.
_ROW_FIELDS = RESERVED


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


def _inside(root: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def read_manifest(out: Path, pairs: Mapping[str, Pair]
                  ) -> tuple[dict[str, dict[int, Generated]], list[Diagnostic]]:
    """OUT/manifest.jsonl, validated: id -> seed -> Generated (the last line per (id, seed)).

    A line is skipped, and reported, when it is not JSON (a warning: a killed writer tears
    lines), names a pair pairs.jsonl no longer has (warning), has a bad seed, was made for other
    prompts than pairs.jsonl's (an older compile), or its PNGs are missing or lie outside OUT
    (errors). A missing .npz is a warning; the Generated then has `extras=None`."""
    path = out / MANIFEST_FILE
    if not path.is_file():
        raise StageError(_no_manifest(out, path))
    report = LineReport(path, _read_text(path), "invalid-manifest")
    found: dict[str, dict[int, Generated]] = {}
    images_root = out / IMAGES_DIR
    for number, record in _json_lines(path, report, torn_ok=True):
        if not _check_id_seed(record, number, report, pairs):
            continue
        pair_id, seed = record["id"], record["seed"]
        line = ManifestLine.from_json(record)
        if line.superseded:
            # A run killed while regenerating with new parameters: these files may be
            # half-replaced, so the (pair, seed) counts as not generated until a run finishes it.
            found.get(pair_id, {}).pop(seed, None)
            continue
        pair = pairs[pair_id]
        if _stale_prompt(record, number, report, pair, f"cfspec generate {out}"):
            continue
        png_0, png_1, npz = image_paths(out, pair_id, seed)
        missing = [p for p in (png_0, png_1) if not p.is_file()]
        if missing:
            report.add(number, "image_0" if png_0 in missing else "image_1",
                       f"{missing[0]} is missing", help=f"re-run `cfspec generate {out}`")
            continue
        outside = [p for p in (png_0, png_1, npz) if p.exists() and not _inside(images_root, p)]
        if outside:
            report.add(number, None, f"{outside[0]} resolves outside {images_root}; refused")
            continue
        drawn = _drawn_problem(record)
        if drawn is not None:
            report.add(number, "drawn", drawn, severity=Severity.WARNING)
        extras: Path | None = npz
        if not npz.is_file():
            report.add(number, "extras", f"{npz} is missing: latent and background metrics are "
                       "skipped for this seed", severity=Severity.WARNING)
            extras = None
        found.setdefault(pair_id, {})[seed] = Generated(pair_id, seed, line, png_0, png_1, extras)
    ordered = {pid: dict(sorted(seeds.items())) for pid, seeds in found.items()}
    return ordered, report.items


def _no_manifest(out: Path, path: Path) -> str:
    """Why there is nothing to read, saying what was found: images without a manifest are a
    generate run stopped before it finished its first (pair, seed)."""
    images = out / IMAGES_DIR
    found = sorted(images.glob("*/*.png")) if images.is_dir() else []
    if not found:
        return f"{path}: not found (run `cfspec generate {out}` first)"
    folders = len({p.parent for p in found})
    return (f"{path}: not found, but {images} holds {len(found)} image(s) in {folders} pair "
            "folder(s): a `cfspec generate` run stopped before it recorded its first finished "
            f"(pair, seed); run `cfspec generate {out}` again to finish (it resumes)")


def read_metrics(out: Path, pairs: Mapping[str, Pair]
                 ) -> tuple[dict[str, dict[int, MetricsRow]], list[Diagnostic]]:
    """OUT/metrics.jsonl, validated: id -> seed -> row. Gate metrics must be numbers or null."""
    path = out / METRICS_FILE
    if not path.is_file():
        raise StageError(f"{path}: not found (run `cfspec evaluate {out}` first)")
    report = LineReport(path, _read_text(path), "invalid-metrics-file")
    rows: dict[str, dict[int, MetricsRow]] = {}
    for number, row in _json_lines(path, report, torn_ok=False):
        if not _metrics_line_ok(row, number, report, pairs, f"cfspec evaluate {out}"):
            continue
        seeds = rows.setdefault(row["id"], {})
        if row["seed"] in seeds:
            report.add(number, "seed", f"repeats seed {row['seed']} of pair {row['id']!r}")
            continue
        seeds[row["seed"]] = MetricsRow.from_json(row)
    return {pid: dict(sorted(s.items())) for pid, s in rows.items()}, report.items


def _metrics_line_ok(row: dict[str, Any], number: int, report: LineReport,
                     pairs: Mapping[str, Pair], rerun: str,
                     severity: Severity | None = None) -> bool:
    """A metrics line's id, seed, prompts and registry values checked (problems reported).
    With a `severity` (shard files) the prompts are not checked: a row made for other
    prompts has another inputs digest, so it is recomputed, not reported."""
    if not _check_id_seed(row, number, report, pairs):
        return False
    if severity is None and _stale_prompt(row, number, report, pairs[row["id"]], rerun):
        return False
    bad = next((m for m in METRICS if row.get(m.name) is not None
                and not m.valid(row[m.name])), None)
    if bad is not None:
        report.add(number, bad.name, f"expected {bad.describe_range()} or null, got "
                   f"{row[bad.name]!r}", help=f"re-run `{rerun}`", severity=severity)
        return False
    defined = row.get("directional_defined")
    if defined is not None and not isinstance(defined, bool):
        report.add(number, "directional_defined", f"expected true or false, got {defined!r}",
                   severity=severity)
        return False
    return True


# The digest of what a shard's row was computed from (images, .npz, manifest line, pair,
# CLIP model and evaluate's settings): a row is reused only while it still matches.
INPUTS_KEY = "inputs_sha256"


def read_metric_shards(out: Path, pairs: Mapping[str, Pair]
                       ) -> tuple[dict[tuple[str, int], dict[str, MetricsRow]], list[Path],
                                  list[Diagnostic]]:
    """Every OUT/metrics.shard-I-of-N.jsonl (`evaluate --shard`), validated: (id, seed) ->
    inputs digest -> row, the files read, and problems as warnings (a line that cannot be
    used is recomputed, never fatal). Files are read in name order; for a (pair, seed) and
    digest found twice the first is kept (equal digests: equal inputs)."""
    found: dict[tuple[str, int], dict[str, MetricsRow]] = {}
    # a link is not followed: shard files are evaluate's own, written in OUT
    files = sorted(p for p in out.glob(METRICS_SHARD_GLOB)
                   if METRICS_SHARD_PATTERN.fullmatch(p.name) and p.is_file()
                   and not p.is_symlink())
    problems: list[Diagnostic] = []
    for path in files:
        report = LineReport(path, _read_text(path), "invalid-metrics-file")
        rerun = f"cfspec evaluate {out}"
        for number, row in _json_lines(path, report, torn_ok=True):
            if not _metrics_line_ok(row, number, report, pairs, rerun, Severity.WARNING):
                continue
            digest = row.get(INPUTS_KEY)
            if not isinstance(digest, str) or not digest:
                report.add(number, INPUTS_KEY, "missing: the row cannot be matched to its "
                           "inputs, so it is recomputed", severity=Severity.WARNING)
                continue
            found.setdefault((row["id"], row["seed"]), {}).setdefault(
                digest, MetricsRow.from_json(row))
        problems += report.items
    return found, files, problems


def read_filter(out: Path, pairs: Mapping[str, Pair]
                ) -> tuple[dict[str, FilterLine], list[Diagnostic]] | None:
    """OUT/filter.jsonl, validated: id -> decision; None when there is no filter.jsonl."""
    path = out / FILTER_FILE
    if not path.is_file():
        return None
    report = LineReport(path, _read_text(path), "invalid-filter-file")
    decisions: dict[str, FilterLine] = {}
    for number, line in _json_lines(path, report, torn_ok=False):
        if "kept_seed" not in line:
            report.add(number, None, "no `kept_seed` field")
            continue
        if not _check_id_seed(line, number, report, pairs, "kept_seed", seed_optional=True):
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


def read_summary(out: Path) -> dict[str, Any] | None:
    """OUT/metrics_summary.json, or None when absent, unreadable, or not the summary of the
    metrics.jsonl beside it (its `metrics_sha256` differs: a run killed between the two)."""
    try:
        data = json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8"))
        rows = (out / METRICS_FILE).read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("metrics_sha256") != metrics_digest(rows):
        return None
    return data


def metrics_digest(rows: bytes) -> str:
    """What ties a summary to its metrics.jsonl: the SHA-256 of the file's bytes."""
    return hashlib.sha256(rows).hexdigest()


def json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
