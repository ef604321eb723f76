"""`cfspec filter OUT`: keep the best candidate (seed) per pair, by InstructPix2Pix's CLIP gates.

A (pair, seed) passes when, as in InstructPix2Pix's dataset filter (Brooks et al. 2023,
`dataset_creation/generate_img_dataset.py`):

* each image's CLIP similarity to its own prompt (cosine, i.e. `clip_score / 100`) >= 0.2,
* the CLIP directional similarity >= 0.2,
* the image-image CLIP similarity >= 0.7.

Of the seeds that pass, the one with the highest directional similarity is kept (ties: the
lowest seed). Thresholds come from `--min-clip`, `--min-directional`, `--min-image-similarity`,
else from `[tool.cfspec]` keys `filter-min-clip`, `filter-min-directional`,
`filter-min-image-similarity` in the nearest pyproject.toml, else the defaults above.

`OUT/filter.jsonl` records every decision, one line per pair of pairs.jsonl, in its order:
`{"id", "kept_seed" (int or null), "reason", "directional_similarity" (of the kept seed),
"gates", "seeds": [{"seed", "passed", "failed": [{"gate", "metric", "value", "threshold",
"reason"?}]}]}`.

This module also reads back the files the stages leave in OUT (manifest.jsonl, metrics.jsonl,
filter.jsonl), validating each line and reporting problems as diagnostics that name the file,
the line and the field; export and report use the same readers. Imports neither torch nor
anything heavy.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfspec.atomic import write_text_atomic
from cfspec.codes import BY_NAME, Code, Severity
from cfspec.diagnostics import Diagnostic, DiagnosticBag
from cfspec.source import SourceFile, Span

PAIRS_FILE = "pairs.jsonl"
MANIFEST_FILE = "manifest.jsonl"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "metrics_summary.json"
FILTER_FILE = "filter.jsonl"

# The pair id pattern of pair.schema.json: the only ids from which paths are ever built.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_ID_LENGTH = 255


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


def _check_id_seed(record: dict[str, Any], number: int, report: LineReport,
                   pairs: Mapping[str, dict[str, Any]], seed_key: str = "seed",
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


def _stale_prompt(record: dict[str, Any], number: int, report: LineReport, pair: dict[str, Any],
                  rerun: str) -> bool:
    for key in ("prompt_0", "prompt_1"):
        if key in record and record[key] != pair[key]:
            report.add(number, key, f"{record[key]!r} differs from pairs.jsonl's "
                       f"{pair[key]!r}: written for an older compile",
                       help=f"re-run `{rerun}`")
            return True
    return False


# --- OUT's files ---------------------------------------------------------------------------------


def read_pair_file(out: Path) -> tuple[list[dict[str, Any]], list[Diagnostic]]:
    """OUT/pairs.jsonl through `cfspec.pairs_io.read_pairs` (validated against the schema)."""
    from cfspec.pairs_io import read_pairs

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
class Generated:
    """One finished (pair, seed) of the manifest, with its files (all inside OUT/images)."""

    id: str
    seed: int
    record: dict[str, Any]
    image_0: Path
    image_1: Path
    extras: Path | None  # None: the .npz is missing (latent and background metrics skipped)


def _inside(root: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def image_files(out: Path, pair_id: str, seed: int) -> tuple[Path, Path, Path]:
    """OUT/images/<id>/<seed>_0.png, _1.png, .npz, from a validated id and an int seed only."""
    from cfspec.gpu.store import image_paths  # the store's layout; it imports nothing heavy

    if not (SAFE_ID.match(pair_id) and len(pair_id) <= MAX_ID_LENGTH):
        raise ValueError(f"pair id {pair_id!r} is not path-safe")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed {seed!r} is not a non-negative integer")
    return image_paths(out, pair_id, seed)


def read_manifest(out: Path, pairs: Mapping[str, dict[str, Any]]
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
    images_root = out / "images"
    for number, record in _json_lines(path, report, torn_ok=True):
        if not _check_id_seed(record, number, report, pairs):
            continue
        pair_id, seed = record["id"], record["seed"]
        if record.get("superseded"):
            # A run killed while regenerating with new parameters: these files may be
            # half-replaced, so the (pair, seed) counts as not generated until a run finishes it.
            found.get(pair_id, {}).pop(seed, None)
            continue
        pair = pairs[pair_id]
        if _stale_prompt(record, number, report, pair, f"cfspec generate {out}"):
            continue
        png_0, png_1, npz = image_files(out, pair_id, seed)
        missing = [p for p in (png_0, png_1) if not p.is_file()]
        if missing:
            report.add(number, "image_0" if png_0 in missing else "image_1",
                       f"{missing[0]} is missing", help=f"re-run `cfspec generate {out}`")
            continue
        outside = [p for p in (png_0, png_1, npz) if p.exists() and not _inside(images_root, p)]
        if outside:
            report.add(number, None, f"{outside[0]} resolves outside {images_root}; refused")
            continue
        extras: Path | None = npz
        if not npz.is_file():
            report.add(number, "extras", f"{npz} is missing: latent and background metrics are "
                       "skipped for this seed", severity=Severity.WARNING)
            extras = None
        found.setdefault(pair_id, {})[seed] = Generated(pair_id, seed, record, png_0, png_1,
                                                        extras)
    ordered = {pid: dict(sorted(seeds.items())) for pid, seeds in found.items()}
    return ordered, report.items


def _no_manifest(out: Path, path: Path) -> str:
    """Why there is nothing to read, saying what was found: images without a manifest are a
    generate run stopped before it finished its first (pair, seed)."""
    images = out / "images"
    found = sorted(images.glob("*/*.png")) if images.is_dir() else []
    if not found:
        return f"{path}: not found (run `cfspec generate {out}` first)"
    folders = len({p.parent for p in found})
    return (f"{path}: not found, but {images} holds {len(found)} image(s) in {folders} pair "
            "folder(s): a `cfspec generate` run stopped before it recorded its first finished "
            f"(pair, seed); run `cfspec generate {out}` again to finish (it resumes)")


def read_metrics(out: Path, pairs: Mapping[str, dict[str, Any]]
                 ) -> tuple[dict[str, dict[int, dict[str, Any]]], list[Diagnostic]]:
    """OUT/metrics.jsonl, validated: id -> seed -> row. Gate metrics must be numbers or null."""
    path = out / METRICS_FILE
    if not path.is_file():
        raise StageError(f"{path}: not found (run `cfspec evaluate {out}` first)")
    report = LineReport(path, _read_text(path), "invalid-metrics-file")
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    for number, row in _json_lines(path, report, torn_ok=False):
        if not _check_id_seed(row, number, report, pairs):
            continue
        if _stale_prompt(row, number, report, pairs[row["id"]], f"cfspec evaluate {out}"):
            continue
        bad = next((k for k in GATE_METRICS if row.get(k) is not None
                    and not (is_number(row[k]) and math.isfinite(row[k]))), None)
        if bad is not None:
            report.add(number, bad, f"expected a finite number or null, got {row[bad]!r}")
            continue
        defined = row.get("directional_defined")
        if defined is not None and not isinstance(defined, bool):
            report.add(number, "directional_defined", f"expected true or false, got {defined!r}")
            continue
        seeds = rows.setdefault(row["id"], {})
        if row["seed"] in seeds:
            report.add(number, "seed", f"repeats seed {row['seed']} of pair {row['id']!r}")
            continue
        seeds[row["seed"]] = row
    return {pid: dict(sorted(s.items())) for pid, s in rows.items()}, report.items


def read_filter(out: Path, pairs: Mapping[str, dict[str, Any]]
                ) -> tuple[dict[str, dict[str, Any]], list[Diagnostic]] | None:
    """OUT/filter.jsonl, validated: id -> decision; None when there is no filter.jsonl."""
    path = out / FILTER_FILE
    if not path.is_file():
        return None
    report = LineReport(path, _read_text(path), "invalid-filter-file")
    decisions: dict[str, dict[str, Any]] = {}
    for number, line in _json_lines(path, report, torn_ok=False):
        if "kept_seed" not in line:
            report.add(number, None, "no `kept_seed` field")
            continue
        if not _check_id_seed(line, number, report, pairs, "kept_seed", seed_optional=True):
            continue
        if line["id"] in decisions:
            report.add(number, "id", f"repeats the id {line['id']!r}")
            continue
        decisions[line["id"]] = line
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


# --- gates ---------------------------------------------------------------------------------------

GATE_METRICS = ("clip_score_0", "clip_score_1", "directional_similarity",
                "image_image_similarity")


@dataclass(frozen=True)
class Gates:
    """Minimum values a (pair, seed) must reach; InstructPix2Pix's defaults."""

    min_clip: float = 0.2  # each image's cosine similarity to its own prompt
    min_directional: float = 0.2
    min_image_similarity: float = 0.7
    source: str = field(default="defaults", compare=False)  # where they were read from

    def as_dict(self) -> dict[str, float]:
        return {"min_clip": self.min_clip, "min_directional": self.min_directional,
                "min_image_similarity": self.min_image_similarity}

    def describe(self) -> str:
        return (f"CLIP similarity >= {self.min_clip:g} per image, directional >= "
                f"{self.min_directional:g}, image-image >= {self.min_image_similarity:g}")


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


