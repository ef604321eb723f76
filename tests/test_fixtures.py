"""Every fixture in specs/invalid/ produces exactly the diagnostics its comments expect.

Expectation syntax, in a comment on the line the diagnostic's primary span starts on:

    W -> A  # expect: cycle@3
    do(W = "man", C = "pie")  # expect: too-many-interventions@19 span-not-in-prompt@23

`name@column`: the code's name and the 1-based column its primary span starts at. Several may
follow one `expect:`. A diagnostic reported at a severity other than its code's default says so:
`empty-graph@5(warning)`. Where the line cannot hold a comment (the end of the file, say),
`# expect-line N: name@column ...` anywhere in the file expects them on line N.

The set of (line, column, name, severity) linted must equal the set expected: a missing or an
extra diagnostic fails. A fixture exits 1 from `cfspec lint` when it expects an error, else 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.diagnostics.codes import ALL_CODES, BY_NAME, Severity
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lint import check, lint, read

ROOT = Path(__file__).resolve().parent.parent
INVALID = ROOT / "specs" / "invalid"

# Codes no .scm text can trigger: only `cfspec import` (an LLM's JSON answer, which states the
# counterfactual graph itself) can add or remove edges beyond what do()-surgery explains.
IMPORT_ONLY = {"unexplained-graph-change", "multiple-graphs", "extra-counterfactuals"}
# Codes about other files cfspec reads back, never about .scm text (workspace/pairs.py, ...).
OTHER_FILES = {
    "invalid-pairs-file", "invalid-manifest", "invalid-metrics-file", "invalid-filter-file",
    "damaged-file", "invalid-answers-file",
}

# Fixtures that are not UTF-8 text, so cannot carry comments: their expectations live here.
NOT_TEXT: dict[str, set[tuple[int, int, str, Severity]]] = {
    # byte 0xE8 in `cr\xe8me`, on line 3 just after `cr` (column 35)
    "invalid-encoding.scm": {(3, 35, "invalid-encoding", Severity.ERROR)},
}

# Codes covered by tests in this file rather than by a fixture's comments.
COVERED_IN_TESTS = {"file-too-large", "internal-error"}

Expectation = tuple[int, int, str, Severity]

_EXPECT = re.compile(r"#\s*expect:\s*(?P<items>.*)$")
_EXPECT_LINE = re.compile(r"#\s*expect-line\s+(?P<line>\d+)\s*:\s*(?P<items>.*)$")
_ITEM = re.compile(r"(?P<name>[a-z0-9-]+)@(?P<column>\d+)(?:\((?P<severity>error|warning|note)\))?")


def _items(items: str, line: int, where: str) -> set[Expectation]:
    out: set[Expectation] = set()
    for raw in items.split():
        m = _ITEM.fullmatch(raw)
        assert m, f"{where}: bad expectation {raw!r}; write name@column or name@column(warning)"
        name = m["name"]
        assert name in BY_NAME, f"{where}: unknown code name {name!r}"
        severity = Severity(m["severity"]) if m["severity"] else BY_NAME[name].severity
        out.add((line, int(m["column"]), name, severity))
    return out


def expectations(path: Path) -> set[Expectation]:
    if path.name in NOT_TEXT:
        return NOT_TEXT[path.name]
    out: set[Expectation] = set()
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path.name}:{number}"
        if m := _EXPECT_LINE.search(text):
            out |= _items(m["items"], int(m["line"]), where)
        elif m := _EXPECT.search(text):
            out |= _items(m["items"], number, where)
    return out


def linted(path: Path) -> set[Expectation]:
    if path.name in NOT_TEXT:
        diagnostics = read(str(path), Config()).diagnostics
    else:
        diagnostics = check(SourceFile.read(path), Config()).diagnostics
    return {(d.span.line, d.span.column, d.code.name, d.level) for d in diagnostics}


def fixtures() -> list[Path]:
    return sorted(INVALID.glob("*.scm"))


def _show(items: set[Expectation]) -> list[str]:
    return [f"{line}:{col} {name} ({sev.value})" for line, col, name, sev in sorted(items)]


def test_there_are_fixtures() -> None:
    assert len(fixtures()) >= 20


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.name)
def test_fixture_diagnostics_match_expectations(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} expects nothing: add `# expect: name@column` comments"
    got = linted(path)
    assert got == expected, (
        f"{path.name}\n  missing: {_show(expected - got)}\n  unexpected: {_show(got - expected)}"
    )


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.name)
def test_fixture_exit_status(path: Path) -> None:
    result = CliRunner().invoke(app, ["lint", "--no-color", str(path)])
    errors = any(sev is Severity.ERROR for *_, sev in expectations(path))
    assert result.exit_code == (1 if errors else 0), result.output
    for _, _, name, _ in expectations(path):
        assert f"[{name}]" in result.output


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.name)
def test_fixture_says_what_is_wrong(path: Path) -> None:
    first = path.read_bytes().split(b"\n", 1)[0]
    assert first.startswith(b"# ") and len(first) > 10, f"{path.name}: start with a comment"


def test_every_code_has_a_fixture() -> None:
    covered = set(COVERED_IN_TESTS)
    for path in fixtures():
        covered |= {name for _, _, name, _ in expectations(path)}
    missing = {c.name for c in ALL_CODES} - IMPORT_ONLY - OTHER_FILES - covered
    assert not missing, f"no fixture in specs/invalid/ triggers: {sorted(missing)}"


def test_fixture_triggers_the_code_it_is_named_after() -> None:
    for path in fixtures():
        named = {n for n in BY_NAME if path.stem == n or path.stem.startswith(n + "-")}
        assert named, f"{path.name}: name fixtures <code-name>.scm or <code-name>-<what>.scm"
        assert named & {name for *_, name, _ in expectations(path)}, (
            f"{path.name} does not trigger the code it is named after"
        )


def test_exempt_codes_are_registered() -> None:
    assert IMPORT_ONLY | OTHER_FILES <= set(BY_NAME)


# --- file-too-large: a size limit, not text, so it is tested here ------------------------------


def test_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.scm"
    path.write_text((INVALID.parent / "cake.scm").read_text(encoding="utf-8"), encoding="utf-8")
    size = path.stat().st_size
    parsed = read(str(path), Config(max_file_bytes=100))
    assert [(d.span.line, d.span.column, d.code.name) for d in parsed.diagnostics] == [
        (1, 1, "file-too-large")
    ]
    assert f"{size:,} bytes" in parsed.diagnostics[0].message
    # The same file under the default limit is read and checks clean.
    assert read(str(path), Config()).diagnostics == []
    result = lint([str(path)], Config(max_file_bytes=100))
    assert [d.code.name for d in result.diagnostics] == ["file-too-large"]


def test_file_too_large_can_be_ignored(tmp_path: Path) -> None:
    path = tmp_path / "big.scm"
    path.write_text("# " + "x" * 200 + "\n", encoding="utf-8")
    result = lint([str(path)], Config(max_file_bytes=100, ignore=("file-too-large",)))
    assert result.diagnostics == []


def test_expectation_comments_trigger_nothing() -> None:
    text = (INVALID.parent / "cake.scm").read_text(encoding="utf-8")
    commented = "\n".join(
        line + "  # expect: cycle@3 duplicate-edge@3" if line.strip() else line
        for line in text.splitlines()
    ) + "\n# expect-line 1: syntax-error@1\n"
    assert check(SourceFile("cake.scm", commented), Config()).diagnostics == []


# --- suppression comments and --select/--ignore ------------------------------------------------

SUPPRESSED = """\
# Two warnings: an unused variable and a duplicate edge.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }} on a {{ T }}."
  var W = "woman"
  var C = "cake"
  var T = "table"
  W -> C
  W -> C
  counterfactual man { do(W = "man") }
}
"""


def _names(text: str, config: Config | None = None) -> list[tuple[int, str]]:
    parsed = check(SourceFile("s.scm", text), config or Config())
    return [(d.span.line, d.code.name) for d in parsed.diagnostics]


def _on_line(text: str, line: int, comment: str) -> str:
    lines = text.splitlines()
    lines[line - 1] += "  " + comment
    return "\n".join(lines) + "\n"


def test_unsuppressed_baseline() -> None:
    assert _names(SUPPRESSED) == [(6, "unused-variable"), (8, "duplicate-edge")]


@pytest.mark.parametrize(
    "comment",
    ["# cfspec: ignore[duplicate-edge]", "# cfspec: ignore[SCM203]", "# cfspec: ignore[SCM2]",
     "# cfspec: ignore[unused-variable, duplicate-edge]", "# cfspec: ignore",
     "#cfspec:ignore[DUPLICATE-EDGE]"],
)
def test_ignore_on_its_line(comment: str) -> None:
    assert _names(_on_line(SUPPRESSED, 8, comment)) == [(6, "unused-variable")]


def test_ignore_other_code_or_other_line_keeps_it() -> None:
    assert _names(_on_line(SUPPRESSED, 8, "# cfspec: ignore[cycle]")) == _names(SUPPRESSED)
    assert _names(_on_line(SUPPRESSED, 7, "# cfspec: ignore")) == _names(SUPPRESSED)


@pytest.mark.parametrize(
    ("comment", "left"),
    [
        ("# cfspec: ignore-file[duplicate-edge]", [(6, "unused-variable")]),
        ("# cfspec: ignore-file[SCM103]", [(8, "duplicate-edge")]),
        ("# cfspec: ignore-file[SCM1, SCM2]", []),
        ("# cfspec: ignore-file", []),
    ],
)
def test_ignore_file(comment: str, left: list[tuple[int, str]]) -> None:
    assert _names(_on_line(SUPPRESSED, 1, comment)) == left
    # anywhere in the file
    assert _names(SUPPRESSED + comment + "\n") == left


def test_suppressing_an_error_clears_the_exit_status(tmp_path: Path) -> None:
    text = (INVALID / "self-loop.scm").read_text(encoding="utf-8")
    text = text.replace("# expect: self-loop@3", "# cfspec: ignore[self-loop]")
    path = tmp_path / "s.scm"
    path.write_text(text, encoding="utf-8")
    assert check(SourceFile.read(path), Config()).diagnostics == []
    assert CliRunner().invoke(app, ["lint", str(path)]).exit_code == 0


@pytest.mark.parametrize(
    ("select", "ignore", "left"),
    [
        (("ALL",), (), [(6, "unused-variable"), (8, "duplicate-edge")]),
        (("duplicate-edge",), (), [(8, "duplicate-edge")]),
        (("SCM103",), (), [(6, "unused-variable")]),
        (("SCM2",), (), [(8, "duplicate-edge")]),
        (("scm1",), (), [(6, "unused-variable")]),
        (("SCM3", "SCM4"), (), []),
        (("ALL",), ("unused-variable",), [(8, "duplicate-edge")]),
        (("ALL",), ("SCM203",), [(6, "unused-variable")]),
        (("ALL",), ("SCM",), []),
        (("SCM1", "SCM2"), ("SCM10",), [(8, "duplicate-edge")]),
        (("duplicate-edge",), ("duplicate-edge",), []),
    ],
)
def test_select_and_ignore(
    select: tuple[str, ...], ignore: tuple[str, ...], left: list[tuple[int, str]]
) -> None:
    assert _names(SUPPRESSED, Config(select=select, ignore=ignore)) == left


def test_cli_select_and_ignore() -> None:
    path = str(INVALID / "cycle.scm")
    assert CliRunner().invoke(app, ["lint", path]).exit_code == 1
    assert CliRunner().invoke(app, ["lint", "--ignore", "cycle", path]).exit_code == 0
    assert CliRunner().invoke(app, ["lint", "--select", "SCM1,SCM3", path]).exit_code == 0
    assert CliRunner().invoke(app, ["lint", "--select", "SCM2", path]).exit_code == 1
