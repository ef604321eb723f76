"""What the language server knows about one document, without any LSP types: the lint result
(the CLI's own diagnostics), the symbols (specs, variables, counterfactuals) with every place they
are named, and the answers built from them (hover text, completions, renames). Quick fixes are
the fixes the checks attach to their diagnostics.

Positions here are offsets into the document's text (line ends as LF, as the linter reads it);
`server.py` converts them to and from the client's line/character positions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from cfspec.diagnostics.records import Diagnostic, Fix
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.lang import ast
from cfspec.lang.config import Config
from cfspec.lang.keywords import keyword_terminals
from cfspec.lang.model import SpecModel, build
from cfspec.lang.prompt import FILTERS
from cfspec.lint import check

KEYWORDS = tuple(keyword_terminals().values())
# Kinds users write; `latent`, `hidden` and `exogenous` exempt a variable from the prompt.
KINDS = ("agent", "action", "object", "tool", "attribute", "place", "latent", "hidden",
         "exogenous")
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Symbol:
    """A variable or a counterfactual of one spec (or the spec itself), and where it is
    named: `definition` is the name in its (first) declaration, `references` every mention,
    the definition included (for a variable: edges, do()/set targets, `{{ X }}` placeholders)."""

    kind: str  # "spec" | "variable" | "counterfactual"
    name: str
    spec: ast.Spec
    definition: Span
    references: list[Span] = field(default_factory=list)


@dataclass
class Document:
    source: SourceFile
    diagnostics: list[Diagnostic]
    module: ast.Module | None  # what could be read, even with syntax errors
    models: list[SpecModel]
    symbols: list[Symbol]

    def symbol_at(self, offset: int) -> tuple[Symbol, Span] | None:
        """The symbol named at `offset` (a cursor just after a name counts)."""
        for symbol in self.symbols:
            for span in symbol.references:
                if span.start <= offset <= span.end:
                    return symbol, span
        return None

    def model_of(self, spec: ast.Spec) -> SpecModel | None:
        return next((m for m in self.models if m.spec is spec), None)

    def spec_at(self, offset: int) -> ast.Spec | None:
        if self.module is None:
            return None
        return next((s for s in self.module.specs if s.span.start <= offset <= s.span.end), None)


def normalize(text: str) -> str:
    """Line ends as the linter reads them."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def analyse(name: str, text: str, config: Config) -> Document:
    """Lint a document as `cfspec lint` would, and index its symbols."""
    source = SourceFile(name, normalize(text))
    parsed = check(source, config)
    module, models = parsed.tree, list(parsed.models)
    if parsed.module is None and module is not None:  # syntax errors: what could be read
        models = [build(spec) for spec in module.specs]
    return Document(source, parsed.diagnostics, module, models, list(_symbols(models)))


def _symbols(models: list[SpecModel]) -> Iterator[Symbol]:
    for model in models:
        spec = model.spec
        yield Symbol("spec", spec.name.text, spec, spec.name.span, [spec.name.span])
        variables: dict[str, Symbol] = {}
        for var in spec.variables:
            if var.name.text not in variables:
                variables[var.name.text] = Symbol("variable", var.name.text, spec,
                                                  var.name.span)
            variables[var.name.text].references.append(var.name.span)
        for edge in spec.edges:
            for end in (edge.source, edge.target):
                if end.text in variables:
                    variables[end.text].references.append(end.span)
        for cf in spec.blocks:
            written = cf.grid if isinstance(cf, ast.CounterfactualSet) else cf.interventions
            for a in (*written, *cf.sets):
                if a.target.text in variables:
                    variables[a.target.text].references.append(a.target.span)
        if model.frame is not None and model.frame.is_template and spec.prompts:
            prompt = spec.prompts[0].value
            for slot in model.frame.slots:
                if slot.variable in variables:
                    variables[slot.variable].references.append(
                        prompt.sub_span(slot.name_start, slot.name_end))
        yield from variables.values()
        seen: dict[str, Symbol] = {}
        for cf in spec.blocks:  # a set is named like a counterfactual, and renamed alike
            if cf.name.text not in seen:
                seen[cf.name.text] = Symbol("counterfactual", cf.name.text, spec, cf.name.span)
            seen[cf.name.text].references.append(cf.name.span)
        yield from seen.values()


# --- hover --------------------------------------------------------------------------------------


