"""The reporters: what users read in a terminal, what CI and code scanning parse."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest

from cfspec import __version__
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic, DiagnosticBag, Label
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.diagnostics.views import FORMATS, render, summary_line

PLATE = """\
spec plate {
  var F = "fork"
  var P = "plate"
  var T = "table"
  var C = "cup"
  var S = "spoon"
  var K = "knife"
  var B = "bowl"
  var G = "glass"
  var N = "napkin"
  prompt "a fork on a plate"
  F -> P
  P -> F
}
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def span_of(source: SourceFile, needle: str, occurrence: int = 0) -> Span:
    """The span of the n-th occurrence of `needle` in the source text."""
    start = -1
    for _ in range(occurrence + 1):
        start = source.text.index(needle, start + 1)
    return source.span(start, start + len(needle))


def cycle(source: SourceFile | None = None) -> Diagnostic:
    source = source or SourceFile("specs/plate.scm", PLATE)
    return DiagnosticBag(source).report(
        "cycle",
        span_of(source, "F -> P"),
        "cycle F -> P -> F",
        label="edge 1 of the cycle",
        labels=[Label(span_of(source, "P -> F"), "edge 2 of the cycle")],
        notes=["a causal graph must be acyclic"],
        help="remove one of the edges",
    )


def underlined(output: str) -> list[tuple[str, str, str]]:
    """(marker, source text above it, label) for every underline row of a text rendering.

    Relies on source rows and underline rows sharing the same gutter width, which is what
    makes the carets line up on a terminal."""
    found = []
    source_row = ""
    for row in output.splitlines():
        if re.match(r"^\s*\d+ \|", row):
            source_row = row
            continue
        m = re.match(r"^(\s* \| *)([\^]+|-+)(?: (.*))?$", row)
        if m:
            start = len(m.group(1))
            end = start + len(m.group(2))
            found.append((m.group(2)[0], source_row[start:end], m.group(3) or ""))
    return found


# --- text -------------------------------------------------------------------------------------


def test_text_matches_the_rustc_layout() -> None:
    assert render([cycle()], "text") == (
        "error[SCM201]: cycle F -> P -> F  [cycle]\n"
        "  --> specs/plate.scm:12:3\n"
        "   |\n"
        "12 |   F -> P\n"
        "   |   ^^^^^^ edge 1 of the cycle\n"
        "13 |   P -> F\n"
        "   |   ------ edge 2 of the cycle\n"
        "   |\n"
        "   = note: a causal graph must be acyclic\n"
        "   = help: remove one of the edges\n"
    )


def test_carets_sit_under_the_spanned_characters() -> None:
    assert underlined(render([cycle()], "text")) == [
        ("^", "F -> P", "edge 1 of the cycle"),
        ("-", "P -> F", "edge 2 of the cycle"),
    ]


def test_tabs_are_expanded_consistently_with_the_carets() -> None:
    source = SourceFile("t.scm", 'spec s {\n\tvar\tX = "x"\n\t\tX -> Y\n}\n')
    d = DiagnosticBag(source).report(
        "undefined-variable",
        span_of(source, "Y"),
        "`Y` is not declared",
        label="not declared",
        labels=[Label(span_of(source, '"x"'), "words")],
    )
    out = render([d], "text")
    assert "\t" not in out
    assert underlined(out) == [("-", '"x"', "words"), ("^", "Y", "not declared")]
    assert '2 |     var X = "x"' in out  # tab stops of 4: `\tvar\t` is 8 columns


def test_non_ascii_characters_keep_carets_aligned() -> None:
    source = SourceFile("u.scm", 'spec s {\n  prompt "a café → à table"  A -> B\n}\n')
    d = DiagnosticBag(source).report(
        "self-loop",
        span_of(source, "A -> B"),
        "edge",
        label="this edge",
        labels=[Label(span_of(source, "→"), "arrow")],
    )
    assert underlined(render([d], "text")) == [("-", "→", "arrow"), ("^", "A -> B", "this edge")]


def test_wide_characters_take_two_columns() -> None:
    source = SourceFile("w.scm", 'prompt "猫" X\n')
    d = DiagnosticBag(source).report("syntax-error", span_of(source, "X"), "bad", label="here")
    rows = render([d], "text").splitlines()
    text_row = next(r for r in rows if r.startswith("1 |"))
    caret_row = next(r for r in rows if "^" in r)
    assert text_row == '1 | prompt "猫" X'
    # `prompt "` is 8 cells, 猫 two, `" ` two more: X is at screen column 12 after the gutter.
    assert caret_row.index("^") == len("1 | ") + 12


