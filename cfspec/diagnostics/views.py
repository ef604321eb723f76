"""Views over diagnostics: `text` (rustc-style snippets), `concise`, `json`, `sarif`, `github`.

Checks only collect `Diagnostic` records; this is the one place that turns them into output.
It is on the linter's start-up path, so it builds strings by hand (no rich) and imports only
`json` eagerly; `unicodedata` and `urllib.parse` are imported when a line or path needs them.

Every view returns a complete string that ends with a newline (or is empty when a line-based
view has nothing to say), so callers write it as is: `sys.stdout.write(render(ds, fmt))`.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cfspec.diagnostics.codes import Severity

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from cfspec.diagnostics.records import Diagnostic
    from cfspec.diagnostics.source import SourceFile, Span

FORMATS = ("text", "concise", "json", "sarif", "github")

TAB_WIDTH = 4
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/cfspec/"


def render(diagnostics: Sequence[Diagnostic], fmt: str, *, color: bool = False) -> str:
    """Render `diagnostics` in their given order. `color` adds ANSI styles to `text` and
    `concise`; the machine-readable formats ignore it."""
    if fmt == "text":
        return render_text(diagnostics, color)
    if fmt == "concise":
        return render_concise(diagnostics, color)
    if fmt == "json":
        return render_json(diagnostics)
    if fmt == "sarif":
        return render_sarif(diagnostics)
    if fmt == "github":
        return render_github(diagnostics)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def summary_line(diagnostics: Sequence[Diagnostic]) -> str:
    """The closing line of a lint run, counting by severity and by file with a problem."""
    if not diagnostics:
        return "All checks passed."
    counts = [
        _plural(sum(1 for d in diagnostics if d.level is level), level.value)
        for level in (Severity.ERROR, Severity.WARNING, Severity.NOTE)
    ]
    parts = [c for c in counts if not c.startswith("0 ")]
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    files = _plural(len({d.file for d in diagnostics}), "file")
    return f"Found {joined} in {files}."


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


# --- ANSI styles ------------------------------------------------------------------------------

_LEVEL_STYLE = {Severity.ERROR: "1;31", Severity.WARNING: "1;33", Severity.NOTE: "1;36"}
_GUTTER = "1;34"
_BOLD = "1"


def _paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{style}m{text}\x1b[0m" if color and text else text


# --- making user text safe and measurable on a terminal ---------------------------------------

# Control characters become their Unicode "control pictures" and bidirectional overrides
# (Trojan Source) a replacement character: one code point each, so indices are unchanged, and
# nothing in a spec (or an imported LLM answer) can move the cursor or reorder the line.
_VISIBLE = {c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A)} | {0x7F: 0x2421}
_VISIBLE |= {c: 0xFFFD for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _visible(text: str) -> str:
    """User text with control characters other than tab and newline made harmless."""
    return text.translate(_VISIBLE)


def _char_width(ch: str) -> int:
    """Terminal cells a character takes: 2 for East Asian wide, 0 for combining marks."""
    if ch.isascii():
        return 1
    import unicodedata

    if unicodedata.category(ch) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _expand(text: str) -> tuple[str, list[int]]:
    """A source line as shown (tabs expanded to stops of TAB_WIDTH) and `cols[i]`, the screen
    column of character i (`cols[len(text)]` is the line's width), so carets line up."""
    text = _visible(text)
    if text.isascii() and "\t" not in text:
        return text, list(range(len(text) + 1))
    shown: list[str] = []
    cols = [0]
    col = 0
    for ch in text:
        if ch == "\t":
            step = TAB_WIDTH - col % TAB_WIDTH
            shown.append(" " * step)
        else:
            step = _char_width(ch)
            shown.append(ch)
        col += step
        cols.append(col)
    return "".join(shown), cols


# --- text -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Mark:
    """An underline on one line: character indices [start, end) of that line."""

    line: int
    start: int
    end: int
    primary: bool
    message: str


def _mark(source: SourceFile, span: Span, primary: bool, message: str) -> _Mark:
    """Clamp a span to its first line; past-the-end and empty spans get one caret at the end."""
    line = max(1, span.line)
    first, last = source.line_bounds(line)
    length = last - first
    start = min(max(span.column - 1, 0), length)
    if span.end_line == span.line:
        end = min(max(span.end_column - 1, start), length)
    elif span.end_line > span.line:
        end = length  # a multi-line span is underlined to the end of its first line
    else:
        end = start
    return _Mark(line, start, end, primary, message)


# A line longer than this is shown in excerpts around its marks (a JSON file written on one
# line is one line of megabytes: printing it whole for every diagnostic is quadratic output).
LONG_LINE = 200
_CONTEXT = 30  # characters shown on each side of a mark in an excerpt
_MARK_SHOWN = 80  # a longer mark is shown (and underlined) over its first this many characters
_ELLIPSIS = "..."


def _excerpt(source: SourceFile, number: int, marks: Sequence[_Mark]
             ) -> tuple[str, Callable[[_Mark], tuple[int, int]]]:
    """A line as shown, and the screen columns [left, right) each mark underlines: the whole
    line when it is short, else the pieces around its marks joined by `...` (a long mark is
    underlined to the end of its piece). Only those pieces are read from the source, so the
    cost is the marks', not the line's."""
    first, last = source.line_bounds(number)
    length = last - first
    if length <= LONG_LINE:
        shown, cols = _expand(source.text[first:last])
        return shown, lambda m: (cols[m.start], cols[m.end])
    windows: list[list[int]] = []
    for m in sorted(marks, key=lambda m: m.start):
        lo = max(0, m.start - _CONTEXT)
        hi = min(length, min(max(m.end, m.start + 1), m.start + _MARK_SHOWN) + _CONTEXT)
        if windows and lo <= windows[-1][1] + len(_ELLIPSIS):
            windows[-1][1] = max(windows[-1][1], hi)
        else:
            windows.append([lo, hi])
    parts: list[str] = []
    pieces: list[tuple[int, int, int, list[int]]] = []  # (lo, hi, screen column of lo, cols)
    col = 0
    for lo, hi in windows:
        if lo > 0:
            parts.append(_ELLIPSIS)
            col += len(_ELLIPSIS)
        text, cols = _expand(source.text[first + lo:first + hi])
        pieces.append((lo, hi, col, cols))
        parts.append(text)
        col += cols[-1]
    if windows[-1][1] < length:
        parts.append(_ELLIPSIS)

    starts = [lo for lo, _ in windows]

    def reach(m: _Mark) -> tuple[int, int]:
        lo, hi, at, cols = pieces[bisect.bisect_right(starts, m.start) - 1]
        return at + cols[m.start - lo], at + cols[min(m.end, hi) - lo]

    return "".join(parts), reach


# A code found in more files than this is shown in the first FOLD_FILES of them, then counted:
# 5,000 imported captions that each lack a graph are one fact, not 45,000 lines. Inside one file
# a code is shown FOLD_EACH times, then counted: a 16,000-edge answer's 16,000 unplaced
# variables are one fact too (192,000 lines of terminal before).
FOLD_FILES = 3
FOLD_EACH = 20


def render_text(diagnostics: Sequence[Diagnostic], color: bool = False) -> str:
    """rustc/ruff-style blocks, separated by blank lines. A code that repeats across many
    files, or many times in one file, is shown the first times, then summarized in one line
    (the other views keep every item)."""
    shown, folded = fold_repeats(diagnostics)
    blocks = [_text_one(d, color) for d in shown]
    blocks += [_paint(line, _BOLD, color) + "\n" for line in folded]
    return "\n".join(blocks)


def fold_repeats(diagnostics: Sequence[Diagnostic], files: int = FOLD_FILES,
                 each: int = FOLD_EACH) -> tuple[list[Diagnostic], list[str]]:
    """The diagnostics to show (a code's first `each` in each of its first `files` files) and
    a line for each code whose other items were left out."""
    files_of: dict[str, dict[str, None]] = {}  # code -> its files, in order (an ordered set)
    for d in diagnostics:
        files_of.setdefault(d.code.code, {})[d.file] = None
    kept = {code: set(list(names)[:files]) for code, names in files_of.items()}
    shown: list[Diagnostic] = []
    times: Counter[tuple[str, str]] = Counter()  # (code, file) -> shown so far
    hidden: dict[str, list[Diagnostic]] = {}
    for d in diagnostics:
        key = (d.code.code, d.file)
        if d.file in kept[d.code.code] and times[key] < each:
            times[key] += 1
            shown.append(d)
        else:
            hidden.setdefault(d.code.code, []).append(d)
    lines = []
    for code, left_out in hidden.items():
        first = left_out[0]
        others = len(files_of[code]) - files
        where = f" in {_plural(others, 'other file')}" if others > 0 else \
            f" in {_visible(first.file)}" if len(files_of[code]) == 1 else ""
        lines.append(
            f"... and {_plural(len(left_out), f'more `{first.code.name}` {first.level.value}')}"
            f" ({code}){where}: --format concise lists every one; "
            f"--ignore {first.code.name} hides them")
    return shown, lines


def _text_one(d: Diagnostic, color: bool) -> str:
    level_style = _LEVEL_STYLE[d.level]
    marks = [_mark(d.source, d.span, True, d.label)]
    marks += [_mark(d.source, lb.span, False, lb.message) for lb in d.labels]
    marks.sort(key=lambda m: (m.line, m.start, not m.primary))
    lines = sorted({m.line for m in marks})
    width = len(str(lines[-1]))
    pad = " " * width
    bar = _paint(pad + " |", _GUTTER, color)

    header = _paint(f"{d.level.value}[{d.code.code}]", level_style, color)
    out = [
        f"{header}{_paint(': ' + _visible(d.message), _BOLD, color)}  [{d.code.name}]",
        f"{pad}{_paint('-->', _GUTTER, color)} {_visible(d.file)}:{d.span.line}:{d.span.column}",
        bar,
    ]
    previous = 0
    for number in lines:
        if previous and number > previous + 1:
            out.append(_paint("...", _GUTTER, color))
        previous = number
        on_line = [m for m in marks if m.line == number]
        shown, reach = _excerpt(d.source, number, on_line)
        gutter = _paint(f"{number:>{width}} |", _GUTTER, color)
        out.append(f"{gutter} {shown}".rstrip())
        for m in on_line:
            left, right = reach(m)
            underline = ("^" if m.primary else "-") * max(1, right - left)
            if m.message:
                underline += " " + _visible(m.message)
            style = level_style if m.primary else _GUTTER
            out.append(f"{bar} {' ' * left}{_paint(underline, style, color)}")
    if d.notes or d.help:
        out.append(bar)
    extras = [("note", n) for n in d.notes] + ([("help", d.help)] if d.help else [])
    for kind, text in extras:
        prefix = f"{pad} = {kind}: "
        body = _visible(text).replace("\n", "\n" + " " * len(prefix))
        out.append(f"{pad} = {_paint(kind, _BOLD, color)}: {body}")
    return "\n".join(out) + "\n"


# --- concise ----------------------------------------------------------------------------------


def render_concise(diagnostics: Sequence[Diagnostic], color: bool = False) -> str:
    """One line per diagnostic, `file:line:col: CODE [name] message`, for grep and editors."""
    rows = []
    for d in diagnostics:
        where = _paint(f"{_visible(d.file)}:{d.span.line}:{d.span.column}:", _BOLD, color)
        code = _paint(d.code.code, _LEVEL_STYLE[d.level], color)
        message = " ".join(_visible(d.message).split("\n"))
        rows.append(f"{where} {code} [{d.code.name}] {message}\n")
    return "".join(rows)


# --- json -------------------------------------------------------------------------------------


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    """The contract's array of `Diagnostic.to_json()` objects."""
    return json.dumps([d.to_json() for d in diagnostics], indent=2) + "\n"


# --- sarif ------------------------------------------------------------------------------------


def _full_message(d: Diagnostic) -> str:
    """Message plus notes and help, for views that have a single text field."""
    parts = [d.message] + [f"note: {n}" for n in d.notes]
    if d.help:
        parts.append(f"help: {d.help}")
    return "\n".join(parts)


def _artifact_uri(name: str) -> str:
    """A file name as a SARIF URI reference: forward slashes, percent-encoded."""
    from urllib.parse import quote

    path = name.replace("\\", "/")
    if len(path) > 2 and path[0].isalpha() and path[1:3] == ":/":  # a Windows drive
        return "file:///" + path[:2] + quote(path[2:], safe="/")
    return quote(path, safe="/")


def _region(span: Span) -> dict[str, int]:
    return {
        "startLine": span.line,
        "startColumn": span.column,
        "endLine": span.end_line,
        "endColumn": span.end_column,
    }


def _location(uri: str, span: Span) -> dict[str, object]:
    return {"physicalLocation": {"artifactLocation": {"uri": uri}, "region": _region(span)}}


def sarif_log(diagnostics: Sequence[Diagnostic]) -> dict[str, object]:
    """A SARIF 2.1.0 log with one run; rules are the codes that occur, sorted by code."""
    from cfspec import __version__

    codes = sorted({d.code.code: d.code for d in diagnostics}.values(), key=lambda c: c.code)
    index = {c.code: i for i, c in enumerate(codes)}
    rules = [
        {
            "id": c.code,
            "name": c.name,
            "shortDescription": {"text": c.summary},
            "help": {"text": f"Run `cfspec explain {c.name}` for a failing and a fixed example."},
            "defaultConfiguration": {"level": c.severity.value},
        }
        for c in codes
    ]
    results = []
    for d in diagnostics:
        uri = _artifact_uri(d.file)
        result: dict[str, object] = {
            "ruleId": d.code.code,
            "ruleIndex": index[d.code.code],
            "level": d.level.value,
            "message": {"text": _full_message(d)},
            "locations": [_location(uri, d.span)],
        }
        if d.labels:
            result["relatedLocations"] = [
                {"id": i, **_location(uri, lb.span), "message": {"text": lb.message}}
                for i, lb in enumerate(d.labels)
            ]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "cfspec",
                        "informationUri": INFORMATION_URI,
                        "version": __version__,
                        "rules": rules,
                    }
                },
                # Our columns count code points; SARIF's default is UTF-16 code units.
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render_sarif(diagnostics: Sequence[Diagnostic]) -> str:
    """SARIF for code-scanning uploads (GitHub, Azure DevOps, IDE viewers)."""
    return json.dumps(sarif_log(diagnostics), indent=2) + "\n"


# --- github -----------------------------------------------------------------------------------

_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def _github_data(text: str) -> str:
    """Escape a workflow command's message, as the Actions runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """Property values additionally escape the `:` and `,` that delimit them."""
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow commands, shown as annotations on the pull request."""
    rows = []
    for d in diagnostics:
        span = d.span
        props = [
            ("file", d.file.replace("\\", "/")),
            ("line", str(span.line)),
            ("col", str(span.column)),
            ("endLine", str(span.end_line)),
        ]
        if span.end_line == span.line:  # GitHub ignores end columns across lines
            props.append(("endColumn", str(span.end_column)))
        props.append(("title", f"{d.code.code} {d.code.name}"))
        joined = ",".join(f"{k}={_github_property(v)}" for k, v in props)
        rows.append(f"::{_GITHUB_COMMAND[d.level]} {joined}::{_github_data(_full_message(d))}\n")
    return "".join(rows)
