"""The formatter: canonical layout, comments kept, meaning kept, idempotent; and `cfspec fmt`."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.fmt import format_source, quote
from cfspec.lang import ast
from cfspec.lang.keywords import keywords
from cfspec.lang.parser import parse

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


# --- helpers --------------------------------------------------------------------------------


def fmt(text: str) -> str:
    out, diagnostics = format_source(SourceFile("t.scm", text))
    assert diagnostics == []
    assert out is not None
    return out


def parse_text(text: str) -> ast.Module:
    module = parse(SourceFile("t.scm", text), DiagnosticBag(SourceFile("t.scm", text)))
    assert module is not None, text
    return module


def strip_spans(node: Any) -> Any:
    """The meaning of a tree: no spans, no string offsets (they depend on escaping), and the
    two spellings of an arrow treated as one."""
    if isinstance(node, tuple):
        return tuple(strip_spans(x) for x in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = []
        for field in dataclasses.fields(node):
            if field.name in ("span", "offsets"):
                continue
            value = getattr(node, field.name)
            if isinstance(node, ast.Edge) and field.name == "arrow":
                value = "->"
            fields.append((field.name, strip_spans(value)))
        return (type(node).__name__, tuple(fields))
    return node


def comment_texts(module: ast.Module) -> Counter[str]:
    # The formatter drops trailing whitespace (and the \r of CRLF) from comments.
    return Counter(c.text.rstrip() for c in module.comments)


def assert_well_formatted(original: str, formatted: str) -> None:
    before, after = parse_text(original), parse_text(formatted)
    assert strip_spans(after.specs) == strip_spans(before.specs)
    assert comment_texts(after) == comment_texts(before)
    assert fmt(formatted) == formatted
    if formatted:
        assert formatted.endswith("\n") and not formatted.endswith("\n\n")
        assert not formatted.startswith("\n")
    assert "\r" not in formatted.replace("\\r", "")
    assert "\n\n\n" not in formatted
    for line in formatted.split("\n"):
        assert line == line.rstrip(), repr(line)


# --- the house style ------------------------------------------------------------------------


def test_cake_is_already_formatted() -> None:
    cake = (SPECS / "cake.scm").read_text(encoding="utf-8")
    assert fmt(cake) == cake


def spec_files() -> list[Path]:
    # Globbed when the tests are collected: other people keep adding specs.
    return sorted(SPECS.rglob("*.scm"))


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: str(p.relative_to(SPECS)))
def test_spec_files_round_trip(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        pytest.skip("not UTF-8 (a fixture for invalid-encoding)")
    source = SourceFile(str(path), text)
    if parse(source, DiagnosticBag(source)) is None:
        out, diagnostics = format_source(source)
        assert out is None
        # Every syntax error, as lint reports them (a fixture may hold several).
        assert diagnostics and {d.code.name for d in diagnostics} == {"syntax-error"}
        return
    assert_well_formatted(text, fmt(text))


MESSY = """\
# header


scm   messy{ # about messy
id "x"   prompt "A {{ W }} is here"
var W :agent="woman""the \\"person\\" \\\\ here" var K = "kn\\u0069fe"   # trailing K
W\u2192K
# about edge
   K -> W "back"


counterfactual   man {do( W = "man" ,K=none )}
counterfactual fork { # opening
  do(K = "fork") set W = "x"
  edit refine {cross_replace "knife" [ 0.0 , .8 ] self_replace +0.4 blend "knife" \u2192 "fork"}
  edit {threshold 1e-1 reweight "fork" 2 blend "a" "b"}


  # end of cf
}
counterfactual # in header {
  c2 { do(W # inside do
  = "boy") }
counterfactual e {}
}
scm empty {}
scm two { # only comment
}
# trailing file comment
"""

MESSY_FORMATTED = """\
# header

scm messy {  # about messy
  id "x"
  prompt "A {{ W }} is here"

  var W: agent = "woman" "the \\"person\\" \\\\ here"
  var K = "knife"  # trailing K

  W -> K
  # about edge
  K -> W "back"

  counterfactual man { do(W = "man", K = none) }

  counterfactual fork {  # opening
    do(K = "fork")
    set W = "x"
    edit refine { cross_replace "knife" [0.0, .8]  self_replace +0.4  blend "knife" -> "fork" }
    edit { threshold 1e-1  reweight "fork" 2  blend "a" "b" }

    # end of cf
  }

  # in header {
  counterfactual c2 {
    # inside do
    do(W = "boy")
  }

  counterfactual e {}
}

