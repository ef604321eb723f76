"""No input makes the linter crash: every bad input gets diagnostics with positions, never a
traceback, and nothing takes time out of proportion to its size.

(a) hypothesis: specs generated from the grammar with random tokens, then byte-mutated; raw
    bytes through `read`. (b) 10 MB inputs, and the CPU time of an input against one 4 times
    smaller (ratio < 8) as a loose check against quadratic blow-ups, not a speed test.
    (c) deep nesting, huge lines, NUL, BOM and line endings. (d) the size limit. Known
    problems found this way are fixed and kept here as regression tests.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfspec.diagnostics.records import Diagnostic
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.diagnostics.views import FORMATS, render
from cfspec.lang.config import Config
from cfspec.lang.keywords import keywords
from cfspec.lint import Parsed, check, read

ROOT = Path(__file__).resolve().parent.parent
CAKE = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")
MB = 1_000_000

# --- what every lint result must satisfy ------------------------------------------------------


def assert_sane(diagnostics: list[Diagnostic], text: str) -> None:
    """Positions inside the file (a span may sit just past the last line's end), and every
    format renders to text that can be written as UTF-8."""
    # The linter reads CRLF and a lone CR as line ends, like LF.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    for d in diagnostics:
        spans: list[Span] = [d.span, *(lb.span for lb in d.labels)]
        for span in spans:
            assert 1 <= span.line <= lines + 1, (d.code.name, d.message, span, lines)
            assert span.line <= span.end_line <= lines + 1, (d.code.name, span)
            assert span.column >= 1 and span.end_column >= 1, (d.code.name, span)
            assert 0 <= span.start <= span.end <= len(text), (d.code.name, span, len(text))
    for fmt in FORMATS:
        for color in (False, True):
            out = render(diagnostics, fmt, color=color)
            out.encode("utf-8")  # a lone surrogate would crash `sys.stdout.write`
            if fmt in ("json", "sarif"):
                json.loads(out)
            elif diagnostics:
                assert out.strip()


def lint_text(text: str, config: Config | None = None) -> Parsed:
    parsed = check(SourceFile("f.scm", text), config or Config())
    assert_sane(parsed.diagnostics, text)
    return parsed


def names(parsed: Parsed) -> set[str]:
    return {d.code.name for d in parsed.diagnostics}


# --- (a) a grammar-driven generator, then byte mutations --------------------------------------

KEYWORDS = keywords()
random_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: s not in KEYWORDS
)
# A small pool makes references hit declarations (cycles, duplicates, real interventions).
name = st.one_of(st.sampled_from(["W", "A", "C", "K", "man", "x_1"]), random_names)
# A string never holds a raw line end: LF, CRLF and a lone CR all end a line.
plain = st.text(
    alphabet=st.characters(blacklist_characters='"\\\n\r', blacklist_categories=("Cs",)),
    max_size=12,
)
escape = st.sampled_from(
    ['\\"', "\\\\", "\\n", "\\t", "\\/", "\\u00e9", "\\ud83c\\udf70", "\\ud800", "\\q", "\\u12"]
)
template_bits = st.sampled_from(
    ["{{ W }}", "{{ A | a }}", "{{ C|capitalize }}", "{{ X | bogus }}", "{{ 1 }}", "{% if %}",
     "{{", "}}", "{#", " a ", " an ", "woman", "knife", ".", ","]
)
string = st.lists(st.one_of(plain, escape, template_bits), max_size=5).map(
    lambda parts: '"' + "".join(parts) + '"'
)
number = st.from_regex(
    r"[+-]?(?:[0-9]{1,3}(?:\.[0-9]{0,3})?|\.[0-9]{1,3})(?:[eE][+-]?[0-9]{1,3})?", fullmatch=True
)
separator = st.sampled_from([" ", " ", "\n", "  ", "\t", "\r\n", "\r", " # note\n", "\n\n  "])

Tokens = list[str]


def optional(strategy: st.SearchStrategy[Tokens]) -> st.SearchStrategy[Tokens]:
    return st.one_of(st.just([]), strategy)


def seq(*parts: st.SearchStrategy[Tokens]) -> st.SearchStrategy[Tokens]:
    return st.tuples(*parts).map(lambda chunks: [t for chunk in chunks for t in chunk])


def tok(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[Tokens]:
    return strategy.map(lambda t: [t])


def lit(*tokens: str) -> st.SearchStrategy[Tokens]:
    return st.just(list(tokens))


def joined(item: st.SearchStrategy[Tokens], sep: str, min_size: int, max_size: int
           ) -> st.SearchStrategy[Tokens]:
    def join(chunks: list[Tokens]) -> Tokens:
        out: Tokens = []
        for i, chunk in enumerate(chunks):
            out += ([sep] if i else []) + chunk
        return out

    return st.lists(item, min_size=min_size, max_size=max_size).map(join)


value = st.one_of(string, st.just("none"))
assignment = seq(tok(name), lit("="), tok(value))
steps = st.one_of(tok(number), seq(lit("["), tok(number), lit(","), tok(number), lit("]")))
edit_item = st.one_of(
    seq(lit("cross_replace"), optional(tok(string)), steps),
    seq(lit("self_replace"), steps),
    seq(lit("blend"), st.lists(string, min_size=1, max_size=3),
        optional(seq(lit("->"), st.lists(string, min_size=1, max_size=3)))),
    seq(lit("threshold"), tok(number)),
    seq(lit("reweight"), tok(string), tok(number)),
)
edit_block = seq(
    lit("edit"), optional(tok(st.sampled_from(["replace", "refine", "reweight"]))), lit("{"),
    st.lists(edit_item, max_size=4).map(lambda items: [t for i in items for t in i]), lit("}"),
)
cf_item = st.one_of(
    seq(lit("do", "("), joined(assignment, ",", 1, 3), lit(")")),
    seq(lit("set"), assignment),
    seq(lit("prompt"), tok(string)),
    edit_block,
)
spec_item = st.one_of(
    seq(lit("id"), tok(string)),
    seq(lit("image"), tok(string)),
    seq(lit("prompt"), tok(string)),
    seq(lit("var"), tok(name),
        optional(seq(lit(":"), tok(st.one_of(st.sampled_from(["latent", "agent"]), name)))),
        lit("="), tok(string), optional(tok(string))),
    seq(tok(name), tok(st.sampled_from(["->", "→"])), tok(name), optional(tok(string))),
    seq(lit("counterfactual"), tok(name), lit("{"),
        st.lists(cf_item, max_size=4).map(lambda items: [t for i in items for t in i]),
        lit("}")),
)
spec = seq(
    lit("scm"), tok(name), lit("{"),
    st.lists(spec_item, max_size=10).map(lambda items: [t for i in items for t in i]), lit("}"),
)


@st.composite
def valid_file(draw: st.DrawFn) -> str:
    """A syntactically valid file: 0-3 specs, tokens separated by random whitespace and
    comments."""
    tokens = [t for s in draw(st.lists(spec, max_size=3)) for t in s]
    seps = draw(st.lists(separator, min_size=len(tokens) + 1, max_size=len(tokens) + 1))
    return seps[0] + "".join(t + s for t, s in zip(tokens, seps[1:], strict=True))


interesting_bytes = st.one_of(
    st.binary(min_size=1, max_size=4),
    st.sampled_from([b"{", b"}", b'"', b"\\", b"\n", b"\r", b"\x00", b"\xff", b"\xef\xbb\xbf",
                     b"->", "→".encode(), b"#", b"{{", b"(", b")", b"[", b"]", b"=", b",",
                     b"\xe2\x80\xa8", b"\xc3", b"scm x {", b"counterfactual c {"]),
)


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    """A valid file with 1-4 byte-level mutations: insert, delete, replace, truncate,
    duplicate a slice."""
    data = bytearray(draw(valid_file()).encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate"]))
        pos = draw(st.integers(0, len(data)))
        if op == "insert":
            data[pos:pos] = draw(interesting_bytes)
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "replace":
            data[pos : pos + 1] = draw(interesting_bytes)
        elif op == "truncate":
            del data[pos:]
        else:
            end = draw(st.integers(pos, len(data)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(valid_file())
def test_generated_specs_parse(text: str) -> None:
    parsed = lint_text(text)
    assert "syntax-error" not in names(parsed), [d.message for d in parsed.diagnostics]
    assert parsed.module is not None


@FUZZ
@given(mutated_bytes())
def test_mutated_text_never_crashes(data: bytes) -> None:
    lint_text(data.decode("utf-8", errors="replace"))


@FUZZ
@given(mutated_bytes())
def test_mutated_bytes_through_read(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.scm"
        path.write_bytes(data)
        parsed = read(str(path), Config())
    try:
        data.decode("utf-8")
        valid_utf8 = True
    except UnicodeDecodeError:
        valid_utf8 = False
    if valid_utf8:
        assert parsed.diagnostics == []
        lint_text(parsed.source.text)
    else:
        assert [d.code.name for d in parsed.diagnostics] == ["invalid-encoding"]
        assert_sane(parsed.diagnostics, parsed.source.text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    lint_text(text)


def test_invalid_utf8_is_a_diagnostic(tmp_path: Path) -> None:
    path = tmp_path / "bad.scm"
    path.write_bytes(b'scm x {\n  prompt "caf\xe9"\n}\n')
    parsed = read(str(path), Config())
    [d] = parsed.diagnostics
    assert d.code.name == "invalid-encoding"
    assert (d.span.line, d.span.column) == (2, 14)  # the byte after `caf`
    assert_sane(parsed.diagnostics, parsed.source.text)


# --- (b) big inputs -----------------------------------------------------------------------------


def valid_specs(size: int) -> str:
    """About `size` bytes of distinct, clean specs (cake.scm, renamed)."""
    one = CAKE.replace('id "158956_0"', 'id "158956_{i}"').replace("cake_cutting", "cake_{i}")
    count = max(1, size // len(one.encode("utf-8")))
    return "".join(one.replace("{i}", str(i)) for i in range(count))


def long_literal(size: int) -> str:
    """One string literal of about `size` bytes, as a description (words no check reads)."""
    words = "the person cutting the cake with a large knife, carefully. "
    body = (words * (size // len(words) + 1))[:size]
    return CAKE.replace('"the person cutting"', f'"{body}"')


def long_prompt(size: int) -> str:
    """A valid spec whose prompt is about `size` bytes of words (prompt-too-long)."""
    words = "while a crowd watches "
    body = (words * (size // len(words) + 1))[:size]
    return CAKE.replace("with a {{ K }}.", "with a {{ K }} " + body + ".")


def many_diagnostics(size: int) -> str:
    """Tiny broken specs that share a name: duplicate-spec, self-loop, undefined names..."""
    return "scm s { W -> W }\n" * (size // 17)


def garbage(size: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    alphabet = 'scm{}()[]"\\#:=,-> \n\r\t\x00abcxyz0123456789→{{}}é'
    return "".join(rng.choice(alphabet) for _ in range(size))


def cpu_seconds(run: Callable[[], object]) -> float:
    """CPU time, not wall time: other processes on a busy machine do not count."""
    t0 = time.process_time()
    run()
    return time.process_time() - t0


def assert_linear(make: Callable[[int], str], small: int, large: int,
                  floor: float = 0.05) -> None:
    """Linting `large` bytes takes at most twice the size ratio times `small`'s CPU time:
    loose enough not to flake, tight enough to catch a quadratic blow-up. Times under `floor`
    count as `floor` (too short to compare)."""
    small_text, large_text = make(small), make(large)
    t_small = cpu_seconds(lambda: check(SourceFile("f.scm", small_text), Config()))
    t_large = cpu_seconds(lambda: check(SourceFile("f.scm", large_text), Config()))
    limit = 2 * len(large_text) / len(small_text)
    assert t_large / max(t_small, floor) < limit, (t_small, t_large)


def test_ten_megabytes_of_specs(tmp_path: Path) -> None:
    path = tmp_path / "big.scm"
    path.write_text(valid_specs(10 * MB), encoding="utf-8")
    assert path.stat().st_size >= 10 * MB - 2000
    parsed = read(str(path), Config())
    assert parsed.diagnostics == []
    result = check(parsed.source, Config())
    assert result.diagnostics == [], result.diagnostics[:3]
    assert result.module is not None and len(result.module.specs) > 7000


def test_ten_megabyte_string_literal() -> None:
    parsed = lint_text(long_literal(10 * MB))
    assert parsed.diagnostics == []
    assert parsed.module is not None
    [variable] = [v for v in parsed.module.specs[0].variables if v.name.text == "W"]
    assert variable.description is not None and len(variable.description.value) == 10 * MB


def test_long_escaped_string_literal() -> None:
    body = 'a \\"quoted\\" word\\t' * (2 * MB // 19)
    text = f'scm s {{ var W = "cat" "{body}" }}'
    parsed = lint_text(text)
    assert parsed.module is not None
    [variable] = parsed.module.specs[0].variables
    description = variable.description
    assert description is not None and description.value.startswith('a "quoted" word\t')
    # Positions inside the string stay exact after 300,000 escapes.
    last = description.value.rindex("word")
    sub = description.sub_span(last, last + 4)
    assert text[sub.start : sub.end] == "word"


def test_ten_megabytes_of_garbage(tmp_path: Path) -> None:
    text = garbage(10 * MB)
    parsed = lint_text(text)
    assert names(parsed) == {"syntax-error"}
    raw = random.Random(1).randbytes(10 * MB)
    path = tmp_path / "noise.scm"
    path.write_bytes(raw)
    result = read(str(path), Config())
    assert [d.code.name for d in result.diagnostics] == ["invalid-encoding"]
    assert_sane(result.diagnostics, result.source.text)


@pytest.mark.parametrize(
    ("make", "small", "large"),
    [
        pytest.param(valid_specs, MB // 2, 2 * MB, id="specs"),
        pytest.param(long_literal, MB // 2, 2 * MB, id="string-literal"),
        pytest.param(long_prompt, 128 * 1024, 512 * 1024, id="long-prompt"),
        pytest.param(many_diagnostics, 128 * 1024, 512 * 1024, id="many-diagnostics"),
        pytest.param(garbage, MB // 2, 2 * MB, id="garbage"),
    ],
)
def test_time_is_linear_in_the_input(make: Callable[[int], str], small: int, large: int) -> None:
    assert_linear(make, small, large)


# Inputs that once hit quadratic (or worse) paths; `n` is a count, not bytes.


def _undefined_edges(n: int) -> str:
    """n declared names and n edges to undeclared ones: a did-you-mean for each."""
    declared = "".join(f'  var V{i} = "w{i}"\n' for i in range(n))
    edges = "".join(f"  V{i} -> U{i}\n" for i in range(n))
    return f'scm s {{\n  prompt "A {{{{ V0 }}}}."\n{declared}{edges}}}\n'


def _wide_do(n: int) -> str:
    """One counterfactual intervening on n variables of a chain."""
    declared = "".join(f'  var V{i}: latent = "w{i}"\n' for i in range(n))
    edges = "".join(f"  V{i} -> V{i + 1}\n" for i in range(n - 1))
    targets = ", ".join(f'V{i} = "x{i}"' for i in range(n))
    return (f'scm s {{\n  prompt "A cat."\n{declared}{edges}'
            f"  counterfactual c {{ do({targets}) }}\n}}\n")


def _ignore_file_comments(n: int) -> str:
    """n self-loops (n diagnostics) and n distinct ignore-file rules."""
    rules = "".join(f"# cfspec: ignore-file[SCM9{i:02d}]\n" for i in range(n))
    loops = "".join(f'  var V{i} = "w{i}"\n  V{i} -> V{i}\n' for i in range(n))
    return f'{rules}scm s {{\n  prompt "A {{{{ V0 }}}}."\n{loops}}}\n'


def _literal_counterfactual_prompt(n: int) -> str:
    """A literal prompt of n repeated words and a counterfactual prompt that rewrites them."""
    words = " ".join(["woman", "and", "the", "woman"] * (n // 4))
    return (f'scm s {{\n  prompt "{words}"\n  var W = "woman"\n  var L: latent = "l"\n'
            "  L -> W\n"
            f'  counterfactual man {{ do(W = "man") prompt "{words.replace("woman", "man")}" }}'
            "\n}\n")


@pytest.mark.parametrize(
    ("make", "small", "large"),
    [
        # Each was quadratic or worse once: did-you-mean over every declared name, has_path for
        # every pair of do() targets, every ignore-file rule per diagnostic, and SequenceMatcher
        # (cubic on repeated words) over a whole literal counterfactual prompt.
        pytest.param(_undefined_edges, 150, 600, id="undefined-names"),
        pytest.param(_wide_do, 150, 600, id="wide-do"),
        pytest.param(_ignore_file_comments, 300, 1200, id="ignore-file"),
        pytest.param(_literal_counterfactual_prompt, 400, 1600, id="repeated-words"),
    ],
)
def test_paths_that_were_superlinear_are_linear(
    make: Callable[[int], str], small: int, large: int
) -> None:
    assert_linear(make, small, large, floor=0.01)


# --- (c) nesting, long lines and odd characters -------------------------------------------------

NASTY = {
    "braces": "{" * 100_000,
    "nested-counterfactuals": "scm x {" + "counterfactual c {" * 10_000,
    "nested-edits": "scm x { counterfactual c {" + "edit {" * 10_000,
    "parens": "(((((",
    "do-parens": "scm x { counterfactual c { do" + "(" * 10_000,
    "long-line": "scm x { var A = " + "a" * 100_000,
    "long-name": "scm " + "x" * 100_000 + " { var",
    "long-unterminated-string": 'scm x { prompt "' + "a" * 100_000,
    "nul": "scm x {\x00 var A = \"a\" }",
    "only-nul": "\x00" * 1000,
    "bom-mid-file": "scm x {\ufeff}",
    "bidi": 'scm x { prompt "\u202eevil" var A = }',
    "lone-quote": '"',
    "backslash-eof": 'scm x { prompt "abc\\',
    "keyword-soup": "scm scm scm { id id id prompt prompt var var -> -> }",
    "placeholder-outside": "scm x { {{ W }} }",
}


@pytest.mark.parametrize("text", list(NASTY.values()), ids=list(NASTY))
def test_nasty_input_gets_positioned_diagnostics(text: str) -> None:
    parsed = lint_text(text)
    assert parsed.diagnostics, "a broken file must say why"
    assert "syntax-error" in names(parsed)


ODD = {
    "nul-in-string": 'scm x { prompt "a\x00b" }',
    "control-characters": 'scm x { prompt "a\x1b[2J\x07\x7f b" var A = "\x1b" }',
    "bidi-in-string": 'scm x { prompt "\u202eevil\u2066" }',
    "line-separator-in-string": 'scm x {\n  prompt "a\u2028b\u0085c"\n  var A = "a"\n}\n',
    "astral": 'scm x { prompt "🍰 \U0001f600" var 𝔸 = "x" }',
    "empty": "",
    "only-comments": "# just a comment\n# cfspec: ignore-file\n",
}


@pytest.mark.parametrize("text", list(ODD.values()), ids=list(ODD))
def test_odd_characters(text: str) -> None:
    lint_text(text)


LINE_ENDINGS = {"lf": "\n", "crlf": "\r\n"}


@pytest.mark.parametrize("newline", list(LINE_ENDINGS.values()), ids=list(LINE_ENDINGS))
def test_line_endings(newline: str) -> None:
    text = CAKE.replace("\n", newline)
    assert lint_text(text).diagnostics == []
    broken = text.replace("do(K", "do(K K")
    [d] = lint_text(broken).diagnostics
    lf = lint_text(CAKE.replace("do(K", "do(K K")).diagnostics[0]
    assert (d.code.name, d.span.line, d.span.column) == (lf.code.name, lf.span.line,
                                                          lf.span.column)


def test_lone_cr_line_endings_do_not_crash() -> None:
    lint_text(CAKE.replace("\n", "\r"))
    lint_text(CAKE.replace("\n", "\r").replace("do(K", "do(K K"))


def test_lone_cr_comment_does_not_swallow_the_file() -> None:
    parsed = lint_text("# a comment\rscm x {\r}\r")
    assert "missing-prompt" in names(parsed)


def test_suppression_lines_agree_with_diagnostic_lines() -> None:
    text = ('scm x {\n  prompt "A {{ W }} is here.\u2028"\n  var W = "cat"\n'
            '  W -> W  # cfspec: ignore[self-loop]\n  counterfactual d { do(W = "dog") }\n}\n')
    assert "self-loop" not in names(lint_text(text))


def test_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.scm"
    path.write_bytes(b"\xef\xbb\xbf" + CAKE.encode("utf-8"))
    parsed = read(str(path), Config())
    assert parsed.diagnostics == []
    assert check(parsed.source, Config()).diagnostics == []
    lint_text("\ufeff" + CAKE)  # through the API, unstripped: a diagnostic, not a crash


def test_string_escapes_keep_positions() -> None:
    # An unknown escape keeps its backslash; a \u surrogate pair is one character, a lone
    # surrogate becomes U+FFFD (it could not be written as UTF-8 anywhere). Every word still
    # maps back to its place in the source.
    text = 'scm x { prompt "\\q A \\u00e9t\\u00e9 \\ud83c\\udf70 cake \\ud800 knife" }'
    parsed = lint_text(text)
    assert parsed.module is not None
    prompt = parsed.module.specs[0].prompts[0].value
    assert prompt.value == "\\q A été \U0001f370 cake \ufffd knife"
    prompt.value.encode("utf-8")
    for word in ("A", "été", "cake", "knife"):
        i = prompt.value.index(word)
        span = prompt.sub_span(i, i + len(word))
        assert text[span.start : span.end] == word.replace("é", "\\u00e9")


def test_console_script_never_prints_a_traceback(tmp_path: Path) -> None:
    """The whole CLI over a folder of nasty files: exit 1 (errors found), no traceback."""
    for i, text in enumerate(NASTY.values()):
        (tmp_path / f"nasty_{i}.scm").write_text(text, encoding="utf-8", newline="")
    (tmp_path / "bad_utf8.scm").write_bytes(b"scm x {\xff\xfe}")
    (tmp_path / "bom.scm").write_bytes(b"\xef\xbb\xbf" + CAKE.encode("utf-8"))
    (tmp_path / "cr.scm").write_bytes(CAKE.replace("\n", "\r").encode("utf-8"))
    script = Path(sys.executable).with_name("cfspec")
    for fmt in FORMATS:
        result = subprocess.run([str(script), "lint", "--format", fmt, str(tmp_path)],
                                capture_output=True, check=False, timeout=120)
        assert result.returncode == 1, result.stderr.decode(errors="replace")[-2000:]
        assert b"Traceback" not in result.stderr + result.stdout
        if fmt in ("json", "sarif"):
            json.loads(result.stdout)


# --- (d) the size limit ---------------------------------------------------------------------


def test_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.scm"
    path.write_text(CAKE, encoding="utf-8")
    size = path.stat().st_size
    at_limit = read(str(path), Config(max_file_bytes=size))
    assert at_limit.diagnostics == []
    over = read(str(path), Config(max_file_bytes=size - 1))
    [d] = over.diagnostics
    assert d.code.name == "file-too-large"
    assert f"{size:,}" in d.message
    assert (d.span.line, d.span.column) == (1, 1)
    assert_sane(over.diagnostics, over.source.text)
