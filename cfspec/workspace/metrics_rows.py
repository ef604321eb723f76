"""Reading back OUT/metrics.jsonl (`read_metrics`: one `MetricsRow` per (pair, seed), checked
against the metric registry), `evaluate --shard`'s shard files (`read_metric_shards`) and
metrics_summary.json (`read_summary`). The shared line checks are `cfspec.workspace.reading`'s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic
from cfspec.workspace.layout import (
    METRICS_FILE,
    METRICS_SHARD_GLOB,
    METRICS_SHARD_PATTERN,
    SUMMARY_FILE,
)
from cfspec.workspace.metrics import METRICS, RESERVED
from cfspec.workspace.pairs import Pair
from cfspec.workspace.reading import (
    LineReport,
    StageError,
    check_id_seed,
    finite,
    is_int,
    is_number,
    json_lines,
    read_text,
    stale_prompt,
)

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


def read_metrics(out: Path, pairs: Mapping[str, Pair]
                 ) -> tuple[dict[str, dict[int, MetricsRow]], list[Diagnostic]]:
    """OUT/metrics.jsonl, validated: id -> seed -> row. Gate metrics must be numbers or null."""
    path = out / METRICS_FILE
    if not path.is_file():
        raise StageError(f"{path}: not found (run `cfspec evaluate {out}` first)")
    report = LineReport(path, read_text(path), "invalid-metrics-file")
    rows: dict[str, dict[int, MetricsRow]] = {}
    for number, row in json_lines(path, report, torn_ok=False):
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
    if not check_id_seed(row, number, report, pairs):
        return False
    if severity is None and stale_prompt(row, number, report, pairs[row["id"]], rerun):
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
        report = LineReport(path, read_text(path), "invalid-metrics-file")
        rerun = f"cfspec evaluate {out}"
        for number, row in json_lines(path, report, torn_ok=True):
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
