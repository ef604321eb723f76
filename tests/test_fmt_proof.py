"""`cfspec fmt` proves each result (black's assert_equivalent and assert_stable): the golden
cases in tests/fmt_cases/, whitespace-mutated bundled specs, and a formatter broken on purpose,
which must be refused with a diagnostic and leave the file untouched."""

from __future__ import annotations

import functools
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark, Token
from typer.testing import CliRunner

from cfspec import fmt as fmt_module
from cfspec.cli.app import app
from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.fmt import format_source, meaning
from cfspec.lang import ast
from cfspec.lang.parser import grammar_path, parse

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "fmt_cases"
INPUTS = sorted(p for p in CASES.glob("*.scm") if not p.name.endswith(".expected.scm"))
SPECS = sorted((ROOT / "specs").glob("*.scm")) + sorted((ROOT / "tests" / "golden").glob("*.scm"))


def parsed(text: str) -> ast.Module:
    source = SourceFile("t.scm", text)
    module = parse(source, DiagnosticBag(source))
    assert module is not None, text
    return module


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["fmt", *args])
    return result.exit_code, result.output


# --- golden cases -------------------------------------------------------------------------------


def test_there_are_cases() -> None:
    names = {p.stem for p in INPUTS}
    assert {"comments", "long_lines", "sets", "templates", "odd_whitespace"} <= names
    for path in INPUTS:
        assert path.with_suffix(".expected.scm").with_name(path.stem + ".expected.scm").exists()


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.stem)
def test_case_formats_to_its_expected_file(path: Path, tmp_path: Path) -> None:
    """Through the CLI, in place, as a user runs it (CRLF and all, read from bytes)."""
    expected = CASES / f"{path.stem}.expected.scm"
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    code, output = cli(str(copy))
    assert code == 0, output
    assert copy.read_bytes() == expected.read_bytes()
    # The expected file is a fixed point, and means what the input means.
    assert cli("--check", str(expected))[0] == 0
    text = path.read_bytes().decode("utf-8").replace("\r\n", "\n")
    assert meaning(parsed(text).specs) == meaning(parsed(expected.read_text("utf-8")).specs)


def test_the_comment_case_keeps_every_comment_in_order() -> None:
    before = parsed((CASES / "comments.scm").read_text("utf-8"))
    after = parsed((CASES / "comments.expected.scm").read_text("utf-8"))
    assert [c.text.rstrip() for c in before.comments] == [c.text for c in after.comments]


# --- equivalence and stability on mutated bundled specs -----------------------------------------


@functools.cache
def tokens(path: Path) -> tuple[Token, ...]:
    lexer = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="basic")
    return tuple(lexer.lex(path.read_text(encoding="utf-8")))


WHITESPACE = st.text(alphabet=" \t\n\r\f", min_size=1, max_size=4).map(
    lambda s: s.replace("\r", "\r\n"))  # a lone \r is no line break the parser knows


@st.composite
def whitespace_mutated(draw: st.DrawFn) -> str:
    """A bundled spec with whitespace added between some of its tokens (never inside one)."""
    path = draw(st.sampled_from(SPECS))
    text = path.read_text(encoding="utf-8")
    ends = sorted({t.end_pos or 0 for t in tokens(path)})
    at = sorted(draw(st.sets(st.sampled_from(ends), max_size=12)), reverse=True)
    for offset in at:
        text = text[:offset] + draw(WHITESPACE) + text[offset:]
    return text


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(whitespace_mutated())
def test_formatting_is_equivalent_and_stable(text: str) -> None:
    text = text.replace("\r\n", "\n")  # as `cfspec fmt` reads a file
    out, diagnostics = format_source(SourceFile("m.scm", text))
    assert diagnostics == [] and out is not None
    before, after = parsed(text), parsed(out)
    assert meaning(before.specs) == meaning(after.specs)  # equivalent, checked here too
    assert [c.text.rstrip() for c in before.comments] == [c.text for c in after.comments]
    assert format_source(SourceFile("m.scm", out))[0] == out  # stable


def test_meaning_sees_a_changed_word_and_not_a_moved_one() -> None:
    a = parsed('scm s {\n  var W = "woman"\n  W -> W\n}\n')
    moved = parsed('scm s { var W = "woman"   W → W }')
    changed = parsed('scm s {\n  var W = "women"\n  W -> W\n}\n')
    assert meaning(a.specs) == meaning(moved.specs)
    assert meaning(a.specs) != meaning(changed.specs)


# --- a broken formatter is refused --------------------------------------------------------------

MESSY = 'scm s {  var W = "woman"  var C = "cake"\n  W -> C  counterfactual m { do(W = "man") } }\n'


def _unequal(source: SourceFile, module: ast.Module) -> str:
    return fmt_module._Printer(source, module.comments).module(module.specs).replace(
        '"cake"', '"cakes"')


def _unstable(source: SourceFile, module: ast.Module) -> str:
    # Each pass adds one more blank line on top: every pass is equivalent, none is stable.
    blank = len(source.text) - len(source.text.lstrip("\n"))
    return "\n" * (blank + 1) + fmt_module._Printer(source, module.comments).module(module.specs)


def _dropped_comment(source: SourceFile, module: ast.Module) -> str:
    return fmt_module._Printer(source, module.comments[:-1]).module(module.specs)


@pytest.mark.parametrize(("broken", "words", "line"), [
    (_unequal, "does not mean the same", 1),
    (_unstable, "not stable", 1),
], ids=["not-equivalent", "not-stable"])
def test_a_broken_result_is_refused_and_the_file_untouched(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, broken: object, words: str,
        line: int) -> None:
    monkeypatch.setattr(fmt_module, "_print", broken)
    path = tmp_path / "s.scm"
    path.write_text(MESSY, encoding="utf-8")
    os.chmod(path, 0o640)
    before = path.stat()
    code, output = cli("--format", "json", str(path))
    assert code == 2
    assert path.read_text(encoding="utf-8") == MESSY
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    found = json.loads(output[output.index("["): output.rindex("]") + 1])
    assert [d["name"] for d in found] == ["internal-error"]
    assert words in found[0]["message"]
    assert found[0]["line"] == line and found[0]["column"] >= 1
    assert "report" in found[0]["help"] and "untouched" in " ".join(found[0]["notes"])
    # --check refuses the same way, and the text summary says so.
    code, output = cli("--check", str(path))
    assert code == 2 and "1 refused (a formatter bug, left untouched)" in output


def test_a_changed_word_is_placed_on_the_node_that_changed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt_module, "_print", _unequal)
    out, diagnostics = format_source(SourceFile("s.scm", MESSY))
    assert out is None
    [d] = diagnostics
    assert (d.span.line, d.span.column) == (1, MESSY.index('"cake"') + 1)


def test_a_lost_comment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt_module, "_print", _dropped_comment)
    text = "# one\nscm s {  # two\n  var W = \"w\"\n}\n"
    out, diagnostics = format_source(SourceFile("s.scm", text))
    assert out is None
    assert "comment" in diagnostics[0].message
    assert diagnostics[0].span.line == 2  # the first comment that differs: `# two`


def test_unicode_spaces_outside_strings_are_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "u.scm"
    data = 'scm u {\u00a0var W = "w" }\n'.encode()
    path.write_bytes(data)
    code, output = cli(str(path))
    assert code == 2 and "syntax-error" in output
    assert path.read_bytes() == data
