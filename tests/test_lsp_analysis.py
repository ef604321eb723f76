"""The language server's answers, in process, on every fixture and on broken text: no
position in any document makes hover, completion, definition, rename, quick fixes or semantic
tokens fail, and tokens never overlap. (The features themselves are tested end to end over
stdio in test_lsp.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfspec.lang.config import Config
from cfspec.lsp import analysis

ROOT = Path(__file__).resolve().parent.parent


def documents() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "specs").rglob("*.scm")):
        try:
            found.append((path.name, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    cake = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")
    found += [
        ("truncated", cake[: len(cake) // 2]),
        ("unclosed-string", cake.replace('"cake"', '"cake', 1)),
        ("crlf", cake.replace("\n", "\r\n")),
        ("astral", 'scm s {\n  prompt "🍰 {{ W }} 🍰"\n  var W = "w🍰"\n  W -> W\n}\n'),
        ("empty", ""),
        ("garbage", "}{ ->\" {{ | scm var : = (((\n" * 3),
    ]
    return found


@pytest.mark.parametrize(("name", "text"), documents(), ids=[n for n, _ in documents()])
def test_every_position_answers(name: str, text: str) -> None:
    doc = analysis.analyse(name, text, Config())
    length = len(doc.source.text)
    for offset in range(0, length + 1):
        analysis.hover(doc, offset)
        analysis.complete(doc, offset)
        if doc.symbol_at(offset) is not None:
            edits = analysis.rename(doc, offset, "Renamed_1")
            assert edits and all(span.start <= span.end for span, _ in edits)
    for d, fix in analysis.fixes(doc.diagnostics):
        assert fix.edits and fix is d.fix
    for symbol in doc.symbols:
        for span in symbol.references:  # what rename rewrites is the name, exactly
            assert doc.source.text[span.start : span.end] == symbol.name
    tokens = analysis.semantic_tokens(doc)
    for (a_start, a_end, *_), (b_start, *_) in zip(tokens, tokens[1:], strict=False):
        assert a_start < a_end <= b_start, (name, a_start, a_end, b_start)
    assert all(kind in analysis.TOKEN_TYPES for *_, kind, _ in tokens)


def test_rename_refuses_bad_names() -> None:
    text = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")
    doc = analysis.analyse("cake.scm", text, Config())
    at = text.index("var K") + 4
    for bad in ("1K", "two words", "var", "W"):
        with pytest.raises(analysis.RenameError):
            analysis.rename(doc, at, bad)


CAKE = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")
PIECES = ["{", "}", '"', "(", ")", "[", "]", "=", ":", ",", "->", "var", "do", "scm ", "{{",
          "}}", "|", "#", "\n", "counterfacual", "none", "0.5", "é", "🍰"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(CAKE)), st.integers(0, 6),
                          st.sampled_from(PIECES)), min_size=1, max_size=4))
def test_edits_in_progress_never_break_the_server(
        edits: list[tuple[int, int, str]]) -> None:
    """Text as it is while being typed: pieces inserted, others deleted, anywhere."""
    text = CAKE
    for at, delete, piece in edits:
        at = min(at, len(text))
        text = text[:at] + piece + text[at + delete :]
    doc = analysis.analyse("f.scm", text, Config())
    for d in doc.diagnostics:
        assert 0 <= d.span.start <= d.span.end <= len(doc.source.text)
    tokens = analysis.semantic_tokens(doc)
    for (a_start, a_end, *_), (b_start, *_) in zip(tokens, tokens[1:], strict=False):
        assert a_start < a_end <= b_start
    for symbol in doc.symbols:
        for span in symbol.references:  # what rename rewrites is the name, exactly
            assert doc.source.text[span.start : span.end] == symbol.name
            analysis.hover(doc, span.start)
    for offset in range(0, len(doc.source.text), 7):
        analysis.complete(doc, offset)
    for _, fix in analysis.fixes(doc.diagnostics):
        for e in fix.edits:
            assert 0 <= e.span.start <= e.span.end <= len(doc.source.text)


def test_a_document_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The linter's own parse tree serves the symbols, even with syntax errors: analysing a
    document on every keystroke costs one parse, not two."""
    from cfspec.lang import parser

    calls = []
    real = parser._parse

    def counted(*args: object) -> object:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(parser, "_parse", counted)
    text = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")
    broken = text.replace('var C: object = "cake"', "var C = cake")
    for document in (text, broken):
        calls.clear()
        doc = analysis.analyse("f.scm", document, Config())
        assert len(calls) == 1
        assert "W" in {s.name for s in doc.symbols}
    assert any(d.code.name == "syntax-error" for d in doc.diagnostics)