def load_gates(start: Path | None = None, **overrides: float | None) -> Gates:
    """Gates from the `filter-*` keys of `[tool.cfspec]` (read and range-checked by
    cfspec.config), then `overrides` (the flags) that are not None."""
    from cfspec.config import Config, ConfigError, load_config

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
    return Gates(**values, source=" and ".join(sources) or "defaults")


# (gate, reported metric, row key, value as the gate reads it)
_CHECKS: tuple[tuple[str, str, str, Callable[[float], float]], ...] = (
    ("min_clip", "clip_similarity_0", "clip_score_0", lambda v: v / 100.0),
    ("min_clip", "clip_similarity_1", "clip_score_1", lambda v: v / 100.0),
    ("min_directional", "directional_similarity", "directional_similarity", float),
    ("min_image_similarity", "image_image_similarity", "image_image_similarity", float),
)

UNDEFINED_DIRECTION = ("undefined: the images or the prompts do not differ in CLIP space, so "
                       "the change has no direction")


def check_seed(row: Mapping[str, Any], gates: Gates) -> dict[str, Any]:
    """Every gate for one (pair, seed): `{"seed", "passed", "failed": [...]}`; each failure
    names the gate, the metric, its value and the threshold (and a reason when the value is
    missing or undefined). All gates are checked, so every failure is recorded."""
    failed: list[dict[str, Any]] = []
    thresholds = gates.as_dict()
    for gate, metric, key, convert in _CHECKS:
        threshold = thresholds[gate]
        raw = row.get(key)
        name = gate.replace("_", "-")
        if raw is None or not is_number(raw) or not math.isfinite(raw):
            failed.append({"gate": name, "metric": metric, "value": None,
                           "threshold": threshold, "reason": "not measured"})
            continue
        value = convert(raw)
        if key == "directional_similarity" and row.get("directional_defined") is False:
            failed.append({"gate": name, "metric": metric, "value": value,
                           "threshold": threshold, "reason": UNDEFINED_DIRECTION})
        elif value < threshold:
            failed.append({"gate": name, "metric": metric, "value": value,
                           "threshold": threshold})
    return {"seed": row["seed"], "passed": not failed, "failed": failed}


