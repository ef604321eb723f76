"""LLM answers in the reference study's JSON shape: `original_prompt`, `counterfactual_prompt`,
`SCM` and `SCM_aug` as lists of edge strings. One object, a list of them, or JSON Lines; also
inside a ```json fence or after a line of prose, as chat answers come.

Tolerated, because LLMs write them: keys in any case and a few synonyms (`scm`, `caption`), a
graph given as one string with an edge per line, as `{"A -> B": "why"}`, or as a list of
`{"from": "A", "to": "B"}` objects. Anything else of the wrong type is a `syntax-error` at it.
"""

from __future__ import annotations

import re

from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.importers import edges as edge_scan
from cfspec.importers import jsonpos
from cfspec.importers.answer import Answer, Declared, Edge, Failure, Piece, edge_from
from cfspec.importers.jsonpos import JArr, JObj, JScalar, JStr, JValue
from cfspec.importers.llm_text import entry_of, split_label

PROMPT_KEYS = ("original_prompt", "prompt", "original_caption", "factual_prompt", "caption",
               "original")
COUNTERFACTUAL_KEYS = ("counterfactual_prompt", "counterfactual_caption", "cf_prompt",
                       "counterfactual")
SCM_KEYS = ("SCM", "scm_edges", "dag", "causal_graph", "graph", "edges")
AUG_KEYS = ("SCM_aug", "scm_augmented", "augmented_scm", "counterfactual_scm", "scm_cf",
            "counterfactual_graph", "dag_aug")
# The item's own id, first match wins: `coco-counterfactual-index` is COCO-Counterfactuals';
# `filename` names SocialCounterfactuals' rows.
ID_KEYS = ("id", "coco-counterfactual-index", "pair_id", "item_id", "sample_id", "example_id",
           "uid", "image_id", "index", "idx", "key", "filename")
VARIABLE_KEYS = ("variables", "nodes", "variable_list")
FROM_KEYS = ("from", "source", "cause", "parent", "head")
TO_KEYS = ("to", "target", "effect", "child", "tail")
WHY_KEYS = ("description", "desc", "reason", "explanation", "mechanism", "why", "label")

_FENCE = re.compile(r"^[ \t]*```[ \t]*(?:json[l5]?)?[ \t]*\n(.*?)^[ \t]*```", re.S | re.M | re.I)
_JSON_LINE = re.compile(r"^[ \t]*[{\[]", re.M)