def hover(doc: Document, offset: int) -> tuple[str, Span] | None:
    """Markdown for what is under the cursor: a diagnostic's explanation, a code in an ignore
    comment, or a symbol's meaning."""
    here = [d for d in doc.diagnostics
            if d.span.start <= offset <= max(d.span.end, d.span.start + 1)]
    found = doc.symbol_at(offset)
    if found is not None:
        symbol, span = found
        # On a name inside a diagnostic's span: the name first, then what is wrong there.
        said = "".join(f"\n\n---\n{d.code.code} `{d.code.name}`: {d.message}" for d in here)
        return describe(doc, symbol) + said, span
    code = _code_in_comment(doc.source, offset)
    if code is not None:
        return code
    if here:
        return explain_markdown(here[0].code.name), here[0].span
    return None


def explain_markdown(name: str) -> str:
    from cfspec.diagnostics.codes import BY_NAME
    from cfspec.diagnostics.explain import explanation

    return explanation(BY_NAME[name])


_IGNORE_RE = re.compile(r"#\s*cfspec:\s*ignore(?:-file)?\[([^\]]*)\]")


def _code_in_comment(source: SourceFile, offset: int) -> tuple[str, Span] | None:
    from cfspec.diagnostics.codes import lookup

    line, _ = source.position(offset)
    start = source.line_span(line).start
    for m in _IGNORE_RE.finditer(source.line_text(line)):
        for word in re.finditer(r"[A-Za-z0-9-]+", m.group(1)):
            a, b = start + m.start(1) + word.start(), start + m.start(1) + word.end()
            code = lookup(word.group())
            if a <= offset <= b and code is not None:
                return explain_markdown(code.name), source.span(a, b)
    return None


def describe(doc: Document, symbol: Symbol) -> str:
    spec = symbol.spec
    model = doc.model_of(spec)
    if symbol.kind == "spec":
        return (f"**scm {spec.name.text}** (id `{spec.spec_id}`): {len(spec.variables)} "
                f"variables, {len(spec.edges)} edges, {len(spec.counterfactuals)} "
                "counterfactuals")
    if symbol.kind == "counterfactual":
        block = next(c for c in spec.blocks if c.name.text == symbol.name)
        if isinstance(block, ast.CounterfactualSet):
            return _describe_set(block, model)
        cf = block
        lines = [f"**counterfactual {symbol.name}**"]
        for a in cf.interventions:
            lines.append(f"- do({a.target.text} = {_value(a.value)})")
        for a in cf.sets:
            lines.append(f"- set {a.target.text} = {_value(a.value)}")
        if model is not None:
            cm = next((c for c in model.counterfactuals if c.node is cf), None)
            if cm is not None and cm.prompt_1 is not None:
                lines.append(f"\nprompt: {cm.prompt_1.text!r}")
        return "\n".join(lines)
    var = next(v for v in spec.variables if v.name.text == symbol.name)
    kind = f": {var.kind.text}" if var.kind else ""
    shown = "none" if var.value is None else repr(var.value)
    lines = [f"**var {var.name.text}{kind}** = {shown}"]
    if var.description:
        lines.append(f"\n{var.description.value}")
    if model is not None and var.name.text in model.graph:
        parents = sorted(model.graph.predecessors(var.name.text))
        children = sorted(model.graph.successors(var.name.text))
        lines.append(f"\n- parents: {', '.join(parents) or '(none)'}")
        lines.append(f"- children: {', '.join(children) or '(none)'}")
    return "\n".join(lines)


def _describe_set(node: ast.CounterfactualSet, model: SpecModel | None) -> str:
    lines = [f"**counterfactuals {node.name.text}**"]
    for item in node.grid:
        if isinstance(item, ast.Choice):
            values = ", ".join(_value(v) for v in item.values)
            lines.append(f"- do({item.target.text} in [{values}])")
        else:
            lines.append(f"- do({item.target.text} = {_value(item.value)})")
    members = [cm for cm in model.counterfactuals if cm.node.origin is node] if model else []
    if members:
        lines.append(f"\n{len(members)} members:")
        lines += [f"- `{cm.node.name.text}`"
                  + (f": {cm.prompt_1.text!r}" if cm.prompt_1 is not None else "")
                  for cm in members[:20]]
        if len(members) > 20:
            lines.append(f"- ... and {len(members) - 20} more")
    return "\n".join(lines)


def _value(value: ast.Value) -> str:
    return "none" if isinstance(value, ast.NoneValue) else repr(value.value)


# --- completion ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # "keyword" | "variable" | "kind" | "filter"
    detail: str = ""