def test_lines_of_every_label_are_shown_in_order_with_gaps_marked() -> None:
    source = SourceFile("specs/plate.scm", PLATE)
    d = DiagnosticBag(source).report(
        "duplicate-variable",
        span_of(source, "F", 1),  # in `F -> P` on line 12
        "`F` is used in a cycle",
        labels=[
            Label(span_of(source, "var F"), "declared here"),
            Label(span_of(source, "var P"), ""),
        ],
    )
    rows = render([d], "text").splitlines()
    numbered = [r.split("|")[0].strip() for r in rows if re.match(r"^\s*\d+ \|", r)]
    assert numbered == ["2", "3", "12"]
    assert rows.index("...") == next(i for i, r in enumerate(rows) if r.startswith("12 |")) - 1
    assert rows.count("...") == 1  # lines 2 and 3 are adjacent: no gap between them
    assert all(r.startswith("   |") or r == "..." or r[:3].strip().isdigit() for r in rows[2:])
    assert underlined("\n".join(rows)) == [
        ("-", "var F", "declared here"),
        ("-", "var P", ""),
        ("^", "F", ""),
    ]


def test_multi_line_span_is_underlined_to_the_end_of_its_first_line() -> None:
    source = SourceFile("specs/plate.scm", PLATE)
    start = PLATE.index("F -> P")
    d = DiagnosticBag(source).report(
        "cycle", source.span(start, PLATE.index("}")), "cycle", label="these edges"
    )
    assert underlined(render([d], "text")) == [("^", "F -> P", "these edges")]


@pytest.mark.parametrize(
    "text, span",
    [
        ("", Span(1, 1, 1, 1, 0, 0)),  # an empty file
        ("abc\n", Span(1, 9, 1, 12, 8, 11)),  # past the end of the line
        ("abc\n", Span(7, 1, 7, 2, 50, 51)),  # past the end of the file
        ("abc", Span(1, 4, 1, 4, 3, 3)),  # an empty span at the end
        ("abc\r\n", Span(1, 2, 3, 1, 1, 5)),  # CRLF and an end past the file
        ("ab", Span(1, 2, 1, 1, 1, 0)),  # end before start
    ],
)
def test_spans_outside_the_text_do_not_crash(text: str, span: Span) -> None:
    source = SourceFile("edge.scm", text)
    d = DiagnosticBag(source).report("syntax-error", span, "odd span", label="here")
    for fmt in FORMATS:
        assert render([d], fmt)
    out = render([d], "text")
    marks = underlined(out)
    assert len(marks) == 1 and marks[0][0] == "^" and marks[0][2] == "here"


def test_empty_file_shows_one_caret_at_the_start() -> None:
    source = SourceFile("empty.scm", "")
    d = DiagnosticBag(source).report("empty-graph", source.span(0, 0), "nothing here", label="x")
    assert render([d], "text").splitlines()[2:] == ["  |", "1 |", "  | ^ x"]


def test_control_characters_in_the_source_cannot_reach_the_terminal() -> None:
    source = SourceFile("evil.scm", 'prompt "\x1b[2J" \u202eX\n')
    d = DiagnosticBag(source).report("syntax-error", span_of(source, "X"), "bad\x07", label="here")
    out = render([d], "text") + render([d], "concise")
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert underlined(render([d], "text")) == [("^", "X", "here")]


def test_diagnostics_are_separated_by_blank_lines_in_order() -> None:
    first, second = cycle(), cycle(SourceFile("other.scm", PLATE))
    out = render([first, second], "text")
    assert out == render([first], "text") + "\n" + render([second], "text")
    assert render([], "text") == ""


def test_gutter_widens_for_long_files() -> None:
    text = "\n" * 120 + "X\n"
    source = SourceFile("long.scm", text)
    d = DiagnosticBag(source).report("syntax-error", span_of(source, "X"), "bad", label="here")
    rows = render([d], "text").splitlines()
    assert rows[1] == "   --> long.scm:121:1"
    assert rows[3] == "121 | X"
    assert rows[4] == "    | ^ here"


# --- color ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_ansi_without_color(fmt: str) -> None:
    assert "\x1b" not in render([cycle()], fmt)


def test_color_adds_ansi_and_nothing_else() -> None:
    d = cycle()
    for fmt in ("text", "concise"):
        colored = render([d], fmt, color=True)
        assert "\x1b[1;31m" in colored  # errors are bold red
        assert ANSI.sub("", colored) == render([d], fmt)
    warning = d.with_severity(Severity.WARNING)
    assert "\x1b[1;33mwarning[SCM201]" in render([warning], "text", color=True)
    assert "\x1b[1;34m" in render([d], "text", color=True)  # the gutter


