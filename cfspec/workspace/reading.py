"""Reading back what the stages leave in OUT: what every reader shares.

Each line is validated and every problem is a diagnostic that names the file, the line and the
field, so a hand-edited or truncated file is reported, never a traceback. Evaluate, filter,
export and the report all read through here and the readers of each file:
`cfspec.workspace.manifest_lines` (manifest.jsonl), `cfspec.workspace.metrics_rows`
(metrics.jsonl, its shards and metrics_summary.json) and `cfspec.workspace.filter_lines`
(filter.jsonl). Imports neither torch nor anything heavy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cfspec.diagnostics.codes import BY_NAME, Code, Severity
from cfspec.diagnostics.records import Diagnostic, DiagnosticBag
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.workspace.layout import PAIRS_FILE
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


def json_lines(path: Path, report: LineReport,
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


def read_text(path: Path) -> str:
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


def check_id_seed(record: dict[str, Any], number: int, report: LineReport,
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


def stale_prompt(record: dict[str, Any], number: int, report: LineReport, pair: Pair,
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


def json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
