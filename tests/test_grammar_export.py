"""`cfspec grammar`: every export loads in the real library and agrees with lark on every
bundled spec and fixture; where an export differs from lark it is stricter (so whatever a
constrained decoder writes, lark parses)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from lark import Lark
from lark.exceptions import LarkError

from cfspec.lang.grammar_export import ExportError, export
from cfspec.lang.parser import grammar_path

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.scm"))
LARK = grammar_path().read_text(encoding="utf-8")

# Lark accepts these; the exports agree or are stricter (marked).
TRICKY = [
    ("", True), ("  \n", True), ("# only a comment", True), ("scm a { }", True),
    (" scm a {}", True), ("# c\nscm a {}", True), ("scm a {} # end", True), ("scm a {}#", True),
    ("scm a { var W = \"w\" }", True), ("scm a { varW -> x }", True),
    ("scm a { var -> x }", False), ("scm a {var#W = \"w\"\n}", False),
    ('scm a { x -> y "d\\"q" }', True), ('scm a { x -> y "d\\\\" }', True),
    ('scm a { x -> y "d\\\\"" }', False), ("scm a { x → y }", True),
    ('scm a{var W="w"counterfactual c{do(W=none)edit{threshold 0.3 blend"a"->"b"}}}', True),
    ("scm a { counterfactual c { edit refine { cross_replace [0.1, -2e3] } } }", True),
    ('scm a { var W = "w\nx" }', False), ("scm a { x -> y } }", False), ("scm a {", False),
    ("scm a { x -> }", False), ("scm 1a {}", False), ("scm a { do(W = \"x\") }", False),
    ("scm a {} # x\r}", False), ("# a\rscm x {}", True), ('scm a { var W = "w\rx" }', False),
    ("scm a {\r\n}\r\n", True), ("scm a {}#\r", True),
]
# Lark accepts these; every export refuses the first two (a keyword is never a name), GBNF
# also the others (two word-like tokens need a space between them).
STRICTER = ["scm scm {}", "scm a { edit -> b }", "scmx{}",
            "scm a{counterfactual c{edit{threshold0.3}}}"]


@functools.cache
def _lark(grammar: str) -> Lark:
    return Lark(grammar, parser="lalr", strict=True)


def lark_accepts(text: str, grammar: str = LARK) -> bool:
    """As cfspec reads a file: a lone CR (and CRLF) is a line end (lint.check)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        _lark(grammar).parse(text)
        return True
    except LarkError:
        return False