# --- concise ----------------------------------------------------------------------------------


def test_concise_is_one_ruff_style_line_per_diagnostic() -> None:
    source = SourceFile("specs/plate.scm", PLATE)
    bag = DiagnosticBag(source)
    bag.report("cycle", span_of(source, "F -> P"), "cycle F -> P -> F")
    bag.report("unused-variable", span_of(source, "var T"), "`T` is unused\nsecond line")
    assert render(bag.items, "concise") == (
        "specs/plate.scm:12:3: SCM201 [cycle] cycle F -> P -> F\n"
        "specs/plate.scm:4:3: SCM103 [unused-variable] `T` is unused second line\n"
    )


# --- json -------------------------------------------------------------------------------------


def test_json_round_trips_to_the_contract_shape() -> None:
    other = SourceFile("b.scm", "X")
    second = DiagnosticBag(other).report("syntax-error", other.span(0, 1), "bad")
    data = json.loads(render([cycle(), second], "json"))
    assert [d["code"] for d in data] == ["SCM201", "SCM001"]  # the given order
    first = data[0]
    contract = {
        "code",
        "name",
        "severity",
        "message",
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "notes",
        "help",
    }
    assert contract <= set(first)
    assert first["name"] == "cycle" and first["severity"] == "error"
    assert (first["line"], first["column"], first["end_line"], first["end_column"]) == (
        12,
        3,
        12,
        9,
    )
    assert first["labels"][0]["line"] == 13 and first["labels"][0]["column"] == 3
    assert first["notes"] == ["a causal graph must be acyclic"]
    assert (data[1]["line"], data[1]["column"]) == (1, 1)  # 1-based at the first character
    assert json.loads(render([], "json")) == []


# --- sarif ------------------------------------------------------------------------------------

_LOCATION = {
    "type": "object",
    "required": ["physicalLocation"],
    "properties": {
        "physicalLocation": {
            "type": "object",
            "required": ["artifactLocation", "region"],
            "properties": {
                "artifactLocation": {
                    "type": "object",
                    "required": ["uri"],
                    "properties": {"uri": {"type": "string", "pattern": "^[^\\\\]*$"}},
                },
                "region": {
                    "type": "object",
                    "required": ["startLine", "startColumn", "endLine", "endColumn"],
                    "additionalProperties": {"type": "integer", "minimum": 1},
                },
            },
        },
        "message": {"$ref": "#/$defs/message"},
    },
}