def complete(doc: Document, offset: int) -> list[Completion]:
    text = doc.source.text
    line_start = text.rfind("\n", 0, offset) + 1
    before = text[line_start:offset]
    spec = doc.spec_at(offset)
    variables = [v for v in (spec.variables if spec else ()) if True]
    names = list(dict.fromkeys(v.name.text for v in variables))
    var_items = [Completion(n, "variable", _words_of(spec, n)) for n in names]
    placeholder = before.rfind("{{")
    if placeholder != -1 and "}}" not in before[placeholder:]:
        inside = before[placeholder + 2 :]
        if "|" in inside:
            return [Completion(f, "filter", "template filter") for f in FILTERS]
        return var_items
    if _in_string(before):
        return []
    if re.search(r"\bvar\s+\w+\s*:\s*\w*$", before):
        used = {v.kind.text for s in (doc.module.specs if doc.module else ())
                for v in s.variables if v.kind}
        return [Completion(k, "kind", "kind") for k in dict.fromkeys((*KINDS, *sorted(used)))]
    return [Completion(k, "keyword") for k in KEYWORDS] + var_items


def _words_of(spec: ast.Spec | None, name: str) -> str:
    var = next((v for v in spec.variables if v.name.text == name), None) if spec else None
    if var is None:
        return ""
    return "none" if var.value is None else repr(var.value)


def _in_string(before: str) -> bool:
    """Whether a line prefix ends inside a string literal."""
    inside = False
    i = 0
    while i < len(before):
        ch = before[i]
        if ch == "#" and not inside:
            return False
        if ch == "\\" and inside:
            i += 2
            continue
        if ch == '"':
            inside = not inside
        i += 1
    return inside


# --- rename -------------------------------------------------------------------------------------


class RenameError(ValueError):
    pass


def rename(doc: Document, offset: int, new_name: str) -> list[tuple[Span, str]]:
    """The edits that rename the symbol at `offset`: its declarations and every mention,
    `{{ X }}` placeholders included."""
    found = doc.symbol_at(offset)
    if found is None:
        raise RenameError("nothing to rename here")
    symbol, _ = found
    if not NAME_RE.fullmatch(new_name) or new_name in KEYWORDS:
        raise RenameError(f"`{new_name}` is not a valid name")
    taken = {s.name for s in doc.symbols if s.spec is symbol.spec and s.kind == symbol.kind}
    if new_name != symbol.name and new_name in taken:
        raise RenameError(f"`{new_name}` is already a {symbol.kind} of this spec")
    return [(span, new_name) for span in symbol.references]


# --- quick fixes --------------------------------------------------------------------------------


def fixes(diagnostics: list[Diagnostic]) -> list[tuple[Diagnostic, Fix]]:
    """The quick fixes for these diagnostics: the fixes the checks attached to them (the
    same `cfspec lint --fix` applies), unsafe ones included: the user picks each."""
    return [(d, d.fix) for d in diagnostics if d.fix is not None and d.fix.edits]


# --- semantic tokens ----------------------------------------------------------------------------

TOKEN_TYPES = ("namespace", "type", "variable", "function", "keyword", "string", "number",
               "comment", "operator")
TOKEN_MODIFIERS = ("declaration",)
_LEXEME = re.compile(
    r'(?P<comment>#[^\n]*)|(?P<string>"(?:[^"\\\n]|\\.)*"?)|(?P<operator>->|→)'
    r"|(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
)


def semantic_tokens(doc: Document) -> list[tuple[int, int, str, bool]]:
    """(start offset, end offset, token type, is a declaration), in order, never overlapping:
    keywords, names by what they name, strings (split around `{{ X }}` placeholders, whose
    names are variables), numbers, comments and arrows."""
    names: dict[int, tuple[int, str, bool]] = {}  # start -> (end, type, declaration)
    shown = {"spec": "namespace", "variable": "variable", "counterfactual": "function"}
    for symbol in doc.symbols:
        for span in symbol.references:
            names[span.start] = (span.end, shown[symbol.kind], span == symbol.definition)
    if doc.module is not None:
        for spec in doc.module.specs:
            for var in spec.variables:
                if var.kind is not None:
                    names[var.kind.span.start] = (var.kind.span.end, "type", False)
    out: list[tuple[int, int, str, bool]] = []
    for m in _LEXEME.finditer(doc.source.text):
        kind, start, end = m.lastgroup or "", m.start(), m.end()
        if kind == "string":
            inner = sorted((s, e, t, dec) for s, (e, t, dec) in names.items() if start < s < end)
            position = start
            for s, e, t, dec in inner:
                out.append((position, s, "string", False))
                out.append((s, e, t, dec))
                position = e
            out.append((position, end, "string", False))
        elif kind == "word":
            if start in names:
                e, t, dec = names[start]
                out.append((start, e, t, dec))
            else:
                out.append((start, end, "keyword" if m.group() in KEYWORDS else "variable",
                            False))
        else:
            out.append((start, end, kind, False))
    return [t for t in out if t[1] > t[0]]