def cases() -> list[tuple[str, str]]:
    out = []
    for path in SPECS:
        try:
            out.append((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue  # invalid-encoding.scm: not text, no grammar question
    return out + [(f"tricky {i}", t) for i, (t, _) in enumerate(TRICKY)]


@pytest.fixture(scope="module")
def llg() -> object:
    pytest.importorskip("llguidance")
    import llguidance.hf
    from llm_models import byte_tokenizer

    return llguidance.hf.from_tokenizer(byte_tokenizer())


_MATCHERS: dict[str, object] = {}


def llguidance_accepts(tokenizer: object, grammar: str, text: str) -> bool:
    import llguidance

    m = _MATCHERS.get(grammar)
    if m is None:
        m = _MATCHERS[grammar] = llguidance.LLMatcher(
            tokenizer, llguidance.LLMatcher.grammar_from_lark(grammar), log_level=0)
        assert not m.is_error(), m.get_error()  # type: ignore[attr-defined]
    m = m.deep_copy()  # type: ignore[attr-defined]  (a refused text leaves it in error)
    return m.consume_tokens(tokenizer.tokenize_str(text)) and m.is_accepting()  # type: ignore[attr-defined]


def xgrammar_accepts(matcher: object, text: str) -> bool:
    matcher.reset()  # type: ignore[attr-defined]
    return bool(matcher.accept_string(text) and matcher.is_terminated())  # type: ignore[attr-defined]


def test_the_fixtures_are_what_the_tests_think() -> None:
    names = {name for name, _ in cases()}
    assert "specs/cake.scm" in names and "specs/invalid/syntax-error.scm" in names
    for text, accepted in TRICKY:
        assert lark_accepts(text) is accepted, text
    for text in STRICTER:
        assert lark_accepts(text), text


def test_lark_target_is_the_file_and_one_spec_needs_one() -> None:
    assert export("lark") == LARK
    one = export("lark", one_spec=True)
    assert re.search(r"^start: spec$", one, re.M)
    assert not lark_accepts("", one) and not lark_accepts("# c\n", one)
    assert lark_accepts(" scm a {}", one) and not lark_accepts("scm a {} scm b {}", one)


def test_unknown_target() -> None:
    with pytest.raises(ExportError, match="unknown target"):
        export("antlr")


@pytest.mark.parametrize("one_spec", [False, True])
def test_llguidance_agrees_with_lark(llg: object, one_spec: bool) -> None:
    grammar = export("llguidance", one_spec=one_spec)
    assert grammar.startswith('%llguidance {"allow_initial_skip": true}\n')
    reference = export("lark", one_spec=one_spec)
    for name, text in cases():
        assert llguidance_accepts(llg, grammar, text) == lark_accepts(text, reference), name
    for text in STRICTER:
        assert lark_accepts(text, reference) or one_spec
    for text in STRICTER[:2]:
        assert not llguidance_accepts(llg, grammar, text), text


@pytest.mark.parametrize("target", ["xgrammar", "gbnf"])
@pytest.mark.parametrize("one_spec", [False, True])
def test_xgrammar_agrees_with_lark(target: str, one_spec: bool) -> None:
    xgr = pytest.importorskip("xgrammar")
    from xgrammar.testing import _get_matcher_from_grammar

    grammar = _get_matcher_from_grammar(xgr.Grammar.from_ebnf(export(target, one_spec=one_spec)))
    reference = export("lark", one_spec=one_spec)
    for name, text in cases():
        assert xgrammar_accepts(grammar, text) == lark_accepts(text, reference), name
    for text in STRICTER:
        assert not xgrammar_accepts(grammar, text), text


def test_gbnf_is_what_llama_cpp_reads() -> None:
    """llama.cpp's parser: rule names [a-zA-Z0-9-]; it refuses left recursion. (llama.cpp
    itself installs from PyPI only as a C++ source build, so this is checked on the text.)"""
    text = export("gbnf")
    rules: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, body = line.partition(" ::= ")
        assert sep and re.fullmatch(r"[a-z][a-z0-9-]*", name), line
        assert name not in rules, f"{name} defined twice"
        rules[name] = body
    assert "root" in rules
    refs = {n: set(re.findall(r"(?<![\"\w\[\\-])([a-z][a-z0-9-]*)", _strip_literals(b)))
            for n, b in rules.items()}
    for name, used in refs.items():
        assert used <= set(rules), (name, used - set(rules))
    # left corners: the first symbol of each alternative (ws, ws-one are never left-recursive)
    for name, body in rules.items():
        for alt in _strip_literals(body).strip("()?").split(" | "):
            first = alt.strip().lstrip("(").split(" ")[0]
            assert first != name, f"{name} is left-recursive"


def _strip_literals(body: str) -> str:
    body = re.sub(r'"(?:[^"\\]|\\.)*"', '"L"', body)
    return re.sub(r"\[(?:[^\]\\]|\\.)*\]", "[C]", body)


def test_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    result = CliRunner().invoke(app, ["grammar", "--target", "gbnf", "--one-spec"])
    assert result.exit_code == 0 and result.stdout.startswith("# cfspec grammar --target gbnf")
    result = CliRunner().invoke(app, ["grammar", "--target", "antlr"])
    assert result.exit_code == 2 and "unknown --target 'antlr'" in result.stderr


def test_mutated_specs_never_pass_an_export_that_lark_refuses(llg: object) -> None:
    """Bundled specs with random edits (characters that matter to the grammar inserted,
    deleted, swapped): whatever an export accepts, lark accepts; where they differ, the export
    is the stricter one, and for most mutants they agree."""
    import random

    xgr = pytest.importorskip("xgrammar")
    from xgrammar.testing import _get_matcher_from_grammar

    rng = random.Random(11)
    pieces = ['"', "{", "}", "(", ")", "#", "\n", "\r", " ", "->", "=", ",", "[", "]", "a", "0",
              "\\", "var ", "do", "edit", "scm", ".", "-", "e", "→", "none"]
    texts = [t for name, t in cases() if name.startswith("specs/") and len(t) < 3000]
    llguidance_grammar = export("llguidance")
    gbnf = _get_matcher_from_grammar(xgr.Grammar.from_ebnf(export("gbnf")))
    agree = total = 0
    for _ in range(300):
        text = rng.choice(texts)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text) + 1)
            op = rng.random()
            if op < 0.4:
                text = text[:i] + rng.choice(pieces) + text[i:]
            elif op < 0.8:
                text = text[:i] + text[i + rng.randint(1, 3):]
            else:
                j = rng.randrange(len(text) + 1)
                text = text[:i] + text[j:j + 2] + text[i + 2:]
        ref = lark_accepts(text)
        for accepted in (llguidance_accepts(llg, llguidance_grammar, text),
                         xgrammar_accepts(gbnf, text)):
            assert ref or not accepted, text
            agree += accepted == ref
            total += 1
    assert agree / total > 0.9, (agree, total)