def regions(text: str) -> list[tuple[int, int, bool]]:
    """Where the JSON is: the whole text, the ```json fences, or from the first line that opens
    an object to the end (prose after it ignored)."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        return [(len(text) - len(stripped), len(text), False)]
    fences = [(m.start(1), m.end(1), False) for m in _FENCE.finditer(text)]
    if fences:
        return fences
    m = _JSON_LINE.search(text)
    return [(m.start(), len(text), True)] if m else []


_ID_IN_TEXT = re.compile(r'"(?:id|coco[-_]counterfactual[-_]index|pair_id|item_id|image_id)"'
                         r'\s*:\s*"?([^",}\s]+)')


def values(source: SourceFile, bag: DiagnosticBag, what: str) -> list[JValue | Failure]:
    """Top-level items of a JSON input (a list's elements count as items), syntax errors
    reported into `bag`; in JSON Lines, a line that does not parse is an item of its own that
    failed, so the lines around it still import."""
    found = regions(source.text)
    if not found:
        bag.report("syntax-error", source.span(0, min(1, len(source.text))),
                   f"no JSON found: expected {what}", label="not JSON",
                   help="pass --from llm-text for a free-text answer")
        return []
    out: list[JValue | Failure] = []
    for start, end, tail_ok in found:
        if not tail_ok and jsonpos.json_lines(source.text, start, end):
            for parsed in jsonpos.parse_lines(source.text, start, end):
                if parsed.errors:
                    line_bag = DiagnosticBag(source)
                    _report(line_bag, source, parsed.errors)
                    first = parsed.errors[0].start
                    line = source.position(first)[0]
                    text = source.line_text(line)
                    m = _ID_IN_TEXT.search(text)
                    out.append(Failure(source, 0, source.line_span(line), line_bag.items,
                                       m.group(1) if m else None))
                else:
                    out += [v for value in parsed.values
                            for v in (value.items if isinstance(value, JArr) else [value])]
            continue
        parsed = jsonpos.parse(source.text, start, end, tail_ok=tail_ok)
        _report(bag, source, parsed.errors)
        for value in parsed.values:
            out.extend(value.items if isinstance(value, JArr) else [value])
    return out


def _report(bag: DiagnosticBag, source: SourceFile, errors: list[jsonpos.JsonError]) -> None:
    for error in errors:
        bag.report("syntax-error", source.span(error.start, error.end), error.message,
                   label="here", notes=list(error.notes), help=error.help)


def span_of(source: SourceFile, value: JValue) -> Span:
    return source.span(value.start, value.end)


def raw_id(obj: JObj, keys: tuple[str, ...] = ID_KEYS) -> str | None:
    """The item's own id under the first of `keys`: a string, or a number written as one."""
    found = obj.get(*keys)
    if found is None:
        return None
    value = found[1]
    if isinstance(value, JStr):
        return value.value
    if isinstance(value, JScalar) and value.value is not None and not isinstance(value.value,
                                                                                 bool):
        v = value.value
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    return None


class _Reader:
    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.bag = DiagnosticBag(source)
        self.wrong_graph = False

    def text(self, obj: JObj, keys: tuple[str, ...], what: str) -> tuple[Piece | None, bool]:
        """A string member as a Piece; (None, True) when present with the wrong type."""
        found = obj.get(*keys)
        if found is None:
            return None, False
        key, value = found
        if isinstance(value, JStr):
            return Piece.of_string(value), False
        if isinstance(value, JScalar) and value.value is None:
            return None, False
        self.bag.report("syntax-error", span_of(self.source, value),
                        f"`{key.value}` must be a string (the {what}), found "
                        f"{jsonpos.kind(value)}", label="not a string",
                        help=f'write it as "{key.value}": "..."')
        return None, True

    def graph(self, value: JValue, name: str) -> list[Edge]:
        out: list[Edge] = []
        if isinstance(value, JArr):
            for item in value.items:
                out += self.edge_item(item, name)
        elif isinstance(value, JStr):  # one string, an edge per line
            piece = Piece.of_string(value)
            pos = 0
            for line in value.value.split("\n"):
                out += self.edges_in(piece, pos, line, chain_only=False, report_empty=False)
                pos += len(line) + 1
        elif isinstance(value, JObj):
            nested = value.get("edges", "links")
            if nested is not None:
                return self.graph(nested[1], name)
            for key, why in value.members:  # {"A -> B": "why"}
                found = self.edges_in(Piece.of_string(key), 0, key.value, chain_only=True)
                if isinstance(why, JStr) and why.value.strip():
                    found = [_described(e, why.value) for e in found]
                out += found
        else:
            self.wrong_graph = True
            self.bag.report("syntax-error", span_of(self.source, value),
                            f"`{name}` must be a list of edge strings, found "
                            f"{jsonpos.kind(value)}", label="not a list",
                            help=f'write it as "{name}": ["A -> B: why", ...]')
        return out

    def edge_item(self, item: JValue, name: str) -> list[Edge]:
        if isinstance(item, JStr):
            return self.edges_in(Piece.of_string(item), 0, item.value, chain_only=True)
        if isinstance(item, JObj):
            ends = [item.get(*FROM_KEYS), item.get(*TO_KEYS)]
            if all(e is not None and isinstance(e[1], JStr) and e[1].value.strip()
                   for e in ends):
                (_, s), (_, t) = ends  # type: ignore[misc]
                assert isinstance(s, JStr) and isinstance(t, JStr)
                why = item.get(*WHY_KEYS)
                s_span, t_span = self.name_span(s), self.name_span(t)
                return [Edge(
                    edge_scan.clean_name(s.value), edge_scan.clean_name(t.value),
                    why[1].value if why and isinstance(why[1], JStr) else None,
                    s_span.to(t_span) if s_span.start <= t_span.start else t_span.to(s_span),
                    s_span, t_span, "->", "plain")]
        self.bag.report("syntax-error", span_of(self.source, item),
                        f"an edge of `{name}` must be a string like \"A -> B: why\", found "
                        f"{jsonpos.kind(item)}", label="not an edge")
        return []

    def variables(self, value: JValue, key: str) -> list[Declared] | None:
        """`"variables": {"W": "woman (the person cutting)"}`, or a list of `"W: woman"`
        strings or `{"name": ..., "description": ...}` objects."""
        out: list[Declared] = []
        entries: list[tuple[JStr, JValue | None]] = []
        if isinstance(value, JObj):
            entries = list(value.members)
        elif isinstance(value, JArr) and all(isinstance(v, (JStr, JObj)) for v in value.items):
            for item in value.items:
                if isinstance(item, JStr):
                    entry = entry_of(item.value, 0, Piece.of_string(item), self.source)
                    if entry is not None:
                        out.append(entry)
                        continue
                    self.bag.report("syntax-error", span_of(self.source, item),
                                    f"cannot tell the name from the label in {item.value!r}",
                                    label="not `NAME: label`", help='write "W: woman"')
                elif isinstance(item, JObj):
                    named = item.get("name", "id", "variable", "symbol")
                    if named is not None and isinstance(named[1], JStr):
                        entries.append((named[1], item))
        else:
            self.bag.report("syntax-error", span_of(self.source, value),
                            f"`{key}` must map names to what they stand for, found "
                            f"{jsonpos.kind(value)}", label="not variables",
                            help=f'write "{key}": {{"W": "woman", ...}}')
            return None
        for name, about in entries:
            label, description = _label_and_description(about)
            out.append(Declared(edge_scan.clean_name(name.value), label, description,
                                self.name_span(name)))
        return out

    def name_span(self, s: JStr) -> Span:
        lead = len(s.value) - len(s.value.lstrip())
        return Piece.of_string(s).span(self.source, lead, len(s.value.rstrip()))

    def edges_in(self, piece: Piece, at: int, line: str, *, chain_only: bool,
                 report_empty: bool = True) -> list[Edge]:
        sub = Piece(line, piece.offset(at), piece.index[at:at + len(line)]
                    if piece.index is not None else None, piece.offset(at + len(line)))
        found = edge_scan.scan(line, chain_only=chain_only)
        for broken in found.broken:
            self.bag.report("syntax-error", sub.span(self.source, broken.start, broken.end),
                            f"broken edge: {broken.message}", label="here",
                            help="write each edge as `A -> B: why`")
        if not found.edges and not found.broken and report_empty and line.strip():
            self.bag.report("syntax-error", sub.span(self.source),
                            f"no arrow in the edge {line.strip()[:60]!r}", label="not an edge",
                            help="write each edge as `A -> B: why` (or →, =>, ⇒, \\rightarrow)")
        return [edge_from(raw, sub, self.source) for raw in found.edges]

    def answer(self, obj: JObj, number: int) -> Answer:
        span = span_of(self.source, obj)
        self.bag = DiagnosticBag(self.source)
        prompt, bad_prompt = self.text(obj, PROMPT_KEYS, "original prompt")
        counterfactual, _ = self.text(obj, COUNTERFACTUAL_KEYS, "counterfactual prompt")
        answer = Answer(self.source, "llm-json", number, raw_id(obj), span, prompt,
                        counterfactual)
        if bad_prompt:
            answer.silent.add("missing-prompt")
        scm = obj.get(*SCM_KEYS)
        if scm is None:
            self.bag.report("syntax-error", Span(span.line, span.column, span.line,
                                                 span.column + 1, span.start, span.start + 1),
                            "the answer has no `SCM`", label="this object",
                            notes=["keys: " + ", ".join(k.value for k, _ in obj.members)],
                            help='add "SCM": ["A -> B: why", ...]')
            answer.needs_graph = False
        else:
            self.wrong_graph = False
            answer.edges = self.graph(scm[1], scm[0].value)
            answer.graph_span = span_of(self.source, scm[1])
            answer.graph_name = scm[0].value
            if self.wrong_graph:
                answer.silent.add("empty-graph")
        declared = obj.get(*VARIABLE_KEYS)
        if declared is not None:
            answer.declared = self.variables(declared[1], declared[0].value)
            answer.declared_in = f"`{declared[0].value}`"
        aug = obj.get(*AUG_KEYS)
        if aug is not None and not (isinstance(aug[1], JScalar) and aug[1].value is None):
            answer.aug = self.graph(aug[1], aug[0].value)
            answer.aug_name = aug[0].value
        answer.diagnostics = list(self.bag.items)
        return answer


def _described(edge: Edge, why: str) -> Edge:
    from dataclasses import replace

    return replace(edge, description=edge.description or why.strip())


def read(source: SourceFile) -> list[Answer | Failure]:
    reader = _Reader(source)
    items = values(source, reader.bag, "an object with original_prompt, SCM, ...")
    out: list[Answer | Failure] = []
    if reader.bag.items:
        out.append(Failure(source, 0, source.whole(), list(reader.bag.items)))
    for number, item in enumerate(items, start=1):
        if isinstance(item, Failure):
            item.number = number
            out.append(item)
            continue
        if isinstance(item, JObj):
            out.append(reader.answer(item, number))
            continue
        bag = DiagnosticBag(source)
        bag.report("syntax-error", span_of(source, item),
                   f"expected an answer object, found {jsonpos.kind(item)}",
                   label="not an object",
                   help='each answer is {"original_prompt": ..., "SCM": [...], ...}')
        out.append(Failure(source, number, span_of(source, item), bag.items))
    return out


def _label_and_description(about: JValue | None) -> tuple[str | None, str | None]:
    """What a variable entry says it stands for: `"woman (the person cutting)"`, or an object
    with a label (`label`, `words`, ...) and a description (`WHY_KEYS`)."""
    label = description = None
    if isinstance(about, JStr):
        label, description = split_label(about.value)
    elif isinstance(about, JObj):
        for keys in (("label", "words", "value", "text"), WHY_KEYS):
            found = about.get(*keys)
            if found is not None and isinstance(found[1], JStr):
                if keys == WHY_KEYS:
                    description = found[1].value
                else:
                    label = found[1].value
    return label, description
