"""Properties of the parser on any input: one broken token of a valid spec gives at least one and
at most two syntax errors (never a traceback, never a cascade), and parses running in two
threads at once each get their own comments."""

from __future__ import annotations

import functools
import sys
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark, Token

from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lang.parser import grammar_path, parse, parse_partial
from cfspec.lint import check

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.scm"))
# What a slip of the keyboard puts in place of a token, or before one.
POOL = ("=", "{", "}", "(", ")", "[", "]", ",", "->", ":", "x", '"s"', "1", "var", "do", "in",
        "none", "edit", "}}")
# Single-token mistakes in every bundled spec (about 45,000, measured when this was written)
# give at most two diagnostics; most give one. Two: a stray `}` closes a block early and the
# rest of it is read one level up, where its `}` is one too many.
MOST = 2


@functools.cache
def tokens(path: Path) -> tuple[Token, ...]:
    lexer = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="basic")
    return tuple(lexer.lex(path.read_text(encoding="utf-8")))


@st.composite
def one_token_broken(draw: st.DrawFn) -> str:
    path = draw(st.sampled_from(SPECS))
    text = path.read_text(encoding="utf-8")
    token = draw(st.sampled_from(tokens(path)))
    start, end = token.start_pos or 0, token.end_pos or 0
    how = draw(st.sampled_from(("delete", "replace", "insert", "misspell")))
    if how == "delete":
        return text[:start] + text[end:]
    if how == "misspell" and str(token).isidentifier() and len(str(token)) > 1:
        at = draw(st.integers(0, len(str(token)) - 1))
        word = str(token)[:at] + str(token)[at + 1 :]  # one letter left out
        return text[:start] + word + text[end:]
    other = draw(st.sampled_from(POOL))
    if how == "insert":
        return text[:start] + other + " " + text[start:]
    return text[:start] + other + text[end:]


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(one_token_broken())
def test_one_broken_token_gives_one_or_two_diagnostics(text: str) -> None:
    source = SourceFile("broken.scm", text)
    bag = DiagnosticBag(source)
    module = parse(source, bag)
    codes = [d.code.name for d in bag.items]
    if module is not None:  # still valid (a description deleted, say): nothing to say
        assert codes == []
        return
    assert set(codes) == {"syntax-error"}
    assert 1 <= len(codes) <= MOST, [(d.span.line, d.span.column, d.message) for d in bag.items]
    for d in bag.items:  # every position is inside the text
        assert 0 <= d.span.start <= d.span.end <= len(text)
    # The editor's parse and the whole lint take the same text without a traceback.
    parse_partial(source, DiagnosticBag(source))
    assert {d.code.name for d in check(source, Config()).diagnostics} == {"syntax-error"}


def test_every_bundled_spec_parses_cleanly() -> None:
    for path in SPECS:
        source = SourceFile.read(path)
        bag = DiagnosticBag(source)
        assert parse(source, bag) is not None and not bag.items, path.name


# --- comments, per parse call -------------------------------------------------------------------


def commented(tag: str, n: int, broken: bool) -> str:
    lines = [f'  var V{i} = "w"  # {tag} {i}\n' if i % 2 else f"# {tag} {i}\n" for i in range(n)]
    if broken:  # a syntax error: comments come from the recovering parse
        lines[n // 2] = f"  var V = oops  # {tag} {n // 2}\n"
    return f"scm {tag} {{\n" + "".join(lines) + "}\n"


def test_two_threads_parsing_at_once_get_their_own_comments() -> None:
    # `ask --jobs N` parses from a thread pool. Threads are switched as often as CPython allows,
    # so that both parses are under way at once many times over. Each parse reads a file of
    # its own (its own tag and length), one thread's clean, the other's with a syntax error.
    rounds = 12
    files = {f"{tag}{k}": (150 + k, tag == "beta") for tag in ("alpha", "beta")
             for k in range(rounds)}
    found: dict[str, list[str]] = {}
    start = threading.Barrier(2)

    def work(tag: str) -> None:
        start.wait()
        for k in range(rounds):
            name = f"{tag}{k}"
            source = SourceFile(f"{name}.scm", commented(name, *files[name]))
            module = parse_partial(source, DiagnosticBag(source))
            assert module is not None
            found[name] = [c.text for c in module.comments]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(tag,)) for tag in ("alpha", "beta")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert sorted(found) == sorted(files)  # every parse finished
    for name, (n, _) in files.items():
        assert found[name] == [f"# {name} {i}" for i in range(n)], name
