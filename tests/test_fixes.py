"""Fixes attached to diagnostics (`Diagnostic.fix`): every code listed in
`codes.FIXES` has fixtures its fix repairs, applying fixes is all-or-nothing per fix, and
`cfspec lint --fix/--unsafe-fixes` rewrites files in place and exits by what remains."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.diagnostics.codes import BY_NAME, FIXES
from cfspec.diagnostics.fixes import apply_fixes
from cfspec.diagnostics.records import Applicability, Edit, Fix
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lint import check, lint, lint_fix

ROOT = Path(__file__).resolve().parent.parent
INVALID = ROOT / "specs" / "invalid"
FIXTURES = sorted(p for p in INVALID.glob("*.scm") if p.name != "invalid-encoding.scm")


def fixtures_of(name: str) -> list[Path]:
    """specs/invalid/<name>.scm and its variants (<name>-set.scm, <name>-case.scm, ...)."""
    return [p for p in FIXTURES if p.stem == name or p.stem.startswith(name + "-")]


@pytest.mark.parametrize("name", sorted(FIXES))
def test_every_fixable_code_has_a_fixture_its_fix_repairs(name: str, tmp_path: Path) -> None:
    found = fixtures_of(name)
    assert found, f"{name} carries a fix but has no fixture specs/invalid/{name}.scm"
    fixed_any = False
    for fixture in found:
        copy = tmp_path / fixture.name
        copy.write_text(fixture.read_text(encoding="utf-8"), encoding="utf-8")
        before = [d for d in lint([str(copy)], Config()).diagnostics if d.code.name == name]
        if not any(d.fix for d in before):
            continue
        # Only this code's fixes, the unsafe ones too: the fixture is about this code.
        result = lint_fix([str(copy)], Config().merged(select=(name,)), unsafe=True)
        assert result.applied.get(str(copy), 0) >= 1
        after = [d for d in lint([str(copy)], Config()).diagnostics if d.code.name == name]
        # Every diagnostic that carried a fix is gone; those that carried none stay (a
        # syntax-error fixture may hold a misspelt keyword and an unquoted word).
        unfixable = [d.message for d in before if d.fix is None]
        assert [d.message for d in after] == unfixable, fixture.name
        assert copy.read_text(encoding="utf-8") != fixture.read_text(encoding="utf-8")
        fixed_any = True
    assert fixed_any, f"no fixture of {name} gets a fix"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_only_listed_codes_carry_fixes(fixture: Path) -> None:
    """A check that starts attaching a fix lists it in FIXES (and so needs a fixture)."""
    parsed = check(SourceFile(fixture.name, fixture.read_text(encoding="utf-8")), Config())
    for d in parsed.diagnostics:
        if d.fix is not None:
            assert d.code.name in FIXES, d.code.name
            assert d.fix.edits and d.fix.title
            for e in d.fix.edits:  # edits point into the diagnostic's own text
                assert 0 <= e.span.start <= e.span.end <= len(parsed.source.text)


def test_a_case_slip_is_a_safe_fix_and_a_guess_is_not() -> None:
    text = (INVALID / "undefined-variable-case.scm").read_text(encoding="utf-8")
    [d] = [d for d in check(SourceFile("f", text), Config()).diagnostics
           if d.code.name == "undefined-variable"]
    assert d.fix is not None and d.fix.safe and d.fix.edits[0].text == "C"
    cycle = (INVALID / "cycle.scm").read_text(encoding="utf-8")
    [c] = [d for d in check(SourceFile("f", cycle), Config()).diagnostics
           if d.code.name == "cycle"]
    assert c.fix is not None and c.fix.applicability is Applicability.UNSAFE


def test_overlapping_fixes_apply_one_at_a_time() -> None:
    source = SourceFile("f", "abcdef")
    first = Fix("x", (Edit(source.span(1, 3), "X"),))
    overlapping = Fix("y", (Edit(source.span(2, 4), "Y"), Edit(source.span(5, 6), "Z")))
    apart = Fix("z", (Edit(source.span(4, 5), "W"),))
    text, count = apply_fixes(source.text, [overlapping, apart, first])
    # `overlapping` waits whole (its second edit too); the others apply.
    assert (text, count) == ("aXdWf", 2)


def test_json_carries_the_fix() -> None:
    text = (INVALID / "duplicate-edge.scm").read_text(encoding="utf-8")
    [d] = [d for d in check(SourceFile("f", text), Config()).diagnostics
           if d.code.name == "duplicate-edge"]
    shown = d.to_json()["fix"]
    assert isinstance(shown, dict) and shown["applicability"] == "safe"
    assert shown["edits"][0]["text"] == ""
    unfixable = (INVALID / "duplicate-variable.scm").read_text(encoding="utf-8")
    assert all("fix" not in d.to_json()
               for d in check(SourceFile("f", unfixable), Config()).diagnostics)


runner = CliRunner()


def test_lint_fix_rewrites_in_place_and_exits_by_what_remains(tmp_path: Path) -> None:
    spec = tmp_path / "dupe.scm"
    spec.write_text((INVALID / "duplicate-edge.scm").read_text(encoding="utf-8"),
                    encoding="utf-8")
    os.chmod(spec, 0o600)
    inode = spec.stat().st_ino
    result = runner.invoke(app, ["lint", str(spec), "--fix"])
    assert "fixed 1 problem in 1 file" in result.output
    assert result.exit_code == 0  # a warning was all it had
    assert "SCM203" not in result.output
    assert stat.S_IMODE(spec.stat().st_mode) == 0o600 and spec.stat().st_ino == inode
    assert "duplicate-edge" not in result.output


def test_unsafe_fixes_only_with_the_flag(tmp_path: Path) -> None:
    spec = tmp_path / "cycle.scm"
    original = (INVALID / "cycle.scm").read_text(encoding="utf-8")
    spec.write_text(original, encoding="utf-8")
    result = runner.invoke(app, ["lint", str(spec), "--fix"])
    assert result.exit_code == 1
    assert "fixed 0 problems in 0 files (1 more with --unsafe-fixes)" in result.output
    assert spec.read_text(encoding="utf-8") == original
    result = runner.invoke(app, ["lint", str(spec), "--unsafe-fixes", "--format", "json"])
    assert "SCM201" not in result.output and spec.read_text(encoding="utf-8") != original


def test_fix_keeps_crlf_line_ends(tmp_path: Path) -> None:
    spec = tmp_path / "dupe.scm"
    text = (INVALID / "duplicate-edge.scm").read_text(encoding="utf-8")
    spec.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    runner.invoke(app, ["lint", str(spec), "--fix"])
    raw = spec.read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert raw != text.replace("\n", "\r\n").encode("utf-8")


def test_fix_refuses_stdin() -> None:
    result = runner.invoke(app, ["lint", "-", "--fix"], input="scm a {}\n")
    assert result.exit_code == 2


def test_codes_with_fixes_exist() -> None:
    assert all(name in BY_NAME for name in FIXES)


def test_the_codes_page_lists_every_fix() -> None:
    page = (ROOT / "docs" / "codes.md").read_text(encoding="utf-8")
    table = page.split("<!-- fixes:start -->\n")[1].split("<!-- fixes:end -->")[0]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    assert {r[0].strip("|` ") : r[1].rstrip(" |") for r in rows} == FIXES


def test_a_file_named_twice_is_fixed_once(tmp_path: Path) -> None:
    spec = tmp_path / "dupe.scm"
    spec.write_text((INVALID / "duplicate-edge.scm").read_text(encoding="utf-8"),
                    encoding="utf-8")
    fixed = lint_fix([str(spec), str(spec)], Config())
    assert fixed.applied == {str(spec): 1}
    assert spec.read_text(encoding="utf-8").count("  W -> C\n") == 1


def test_deleting_an_edge_keeps_the_rest_of_its_line(tmp_path: Path) -> None:
    """An edge on the same line as the closing brace: deleting just the edge keeps the brace."""
    spec = tmp_path / "one_line.scm"
    text = ('scm s {\n  prompt "A {{ W }} is cutting a cake."\n  var W = "woman"\n'
            '  counterfactual man { do(W = "man") }\n  W -> W }\n')
    spec.write_text(text, encoding="utf-8")
    fixed = lint_fix([str(spec)], Config())
    assert fixed.applied == {str(spec): 1}
    assert spec.read_text(encoding="utf-8").rstrip().endswith("}")
    assert not [d for d in fixed.result.diagnostics if d.code.name in ("self-loop",
                                                                        "syntax-error")]


def test_a_fix_that_breaks_parsing_is_not_written(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from cfspec.diagnostics import fixes

    spec = tmp_path / "dupe.scm"
    original = (INVALID / "duplicate-edge.scm").read_text(encoding="utf-8")
    spec.write_text(original, encoding="utf-8")
    monkeypatch.setattr(fixes, "apply_fixes", lambda text, _: (text.replace("{\n", "\n", 1), 1))
    fixed = lint_fix([str(spec)], Config())
    assert fixed.applied == {} and spec.read_text(encoding="utf-8") == original