def decide(pair_id: str, rows: Mapping[int, Mapping[str, Any]], gates: Gates) -> dict[str, Any]:
    """The filter's decision for one pair from its seeds' metric rows."""
    verdicts = [check_seed(rows[seed], gates) for seed in sorted(rows)]
    decision: dict[str, Any] = {"id": pair_id, "kept_seed": None, "reason": "",
                                "directional_similarity": None, "gates": gates.as_dict(),
                                "seeds": verdicts}
    if not verdicts:
        decision["reason"] = "not evaluated: no rows in metrics.jsonl (run `cfspec evaluate`)"
        return decision
    passing = [v["seed"] for v in verdicts if v["passed"]]
    if not passing:
        counts: dict[str, int] = {}
        for verdict in verdicts:
            for gate in {f["gate"] for f in verdict["failed"]}:
                counts[gate] = counts.get(gate, 0) + 1
        which = ", ".join(f"{gate} ({n})" for gate, n in sorted(counts.items()))
        decision["reason"] = f"none of {len(verdicts)} seed(s) passed every gate; failed: {which}"
        return decision
    best = max(passing, key=lambda s: (float(rows[s]["directional_similarity"]), -s))
    value = float(rows[best]["directional_similarity"])
    decision.update(
        kept_seed=best, directional_similarity=value,
        reason=(f"seed {best}: the highest directional similarity ({value:.4f}) of "
                f"{len(passing)} of {len(verdicts)} seed(s) that passed every gate"),
    )
    return decision


@dataclass
class FilterResult:
    path: Path
    decisions: list[dict[str, Any]]
    gates: Gates
    diagnostics: list[Diagnostic]

    @property
    def kept(self) -> int:
        return sum(1 for d in self.decisions if d["kept_seed"] is not None)

    def failure_counts(self) -> dict[str, int]:
        """How many (pair, seed) failed each gate."""
        counts: dict[str, int] = {}
        for decision in self.decisions:
            for verdict in decision["seeds"]:
                for gate in {f["gate"] for f in verdict["failed"]}:
                    counts[gate] = counts.get(gate, 0) + 1
        return counts


def run_filter(out: Path, gates: Gates) -> FilterResult:
    """Decide every pair of OUT/pairs.jsonl from OUT/metrics.jsonl; write OUT/filter.jsonl
    (atomically). Raises StageError when an input file is missing."""
    pairs, diagnostics = read_pair_file(out)
    by_id = {p["id"]: p for p in pairs}
    rows, problems = read_metrics(out, by_id)
    decisions = [decide(p["id"], rows.get(p["id"], {}), gates) for p in pairs]
    target = out / FILTER_FILE
    write_text_atomic(target, "".join(json_line(d) for d in decisions))
    return FilterResult(target, decisions, gates, [*diagnostics, *problems])
