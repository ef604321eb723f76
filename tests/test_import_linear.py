"""`cfspec import` takes time and memory proportional to the answer (issue 23: a 16,000-edge
chain took 290 s and 23.8 GB). Each shape in tests/import_shapes.py reaches one place where an
importer could grow with the square of the graph; importing it at 4x the size must cost about
4x, never 16x.

Tolerances follow from the arithmetic, not from one machine: linear work doubles per doubling
of the input and quadratic work quadruples, so a bound of 2.5x per doubling (6.25x for two)
passes the first with room for fixed costs and catches the second. Memory (tracemalloc's peak)
and the size of the report are deterministic, so they are held to that bound exactly. Time is
not asserted here (no timed assertions in tests): benchmarks/import_bench.py measures seconds
per edge at each size against the same run's smallest size.
"""

from __future__ import annotations

import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest

from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.source import SourceFile
from cfspec.diagnostics.views import LONG_LINE, render
from cfspec.fmt import format_source
from cfspec.importers import import_file, import_source

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_shapes import SHAPES  # noqa: E402

PER_DOUBLING = 2.5  # linear: 2; quadratic: 4
CASES = Path(__file__).resolve().parent / "import_cases"


@dataclass(frozen=True)
class Cost:
    peak: int  # bytes, tracemalloc's peak
    report: int  # characters of the text report of every diagnostic
    diagnostics: int


def _import(text: str) -> tuple[int, int]:
    items = import_source(SourceFile("answer.json", text))
    diagnostics = [d for item in items for d in item.diagnostics]
    report = render(diagnostics, "text")
    assert all(item.scm is not None for item in items)
    return len(report), len(diagnostics)


def measure(shape: str, n: int) -> Cost:
    text = SHAPES[shape](n)
    tracemalloc.start()
    try:
        report, count = _import(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Cost(peak, report, count)


def _assert_linear(shape: str, small_n: int, factor: int) -> None:
    small, large = measure(shape, small_n), measure(shape, small_n * factor)
    doublings = factor.bit_length() - 1
    bound = PER_DOUBLING ** doublings
    assert large.diagnostics <= factor * small.diagnostics + 10, (small, large)
    assert large.peak / small.peak <= bound, (shape, small, large)
    assert large.report / small.report <= bound, (shape, small, large)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_import_is_linear_from_1k_to_4k_edges(shape: str) -> None:
    _assert_linear(shape, 1000, 4)


def test_the_issue_s_chain_is_linear_from_4k_to_16k_edges() -> None:
    _assert_linear("chain", 4000, 4)


def test_a_long_line_is_shown_in_excerpts() -> None:
    """A one-line JSON answer: each diagnostic shows a window of the line around its marks,
    not the whole line (which made the report grow with the square of the file)."""
    (item,) = import_source(SourceFile("answer.json", SHAPES["chain-one-line"](2000)))
    text = item.source.text
    assert item.source.line_count == 1 and len(text) > 50 * LONG_LINE
    warning = next(d for d in item.diagnostics if d.level is Severity.WARNING)
    shown = render([warning], "text")
    assert len(shown) < 4 * LONG_LINE + len(warning.message) + sum(map(len, warning.notes)) \
        + len(warning.help or "")
    # The excerpt holds the marked text, with its caret under it.
    marked = text[warning.span.start:warning.span.end]
    lines = shown.splitlines()
    snippet = lines[3]
    carets = next(line for line in lines[4:] if "^" in line)
    at = carets.index("^")
    assert snippet[at:at + len(marked)] == marked
    assert "..." in snippet


def test_short_lines_are_shown_whole() -> None:
    (item,) = import_file(CASES / "json_cycle2.json")
    cycle = next(d for d in item.diagnostics if d.code.name == "cycle")
    line = cycle.source.line_text(cycle.span.line)
    assert line.rstrip() in render([cycle], "text")


def _written() -> list[str]:
    inputs = sorted(p for p in CASES.iterdir() if p.is_file() and not p.name.endswith(".expect"))
    return [item.scm for path in inputs for item in import_file(path) if item.scm is not None]


def test_what_import_writes_is_already_formatted() -> None:
    """The writer lays out specs itself (running the formatter would parse every file twice
    more: most of a large graph's import); `cfspec fmt` must find nothing to change."""
    written = _written()
    assert len(written) > 40
    for text in written:
        formatted, errors = format_source(SourceFile("x.scm", text))
        assert errors == [] and formatted == text, text


def test_a_header_lists_a_few_of_each_code_and_counts_the_rest() -> None:
    """A 2,000-edge chain has 2,001 variables the caption does not show: the written spec's
    header gives HEADER_EACH of those warnings in full and counts the others (the full list was
    most of the file and of import's time); `--format concise` still lists every one."""
    from cfspec.importers.passes.spec import HEADER_EACH

    (item,) = import_source(SourceFile("answer.json", SHAPES["chain"](2000)))
    assert item.scm is not None
    header = [line for line in item.scm.splitlines() if line.startswith("#")]
    hidden = sum(1 for d in item.diagnostics if d.code.name == "span-not-in-prompt") - HEADER_EACH
    assert hidden > 1000
    assert sum("warning[span-not-in-prompt]" in line for line in header) == HEADER_EACH
    assert f"# ... and {hidden} more `span-not-in-prompt`: `cfspec import --format concise` " \
        "lists every one" in header
    assert len(header) < 40


def test_lint_findings_moved_below_a_longer_header_are_lints_own() -> None:
    """When lint finds more than the importer, the header grows and lint's findings are moved
    down with the body instead of linting the spec again: they must be exactly what linting the
    written text finds."""
    from cfspec.lang.config import Config
    from cfspec.lint import check

    moved = 0
    for item in import_file(CASES / "coco_agreement.jsonl"):
        assert item.scm is not None
        if not any("found by `cfspec lint` on the written .scm" in d.notes
                   for d in item.diagnostics):
            continue  # the header was written once
        moved += 1
        relinted = check(SourceFile(f"{item.item_id}.scm", item.scm), Config()).diagnostics
        assert relinted
        assert [(d.code, d.span, [lb.span for lb in d.labels]) for d in item.relint] == \
            [(d.code, d.span, [lb.span for lb in d.labels]) for d in relinted]
        assert all(d.source.text == item.scm for d in item.relint)
    assert moved
