"""`cfspec lsp` end to end: a real LSP client (pytest-lsp) talks to `python -m cfspec lsp`
over stdio. One test per feature."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp", reason="pytest-lsp is in the dev extra")
from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

from cfspec.diagnostics.source import SourceFile  # noqa: E402
from cfspec.fmt import format_source  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
INVALID = ROOT / "specs" / "invalid"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "cfspec", "lsp"]),
    scope="module",
)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()


_opened = 0


async def open_text(client: LanguageClient, text: str, name: str = "doc") -> str:
    """Open a document and wait for its diagnostics; returns its uri."""
    global _opened
    _opened += 1
    uri = (ROOT / "specs" / f"_lsp_{name}_{_opened}.scm").as_uri()  # never written to disk
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="cfspec", version=1,
                                             text=text)))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


def pos(text: str, needle: str, nth: int = 0, shift: int = 0) -> types.Position:
    """The position of the `nth` occurrence of `needle` (plus `shift` characters)."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    at += shift
    line = text.count("\n", 0, at)
    return types.Position(line=line, character=at - (text.rfind("\n", 0, at) + 1))


def apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(p: types.Position) -> int:
        return starts[p.line] + p.character if p.line < len(lines) else len(text)

    for e in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[: offset(e.range.start)] + e.new_text + text[offset(e.range.end) :]
    return text


CAKE = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")
CYCLE = (INVALID / "cycle.scm").read_text(encoding="utf-8")


async def test_diagnostics_match_the_cli(client: LanguageClient) -> None:
    uri = await open_text(client, CYCLE, "cycle")
    [d] = client.diagnostics[uri]
    assert d.code == "SCM201" and d.severity == types.DiagnosticSeverity.Error
    assert (d.range.start.line, d.range.start.character) == (6, 2)  # cycle.scm:7:3
    assert d.message.startswith("cycle W -> A -> K -> W")
    assert "help: remove or reverse the edge" in d.message
    assert d.related_information is not None
    assert [r.message for r in d.related_information] == [
        "edge 2 of 3 in the cycle", "edge 3 of 3 in the cycle"]


async def test_diagnostics_on_change_and_every_syntax_error(client: LanguageClient) -> None:
    uri = await open_text(client, CAKE, "change")
    assert list(client.diagnostics[uri]) == []
    broken = CAKE.replace("var A:", "vr A:").replace('"cake"', "cake")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=broken)]))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    found = client.diagnostics[uri]
    assert [d.code for d in found] == ["SCM001", "SCM001"]
    assert "did you mean `var`?" in found[0].message


async def test_diagnostics_on_save(client: LanguageClient) -> None:
    uri = await open_text(client, CYCLE, "save")
    client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert [d.code for d in client.diagnostics[uri]] == ["SCM201"]


async def test_hover_on_a_variable(client: LanguageClient) -> None:
    uri = await open_text(client, CAKE, "hover")
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=pos(CAKE, "K -> A", shift=0)))
    assert hover is not None
    value = hover.contents.value  # type: ignore[union-attr]
    assert "var K: tool" in value and "large knife" in value
    assert "parents: W" in value and "children: A" in value


async def test_hover_on_a_diagnostic_explains_it(client: LanguageClient) -> None:
    uri = await open_text(client, CYCLE, "explain")
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=pos(CYCLE, "W -> A  #", shift=2)))
    assert hover is not None
    assert hover.contents.value.startswith("SCM201 cycle (error)")  # type: ignore[union-attr]


async def test_hover_on_a_code_in_an_ignore_comment(client: LanguageClient) -> None:
    text = CYCLE.replace("W -> A  # expect: cycle@3", "W -> A  # cfspec: ignore[cycle]")
    uri = await open_text(client, text, "ignored")
    assert list(client.diagnostics[uri]) == []  # silenced, as on the command line
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=pos(text, "ignore[cycle]", shift=8)))
    assert hover is not None
    assert hover.contents.value.startswith("SCM201 cycle (error)")  # type: ignore[union-attr]


async def test_definition_and_references(client: LanguageClient) -> None:
    uri = await open_text(client, CAKE, "refs")
    at = pos(CAKE, "{{ K }}", shift=3)
    location = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=at))
    assert isinstance(location, types.Location)
    assert location.range.start == pos(CAKE, "var K", shift=4)
    refs = await client.text_document_references_async(types.ReferenceParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=at,
        context=types.ReferenceContext(include_declaration=True)))
    assert refs is not None
    # The placeholder, the declaration, two edges and the do() target.
    assert len(refs) == 5