scm empty {}

scm two {  # only comment
}
# trailing file comment
"""


def test_messy_input() -> None:
    assert fmt(MESSY) == MESSY_FORMATTED
    assert_well_formatted(MESSY, MESSY_FORMATTED)


ORDER_KEPT = """\
scm s {
  var A = "a"
  A -> B
  var B = "b"   # after the edge
  # a comment between two groups

  # another, after a blank line
  prompt "p"
  counterfactual one {

    # first
    do(A = "x")



    set B = "y"
    # last

  }
  counterfactual two { do(A = "z") }  # trails the one-line form
  counterfactual three { do(A = "z") }
  # before the closing brace
}"""

ORDER_KEPT_FORMATTED = """\
scm s {
  var A = "a"

  A -> B

  var B = "b"  # after the edge

  # a comment between two groups

  # another, after a blank line
  prompt "p"

  counterfactual one {
    # first
    do(A = "x")

    set B = "y"
    # last
  }

  counterfactual two { do(A = "z") }  # trails the one-line form

  counterfactual three { do(A = "z") }
  # before the closing brace
}
"""


def test_order_blank_lines_and_comments() -> None:
    assert fmt(ORDER_KEPT) == ORDER_KEPT_FORMATTED
    assert_well_formatted(ORDER_KEPT, ORDER_KEPT_FORMATTED)


def test_long_edit_is_split_and_short_one_joined() -> None:
    blend = " ".join(f'"word{i}"' for i in range(8))
    text = (
        "scm s {\n  counterfactual c {\n    do(A = \"x\")\n"
        f"    edit refine {{ cross_replace 0.8 self_replace 0.4 blend {blend} }}\n"
        "    edit {\n      self_replace 0.4\n    }\n  }\n}\n"
    )
    out = fmt(text)
    assert "      cross_replace 0.8\n      self_replace 0.4\n" in out
    assert "    edit { self_replace 0.4 }\n" in out
    assert all(len(line) <= 100 for line in out.split("\n"))
    assert_well_formatted(text, out)


def test_comment_inside_edit_forces_multiline() -> None:
    text = 'scm s { counterfactual c { edit { self_replace 0.4 # why\n threshold 0.3 } } }'
    assert fmt(text) == (
        "scm s {\n"
        "  counterfactual c {\n"
        "    edit {\n"
        "      self_replace 0.4  # why\n"
        "      threshold 0.3\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


def test_only_comments_and_empty() -> None:
    assert fmt("# one\n\n\n\n# two") == "# one\n\n# two\n"
    assert fmt("scm s {}  # end\n\n\n# last   ") == "scm s {}  # end\n\n# last\n"
    assert fmt("") == ""
    assert fmt("\n\n  \n") == ""


def test_crlf_becomes_lf() -> None:
    text = '# top\r\n\r\nscm s {  # s\r\n  var A = "a"\r\n}\r\n'
    out = fmt(text)
    assert out == '# top\n\nscm s {  # s\n  var A = "a"\n}\n'
    assert_well_formatted(text, out)


def test_syntax_error_is_refused() -> None:
    out, diagnostics = format_source(SourceFile("bad.scm", 'scm s {\n  var W = woman\n}\n'))
    assert out is None
    assert [d.code.name for d in diagnostics] == ["syntax-error"]
    assert diagnostics[0].span.line == 2


def test_quote() -> None:
    assert quote('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert quote("é → 日本 😀") == '"é → 日本 😀"'
    assert quote("a\nb\tc\x01") == '"a\\nb\\tc\\u0001"'
    value = 'x\n"\\ \x7f é\u2028'
    text = "scm s { var A = " + quote(value) + " }"
    assert parse_text(text).specs[0].variables[0].words.value == value


# --- generated specs ------------------------------------------------------------------------

KEYWORDS = keywords()

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True).filter(
    lambda s: s not in KEYWORDS
)
numbers = st.sampled_from(["0", "1", "0.8", ".5", "2.", "+0.4", "-1", "1e-3", "3.5E2", "40"])
string_chars = st.one_of(
    # \ud800: a lone surrogate, legal only as an escape; the formatter must keep it escaped.
    st.sampled_from(list('"\\/ #{}→é日😀\t\n\x01\ud800')),
    st.characters(),
)


@st.composite
def strings(draw: st.DrawFn) -> str:
    """A string literal with a random value, each character spelled one of the legal ways."""
    value = draw(st.text(string_chars, max_size=8))
    out = ['"']
    for ch in value:
        spellings = []
        if ch == '"':
            spellings = ['\\"']
        elif ch == "\\":
            spellings = ["\\\\"]
        elif ch == "\n":
            spellings = ["\\n"]
        elif ch == "/":
            spellings = ["/", "\\/"]
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            spellings = []  # control characters only as \uXXXX
        else:
            spellings = [ch]
        if ord(ch) <= 0xFFFF:
            spellings += [f"\\u{ord(ch):04x}", f"\\u{ord(ch):04X}"]
        out.append(draw(st.sampled_from(spellings)))
    out.append('"')
    return "".join(out)


def optional(strategy: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), strategy)


one_string = strings().map(lambda s: [s])
arrows = st.sampled_from(["->", "→"])
steps = st.one_of(
    numbers.map(lambda n: [n]),
    st.tuples(numbers, numbers).map(lambda p: ["[", p[0], ",", p[1], "]"]),
)
values = st.one_of(strings(), st.just("none"))
assignments = st.tuples(names, values).map(lambda a: [a[0], "=", a[1]])


def joined(parts: list[list[str]]) -> list[str]:
    return [token for part in parts for token in part]


id_decls = one_string.map(lambda s: ["id", *s])
prompt_decls = one_string.map(lambda s: ["prompt", *s])
image_decls = one_string.map(lambda s: ["image", *s])
var_decls = st.tuples(names, optional(names.map(lambda k: [":", k])), one_string,
                      optional(one_string)).map(
    lambda v: ["var", v[0], *v[1], "=", *v[2], *v[3]]
)
edges = st.tuples(names, arrows, names, optional(one_string)).map(
    lambda e: [e[0], e[1], e[2], *e[3]]
)
dos = st.lists(assignments, min_size=1, max_size=3).map(
    lambda xs: ["do", "(", *joined([x if i == 0 else [",", *x] for i, x in enumerate(xs)]), ")"]
)
sets = assignments.map(lambda a: ["set", *a])
word_lists = st.lists(strings(), min_size=1, max_size=3)
edit_items = st.one_of(
    st.tuples(optional(one_string), steps).map(lambda c: ["cross_replace", *c[0], *c[1]]),
    steps.map(lambda s: ["self_replace", *s]),
    st.tuples(word_lists, optional(st.tuples(arrows, word_lists).map(lambda b: [b[0], *b[1]])))
    .map(lambda b: ["blend", *b[0], *b[1]]),
    numbers.map(lambda n: ["threshold", n]),
    st.tuples(strings(), numbers).map(lambda r: ["reweight", r[0], r[1]]),
)
edits = st.tuples(
    optional(st.sampled_from(["replace", "refine", "reweight"]).map(lambda t: [t])),
    st.lists(edit_items, max_size=4),
).map(lambda e: ["edit", *e[0], "{", *joined(e[1]), "}"])
counterfactuals = st.tuples(
    names, st.lists(st.one_of(dos, dos, sets, prompt_decls, edits), max_size=4)
).map(lambda c: ["counterfactual", c[0], "{", *joined(c[1]), "}"])
spec_items = st.one_of(id_decls, prompt_decls, image_decls, var_decls, var_decls, edges,
                       edges,
                       counterfactuals)
specs = st.tuples(names, st.lists(spec_items, max_size=7)).map(
    lambda s: ["scm", s[0], "{", *joined(s[1]), "}"]
)
comments = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=10).map(
    lambda s: "#" + s + "\n"
)
whitespace = st.sampled_from([" ", "  ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", "\n  "])
plain_separators = st.lists(whitespace, min_size=1, max_size=3).map("".join)
separators = st.lists(
    st.one_of(whitespace, whitespace, comments, comments.map(lambda c: " " + c)),
    min_size=1,
    max_size=3,
).map("".join)


@st.composite
def sources(draw: st.DrawFn) -> str:
    """A file of random specs, every token separated by random whitespace and comments."""
    tokens = joined(draw(st.lists(specs, max_size=3)))
    # Half the files have no comments, so the one-line forms (which a comment breaks) show up.
    gap = draw(st.sampled_from([plain_separators, separators]))
    gaps = draw(st.lists(gap, min_size=len(tokens) + 1, max_size=len(tokens) + 1))
    return gaps[0] + "".join(token + gap for token, gap in zip(tokens, gaps[1:], strict=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources())
def test_generated_specs_round_trip(text: str) -> None:
    assert_well_formatted(text, fmt(text))


# --- the command line -----------------------------------------------------------------------

UGLY = 'scm s {var A="a" # why\n A->B }\n'
PRETTY = fmt(UGLY)


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["fmt", *args])


def test_cli_check(tmp_path: Path) -> None:
    ugly, pretty = tmp_path / "ugly.scm", tmp_path / "pretty.scm"
    ugly.write_text(UGLY, encoding="utf-8")
    pretty.write_text(PRETTY, encoding="utf-8")
    result = run_cli("--check", str(ugly))
    assert result.exit_code == 1, result.output
    assert "would reformat" in result.output
    assert ugly.read_text(encoding="utf-8") == UGLY
    assert run_cli("--check", str(pretty)).exit_code == 0


def test_cli_diff_does_not_write(tmp_path: Path) -> None:
    ugly = tmp_path / "ugly.scm"
    ugly.write_text(UGLY, encoding="utf-8")
    result = run_cli("--diff", str(ugly))
    assert result.exit_code == 1, result.output
    assert "--- " in result.stdout and "+++ " in result.stdout
    assert '+  var A = "a"  # why' in result.stdout
    assert ugly.read_text(encoding="utf-8") == UGLY


def test_cli_in_place(tmp_path: Path) -> None:
    ugly = tmp_path / "ugly.scm"
    ugly.write_text(UGLY, encoding="utf-8")
    result = run_cli(str(ugly))
    assert result.exit_code == 0, result.output
    assert ugly.read_text(encoding="utf-8") == PRETTY
    assert run_cli("--check", str(tmp_path)).exit_code == 0


def test_cli_writes_through_keeping_inode_mode_and_owner(tmp_path: Path) -> None:
    # A private spec stays private: black and ruff write into the file, so do we.
    private = tmp_path / "private.scm"
    private.write_text(UGLY, encoding="utf-8")
    private.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(private, 65534, 65534)
    before = private.stat()
    assert run_cli(str(private)).exit_code == 0
    after = private.stat()
    assert private.read_text(encoding="utf-8") == PRETTY
    assert (after.st_ino, after.st_mode, after.st_uid, after.st_gid) == \
        (before.st_ino, before.st_mode, before.st_uid, before.st_gid)


def test_cli_formats_the_file_a_link_points_to_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real" / "spec.scm"
    real.parent.mkdir()
    real.write_text(UGLY, encoding="utf-8")
    link = tmp_path / "link.scm"
    link.symlink_to(real)
    hard = tmp_path / "hard.scm"
    os.link(real, hard)
    assert run_cli(str(link)).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text(encoding="utf-8") == PRETTY
    assert hard.read_text(encoding="utf-8") == PRETTY  # one file, two names: both see it


def test_rewrite_in_place_shortens_and_lengthens(tmp_path: Path) -> None:
    from cfspec.workspace.atomic import rewrite_in_place

    path = tmp_path / "f.scm"
    path.write_text("x" * 100, encoding="utf-8")
    rewrite_in_place(path, "short é\n")
    assert path.read_text(encoding="utf-8") == "short é\n"
    rewrite_in_place(path, "y" * 5000)
    assert path.read_text(encoding="utf-8") == "y" * 5000


def test_cli_crlf_file_is_rewritten_with_lf(tmp_path: Path) -> None:
    path = tmp_path / "crlf.scm"
    path.write_bytes(PRETTY.replace("\n", "\r\n").encode("utf-8"))
    assert run_cli("--check", str(path)).exit_code == 1
    assert run_cli(str(path)).exit_code == 0
    assert path.read_bytes() == PRETTY.encode("utf-8")


def test_cli_refuses_a_file_that_does_not_parse(tmp_path: Path) -> None:
    broken = tmp_path / "broken.scm"
    text = "scm s {\n  var W = woman\n}\n"
    broken.write_text(text, encoding="utf-8")
    for args in ([], ["--check"], ["--diff"]):
        result = run_cli(*args, str(broken))
        assert result.exit_code == 2, result.output
        assert broken.read_text(encoding="utf-8") == text


def test_blend_start_formats_and_round_trips() -> None:
    text = 'scm s { counterfactual c { edit {blend_start   .1  threshold 0.5} } }'
    out = fmt(text)
    assert "edit { blend_start .1  threshold 0.5 }" in out
    assert_well_formatted(text, out)


def test_a_literal_lone_surrogate_reads_as_its_escape_does() -> None:
    # Found by test_generated_specs_round_trip: written literally it used to stay a surrogate,
    # written as an escape (as the formatter writes it) it became U+FFFD.
    text = ' scm A { id "\ud800" } '
    assert_well_formatted(text, fmt(text))
