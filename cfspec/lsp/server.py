"""`cfspec lsp`: the language server, over stdio (pygls). A thin layer: each handler asks
`analysis.py` about the document and converts offsets to the client's positions and back.
Diagnostics are the linter's own records, with the CLI's codes, spans, labels (as related
information), notes and help."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from cfspec import __version__
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.lang import ast
from cfspec.lang.config import Config, ConfigError, load_config
from cfspec.lsp import analysis
from cfspec.lsp.analysis import Document

_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.NOTE: types.DiagnosticSeverity.Information,
}
_COMPLETION_KINDS = {
    "keyword": types.CompletionItemKind.Keyword,
    "variable": types.CompletionItemKind.Variable,
    "kind": types.CompletionItemKind.TypeParameter,
    "filter": types.CompletionItemKind.Function,
}


class CfspecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("cfspec", __version__)
        self.documents: dict[str, Document] = {}
        self.configs: dict[Path, Config] = {}

    # --- analysis, cached per document version ----------------------------------------------

    def config_for(self, uri: str) -> Config:
        folder = _path(uri).parent if uri.startswith("file:") else Path.cwd()
        if folder not in self.configs:
            try:
                self.configs[folder] = load_config(folder)
            except ConfigError as error:
                self.window_log_message(types.LogMessageParams(types.MessageType.Warning,
                                                               str(error)))
                self.configs[folder] = Config()
        return self.configs[folder]

    def analyse(self, uri: str) -> Document:
        text = self.workspace.get_text_document(uri).source
        doc = self.documents.get(uri)
        if doc is None or doc.source.text != analysis.normalize(text):
            name = str(_path(uri)) if uri.startswith("file:") else uri
            doc = analysis.analyse(name, text, self.config_for(uri))
            self.documents[uri] = doc
        return doc

    def publish(self, uri: str) -> None:
        doc = self.analyse(uri)
        text_doc = self.workspace.get_text_document(uri)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=text_doc.version,
            diagnostics=[self.to_lsp(uri, doc, d) for d in doc.diagnostics]))

    # --- positions ------------------------------------------------------------------------------

    def position(self, doc: Document, line: int, column: int) -> types.Position:
        """A 1-based (line, column in characters) as the client counts (UTF-16 by default)."""
        text = doc.source.line_text(line)[: column - 1]
        units = self.workspace.position_codec.client_num_units(text)
        return types.Position(line=line - 1, character=units)

    def range(self, doc: Document, span: Span) -> types.Range:
        return types.Range(start=self.position(doc, span.line, span.column),
                           end=self.position(doc, span.end_line, span.end_column))

    def offset(self, doc: Document, position: types.Position) -> int:
        source = doc.source
        line = min(position.line + 1, source.line_count)
        text = source.line_text(line)
        codec = self.workspace.position_codec
        column = 0
        units = 0
        while column < len(text) and units < position.character:
            units += codec.client_num_units(text[column])
            column += 1
        return source.line_span(line).start + column

    def to_lsp(self, uri: str, doc: Document, d: Diagnostic) -> types.Diagnostic:
        message = d.message
        if d.notes:
            message += "\n" + "\n".join(f"note: {n}" for n in d.notes)
        if d.help:
            message += f"\nhelp: {d.help}"
        related = [types.DiagnosticRelatedInformation(
            location=types.Location(uri=uri, range=self.range(doc, lb.span)), message=lb.message)
            for lb in d.labels]
        return types.Diagnostic(
            range=self.range(doc, d.span), message=message, severity=_SEVERITY[d.level],
            code=d.code.code, source=f"cfspec [{d.code.name}]",
            related_information=related or None, data={"name": d.code.name})


server = CfspecServer()


def _path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


# --- document sync and diagnostics ----------------------------------------------------------


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: CfspecServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: CfspecServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: CfspecServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.configs.clear()  # pyproject.toml may have changed
    ls.documents.pop(params.text_document.uri, None)
    ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: CfspecServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.documents.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


# --- navigation ---------------------------------------------------------------------------------


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: CfspecServer, params: types.HoverParams) -> types.Hover | None:
    doc = ls.analyse(params.text_document.uri)
    found = analysis.hover(doc, ls.offset(doc, params.position))
    if found is None:
        return None
    text, span = found
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
                       range=ls.range(doc, span))


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def definition(ls: CfspecServer, params: types.DefinitionParams) -> types.Location | None:
    doc = ls.analyse(params.text_document.uri)
    found = doc.symbol_at(ls.offset(doc, params.position))
    if found is None:
        return None
    return types.Location(uri=params.text_document.uri, range=ls.range(doc, found[0].definition))


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
def references(ls: CfspecServer, params: types.ReferenceParams) -> list[types.Location]:
    doc = ls.analyse(params.text_document.uri)
    found = doc.symbol_at(ls.offset(doc, params.position))
    if found is None:
        return []
    symbol = found[0]
    spans = symbol.references if params.context.include_declaration else \
        [s for s in symbol.references if s != symbol.definition]
    return [types.Location(uri=params.text_document.uri, range=ls.range(doc, s)) for s in spans]


@server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(ls: CfspecServer, params: types.PrepareRenameParams) -> types.Range | None:
    doc = ls.analyse(params.text_document.uri)
    found = doc.symbol_at(ls.offset(doc, params.position))
    return ls.range(doc, found[1]) if found else None


@server.feature(types.TEXT_DOCUMENT_RENAME)
def rename(ls: CfspecServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    doc = ls.analyse(params.text_document.uri)
    try:
        edits = analysis.rename(doc, ls.offset(doc, params.position), params.new_name)
    except analysis.RenameError as error:
        raise ValueError(str(error)) from error
    return types.WorkspaceEdit(changes={params.text_document.uri: [
        types.TextEdit(range=ls.range(doc, span), new_text=text) for span, text in edits]})


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(ls: CfspecServer, params: types.DocumentSymbolParams
                     ) -> list[types.DocumentSymbol]:
    doc = ls.analyse(params.text_document.uri)
    out = []
    for spec in doc.module.specs if doc.module else ():
        children = [
            types.DocumentSymbol(name=v.name.text, kind=types.SymbolKind.Variable,
                                 detail=v.value if v.value is not None else "none",
                                 range=ls.range(doc, v.span),
                                 selection_range=ls.range(doc, v.name.span))
            for v in spec.variables]
        children += [
            types.DocumentSymbol(name=cf.name.text, kind=types.SymbolKind.Event,
                                 detail="counterfactual" if isinstance(cf, ast.Counterfactual)
                                 else "counterfactual set", range=ls.range(doc, cf.span),
                                 selection_range=ls.range(doc, cf.name.span))
            for cf in spec.blocks]
        out.append(types.DocumentSymbol(
            name=spec.name.text, kind=types.SymbolKind.Namespace, detail=f"scm {spec.spec_id}",
            range=ls.range(doc, spec.span), selection_range=ls.range(doc, spec.name.span),
            children=children))
    return out


# --- editing ------------------------------------------------------------------------------------


@server.feature(types.TEXT_DOCUMENT_COMPLETION,
                types.CompletionOptions(trigger_characters=["{", "|", ":", " "]))
def completion(ls: CfspecServer, params: types.CompletionParams) -> types.CompletionList:
    doc = ls.analyse(params.text_document.uri)
    items = [types.CompletionItem(label=c.label, kind=_COMPLETION_KINDS[c.kind],
                                  detail=c.detail or None)
             for c in analysis.complete(doc, ls.offset(doc, params.position))]
    return types.CompletionList(is_incomplete=False, items=items)


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: CfspecServer, params: types.DocumentFormattingParams
               ) -> list[types.TextEdit] | None:
    from cfspec.fmt import format_source

    text_doc: TextDocument = ls.workspace.get_text_document(params.text_document.uri)
    source = SourceFile(text_doc.uri, analysis.normalize(text_doc.source))
    formatted, _ = format_source(source)
    if formatted is None or formatted == text_doc.source:
        return None if formatted is None else []
    lines = text_doc.lines
    end = types.Position(line=len(lines), character=0)
    return [types.TextEdit(range=types.Range(start=types.Position(line=0, character=0), end=end),
                           new_text=formatted)]


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
def code_actions(ls: CfspecServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    doc = ls.analyse(uri)
    start, end = ls.offset(doc, params.range.start), ls.offset(doc, params.range.end)
    wanted = [d for d in doc.diagnostics
              if d.span.start <= end and start <= max(d.span.end, d.span.start + 1)]
    actions = []
    for diagnostic, fix in analysis.fixes(wanted):
        edits = [types.TextEdit(range=ls.range(doc, e.span), new_text=e.text)
                 for e in fix.edits]
        actions.append(types.CodeAction(
            title=fix.title, kind=types.CodeActionKind.QuickFix,
            diagnostics=[ls.to_lsp(uri, doc, diagnostic)], is_preferred=fix.safe,
            edit=types.WorkspaceEdit(changes={uri: edits})))
    return actions


@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
                types.SemanticTokensLegend(token_types=list(analysis.TOKEN_TYPES),
                                           token_modifiers=list(analysis.TOKEN_MODIFIERS)))
def semantic_tokens(ls: CfspecServer, params: types.SemanticTokensParams
                    ) -> types.SemanticTokens:
    doc = ls.analyse(params.text_document.uri)
    data: list[int] = []
    previous_line, previous_char = 0, 0
    for start, end, kind, declaration in analysis.semantic_tokens(doc):
        a = doc.source.span(start, end)
        begin = ls.position(doc, a.line, a.column)
        length = ls.position(doc, a.end_line, a.end_column).character - begin.character
        delta_line = begin.line - previous_line
        delta_char = begin.character - (previous_char if delta_line == 0 else 0)
        data += [delta_line, delta_char, length, analysis.TOKEN_TYPES.index(kind),
                 1 if declaration else 0]
        previous_line, previous_char = begin.line, begin.character
    return types.SemanticTokens(data=data)


def main() -> None:
    server.start_io()