async def test_rename_rewrites_placeholders(client: LanguageClient) -> None:
    uri = await open_text(client, CAKE, "rename")
    edit = await client.text_document_rename_async(types.RenameParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=pos(CAKE, "var K", shift=4),
        new_name="Tool"))
    assert edit is not None and edit.changes is not None
    renamed = apply(CAKE, list(edit.changes[uri]))
    assert "{{ Tool }}" in renamed and "var Tool: tool" in renamed
    assert "Tool -> A" in renamed and 'do(Tool = "fork")' in renamed
    assert "{{ K }}" not in renamed
    # The renamed spec lints clean, as the original did.
    uri2 = await open_text(client, renamed, "renamed")
    assert list(client.diagnostics[uri2]) == []


async def test_rename_a_counterfactual(client: LanguageClient) -> None:
    uri = await open_text(client, CAKE, "rename_cf")
    edit = await client.text_document_rename_async(types.RenameParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=pos(CAKE, "counterfactual fork", shift=15), new_name="spoon"))
    assert edit is not None and edit.changes is not None
    assert "counterfactual spoon {" in apply(CAKE, list(edit.changes[uri]))


async def test_completion(client: LanguageClient) -> None:
    text = ('scm s {\n  prompt "A {{ W }} and {{ W | }}"\n  var W = "w"\n  var X = "x"\n'
            '  var Y: \n  \n}\n')
    uri = await open_text(client, text, "complete")

    async def labels(p: types.Position) -> set[str]:
        result = await client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=p))
        assert isinstance(result, types.CompletionList)
        return {i.label for i in result.items}

    assert {"W", "X"} <= await labels(pos(text, "{{ W }}", shift=3))
    assert {"a", "capitalize"} <= await labels(pos(text, "| }}", shift=2))
    assert {"agent", "latent"} <= await labels(pos(text, "var Y: ", shift=7))
    body = await labels(pos(text, "  \n}", shift=2))
    assert {"var", "counterfactual", "W", "X"} <= body


async def test_formatting(client: LanguageClient) -> None:
    messy = 'scm s{prompt "A {{ W }}."\nvar W="woman"   # who\n  counterfactual man{do(W="man")}}'
    uri = await open_text(client, messy, "format")
    edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        options=types.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edits
    formatted = apply(messy, list(edits))
    assert formatted == format_source(SourceFile("f.scm", messy))[0]
    assert formatted.startswith('scm s {\n  prompt "A {{ W }}."\n')


async def test_document_symbols(client: LanguageClient) -> None:
    uri = await open_text(client, CAKE, "symbols")
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert symbols is not None
    [spec] = symbols
    assert isinstance(spec, types.DocumentSymbol) and spec.name == "cake_cutting"
    assert [c.name for c in spec.children or []] == ["W", "A", "C", "K", "man", "baker", "fork"]


async def test_symbols_survive_a_syntax_error(client: LanguageClient) -> None:
    uri = await open_text(client, CAKE.replace('var C: object = "cake"', "var C = cake"),
                          "partial")
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert symbols is not None
    assert [c.name for c in symbols[0].children or []] == ["W", "A", "K", "man", "baker", "fork"]


async def actions(client: LanguageClient, uri: str, text: str, at: types.Position
                  ) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=at, end=at),
        context=types.CodeActionContext(diagnostics=client.diagnostics[uri])))
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


def applied(action: types.CodeAction, uri: str, text: str) -> str:
    assert action.edit is not None and action.edit.changes is not None
    return apply(text, list(action.edit.changes[uri]))


async def test_code_action_declares_an_undefined_variable(client: LanguageClient) -> None:
    text = (INVALID / "undefined-variable.scm").read_text(encoding="utf-8")
    uri = await open_text(client, text, "declare")
    found = await actions(client, uri, text, pos(text, "K -> A"))
    [declare] = [a for a in found if a.title == "Declare variable `K`"]
    fixed = applied(declare, uri, text)
    assert '  var C = "cake"\n  var K = "k"\n' in fixed


async def test_code_action_did_you_mean(client: LanguageClient) -> None:
    text = (INVALID / "undefined-variable-case.scm").read_text(encoding="utf-8")
    uri = await open_text(client, text, "dym_name")
    [fix] = await actions(client, uri, text, pos(text, "{{ c }}", nth=1, shift=3))
    # A name in another case can be nothing else: the fix is safe, so preferred.
    assert fix.title == "Change to `C`" and fix.is_preferred
    assert "{{ C }}" in applied(fix, uri, text)