# A hand-written subset of the SARIF 2.1.0 schema: what code-scanning uploads rely on.
SARIF_SUBSET = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "level": {"enum": ["none", "note", "warning", "error"]},
        "message": {
            "type": "object",
            "required": ["text"],
            "properties": {"text": {"type": "string", "minLength": 1}},
        },
        "location": _LOCATION,
    },
    "type": "object",
    "required": ["$schema", "version", "runs"],
    "properties": {
        "$schema": {"const": "https://json.schemastore.org/sarif-2.1.0.json"},
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "informationUri", "version", "rules"],
                                "properties": {
                                    "name": {"const": "cfspec"},
                                    "informationUri": {"type": "string", "format": "uri"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": [
                                                "id",
                                                "name",
                                                "shortDescription",
                                                "defaultConfiguration",
                                            ],
                                            "properties": {
                                                "id": {
                                                    "type": "string",
                                                    "pattern": "^SCM[0-9]{3}$",
                                                },
                                                "name": {
                                                    "type": "string",
                                                    "pattern": "^[a-z]+(-[a-z]+)*$",
                                                },
                                                "shortDescription": {"$ref": "#/$defs/message"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "required": ["level"],
                                                    "properties": {
                                                        "level": {"$ref": "#/$defs/level"},
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "ruleIndex", "level", "message", "locations"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": 0},
                                "level": {"$ref": "#/$defs/level"},
                                "message": {"$ref": "#/$defs/message"},
                                "locations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {"$ref": "#/$defs/location"},
                                },
                                "relatedLocations": {
                                    "type": "array",
                                    "items": {
                                        "allOf": [
                                            {"$ref": "#/$defs/location"},
                                            {"required": ["id", "message"]},
                                        ]
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def _sample() -> list[Diagnostic]:
    source = SourceFile("specs\\win dir\\plate.scm", PLATE)
    bag = DiagnosticBag(source)
    bag.report("unused-variable", span_of(source, "var T"), "`T` is unused")
    bag.report(
        "cycle",
        span_of(source, "F -> P"),
        "cycle F -> P -> F",
        labels=[Label(span_of(source, "P -> F"), "edge 2 of the cycle")],
        help="remove one of the edges",
    )
    bag.report("unused-variable", span_of(source, "var C"), "`C` is unused", severity=Severity.NOTE)
    return bag.items


def test_sarif_validates_against_the_subset_schema() -> None:
    log = json.loads(render(_sample(), "sarif"))
    jsonschema.Draft202012Validator(SARIF_SUBSET).validate(log)
    jsonschema.Draft202012Validator(SARIF_SUBSET).validate(json.loads(render([], "sarif")))


def test_sarif_rules_levels_and_locations_agree_with_the_results() -> None:
    diagnostics = _sample()
    run = json.loads(render(diagnostics, "sarif"))["runs"][0]
    driver, results = run["tool"]["driver"], run["results"]
    assert driver["version"] == __version__
    rules = driver["rules"]
    assert [r["id"] for r in rules] == ["SCM103", "SCM201"]  # one per code that occurs
    assert [r["defaultConfiguration"]["level"] for r in rules] == ["warning", "error"]
    assert rules[1]["name"] == "cycle"
    assert rules[1]["shortDescription"]["text"] == "The graph is not acyclic."
    assert len(results) == len(diagnostics)
    for result, d in zip(results, diagnostics, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == d.code.code
    assert [r["level"] for r in results] == ["warning", "error", "note"]
    cyc = results[1]
    assert cyc["message"]["text"] == "cycle F -> P -> F\nhelp: remove one of the edges"
    location = cyc["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "specs/win%20dir/plate.scm"
    assert location["region"] == {"startLine": 12, "startColumn": 3, "endLine": 12, "endColumn": 9}
    related = cyc["relatedLocations"][0]
    assert related["message"]["text"] == "edge 2 of the cycle"
    assert related["physicalLocation"]["region"]["startLine"] == 13
    assert run["columnKind"] == "unicodeCodePoints"


# --- github -----------------------------------------------------------------------------------


def test_github_annotations_escape_messages_and_properties() -> None:
    source = SourceFile("dir,with:odd/plate.scm", PLATE)
    bag = DiagnosticBag(source)
    bag.report("cycle", span_of(source, "F -> P"), "100% sure:\nline two\r, done")
    bag.report("unused-variable", span_of(source, "var T"), "unused")
    bag.report("unused-variable", span_of(source, "var C"), "fyi", severity=Severity.NOTE)
    rows = render(bag.items, "github").splitlines()
    assert rows == [
        "::error file=dir%2Cwith%3Aodd/plate.scm,line=12,col=3,endLine=12,endColumn=9,"
        "title=SCM201 cycle::100%25 sure:%0Aline two%0D, done",
        "::warning file=dir%2Cwith%3Aodd/plate.scm,line=4,col=3,endLine=4,endColumn=8,"
        "title=SCM103 unused-variable::unused",
        "::notice file=dir%2Cwith%3Aodd/plate.scm,line=5,col=3,endLine=5,endColumn=8,"
        "title=SCM103 unused-variable::fyi",
    ]


def test_github_drops_end_column_for_multi_line_spans() -> None:
    source = SourceFile("a.scm", "ab\ncd\n")
    d = DiagnosticBag(source).report("cycle", source.span(1, 4), "m", help="h")
    assert render([d], "github") == (
        "::error file=a.scm,line=1,col=2,endLine=2,title=SCM201 cycle::m%0Ahelp: h\n"
    )


# --- dispatch and summary ---------------------------------------------------------------------


def test_unknown_format_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render([], "xml")


def test_summary_line_counts_severities_and_files() -> None:
    assert summary_line([]) == "All checks passed."
    d = cycle()
    warning = d.with_severity(Severity.WARNING)
    note = d.with_severity(Severity.NOTE)
    other = cycle(SourceFile("other.scm", PLATE))
    assert summary_line([d]) == "Found 1 error in 1 file."
    assert summary_line([d, other, warning]) == "Found 2 errors and 1 warning in 2 files."
    assert summary_line([warning, warning]) == "Found 2 warnings in 1 file."
    assert summary_line([d, warning, note]) == "Found 1 error, 1 warning and 1 note in 1 file."


def test_importing_the_reporter_stays_light() -> None:
    code = ("import sys, cfspec.diagnostics.views; "
            "print('rich' in sys.modules, 'unicodedata' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