async def test_code_actions_are_the_fixes_lint_attaches(client: LanguageClient) -> None:
    """Each action is a diagnostic's own `fix`, with its title and edits: the same fix
    `cfspec lint --fix` would apply, found without reading any message."""
    from cfspec.diagnostics.source import SourceFile
    from cfspec.lang.config import Config
    from cfspec.lint import check

    text = (INVALID / "undefined-variable.scm").read_text(encoding="utf-8")
    uri = await open_text(client, text, "same_fixes")
    expected = {d.fix.title for d in check(SourceFile("f", text), Config()).diagnostics
                if d.fix is not None}
    found: set[str] = set()
    for d in client.diagnostics[uri]:
        found |= {a.title for a in await actions(client, uri, text, d.range.start)}
    assert found == expected and expected


async def test_code_action_removes_a_duplicate_edge(client: LanguageClient) -> None:
    text = (INVALID / "duplicate-edge.scm").read_text(encoding="utf-8")
    uri = await open_text(client, text, "dupe")
    d = next(d for d in client.diagnostics[uri] if d.code == "SCM203")
    [fix] = [a for a in await actions(client, uri, text, d.range.start)
             if a.title == "Remove the repeated edge"]
    fixed = applied(fix, uri, text)
    uri2 = await open_text(client, fixed, "dupe_fixed")
    assert "SCM203" not in [d.code for d in client.diagnostics[uri2]]


async def test_code_actions_break_a_cycle(client: LanguageClient) -> None:
    uri = await open_text(client, CYCLE, "break")
    found = await actions(client, uri, CYCLE, pos(CYCLE, "W -> A  #"))
    titles = [a.title for a in found]
    # The smallest edge set that breaks it (the others are listed in the notes); unsafe,
    # so not preferred: which edge is wrong is the author's call.
    assert titles == ["Remove `W -> A` to break the cycle"]
    assert not found[0].is_preferred
    for action in found:
        uri2 = await open_text(client, applied(action, uri, CYCLE), "broken")
        assert "SCM201" not in [d.code for d in client.diagnostics[uri2]]


async def test_code_action_adds_the_article_filter(client: LanguageClient) -> None:
    text = (INVALID / "article-mismatch.scm").read_text(encoding="utf-8")
    uri = await open_text(client, text, "article")
    d = next(d for d in client.diagnostics[uri] if d.code == "SCM405")
    [fix] = await actions(client, uri, text, d.range.start)
    fixed = applied(fix, uri, text)
    assert "{{ K | a }}" in fixed
    uri2 = await open_text(client, fixed, "article_fixed")
    assert "SCM405" not in [d.code for d in client.diagnostics[uri2]]


async def test_code_action_corrects_a_misspelt_keyword(client: LanguageClient) -> None:
    text = (INVALID / "syntax-error-keyword.scm").read_text(encoding="utf-8")
    uri = await open_text(client, text, "keyword")
    d = next(d for d in client.diagnostics[uri] if d.code == "SCM001")
    [fix] = await actions(client, uri, text, d.range.start)
    assert fix.title == "Change to `counterfactual`" and fix.is_preferred
    fixed = applied(fix, uri, text)
    assert '  counterfactual man { do(W = "man") }' in fixed
    uri2 = await open_text(client, fixed, "keyword_fixed")
    assert "SCM001" not in [d.code for d in client.diagnostics[uri2]]


async def test_semantic_tokens(client: LanguageClient) -> None:
    uri = await open_text(client, CAKE, "tokens")
    result = await client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert result is not None
    data = result.data
    legend = ["namespace", "type", "variable", "function", "keyword", "string", "number",
              "comment", "operator"]
    # Decode into (line, character, length, type).
    line = char = 0
    decoded = []
    for i in range(0, len(data), 5):
        line += data[i]
        char = data[i + 1] if data[i] else char + data[i + 1]
        decoded.append((line, char, data[i + 2], legend[data[i + 3]], data[i + 4]))
    lines = CAKE.split("\n")
    words = {(lines[ln][c : c + n], kind) for ln, c, n, kind, _ in decoded}
    assert ("scm", "keyword") in words and ("cake_cutting", "namespace") in words
    assert ("K", "variable") in words and ("tool", "type") in words
    assert ("fork", "function") in words and ("0.4", "number") in words
    assert ("->", "operator") in words
    assert any(kind == "comment" for _, kind in words)
    assert any(kind == "string" and text.startswith('"A ') for text, kind in words)
    assert {kind for _, kind in words} == set(legend)
