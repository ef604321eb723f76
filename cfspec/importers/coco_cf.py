"""Caption pairs in the COCO-Counterfactuals layout (`id, caption_0, caption_1, image_0,
image_1`), as JSON Lines, a JSON list or one object.

A pair has no graph. Each contiguous run of changed words becomes a variable, intervened on:
`flock` -> `pair` is `do(flock = "pair")`; words deleted are `do(X = none)`; words inserted
extend the word next to them (`dog` -> `big dog`). The edit type follows from the runs: replace
when every run keeps its word count, refine for insertions and deletions. Without a graph a
pair is still a valid one-intervention spec, so `empty-graph` is only a warning here.
"""

from __future__ import annotations

import re

from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.importers.analysis import cname
from cfspec.importers.answer import Answer, Declared, Failure, Output, Piece
from cfspec.importers.binding import STOPWORDS, Token, tokens
from cfspec.importers.changes import is_artefact, opcodes
from cfspec.importers.jsonpos import JObj, JStr, JValue, kind
from cfspec.importers.llm_json import raw_id, span_of, values

CAPTION_0 = ("caption_0", "original_caption", "original_prompt", "caption")
CAPTION_1 = ("caption_1", "counterfactual_caption", "counterfactual_prompt", "output_1")
# SocialCounterfactuals: `output_1` ... `output_N`, one counterfactual each.
_MORE_OUTPUTS = re.compile(r"output[-_ ]?(\d+)$", re.I)


def _punct(tok: Token) -> bool:
    return not any(c.isalnum() for c in tok.text)


def _trim(toks: list[Token], i: int, j: int) -> tuple[int, int]:
    while i < j and _punct(toks[i]):
        i += 1
    while j > i and _punct(toks[j - 1]):
        j -= 1
    return i, j


def changed_runs(p0: str, p1: str) -> list[tuple[int, int]]:
    """The factual token range each changed run binds to (see the module docstring). Changes
    in writing only (`They'll` -> `They 'll`) are caption artefacts, not runs."""
    t0, t1 = tokens(p0), tokens(p1)
    runs: list[tuple[int, int]] = []
    for op in opcodes(t0, t1):
        tag, a0, a1, b0, b1 = op
        if tag == "equal" or is_artefact(op, t0, t1):
            continue
        i, j = _trim(t0, a0, a1)
        if i < j:
            runs.append((i, j))
            continue
        # Inserted, or in place of nothing but punctuation (`mountain..` -> `mountain goats`).
        if all(_punct(t) for t in t1[b0:b1]):
            continue
        # The word after the insertion (an adjective before its noun), else the one before.
        after = a0 if a0 < len(t0) and not _punct(t0[a0]) else None
        before = a0 - 1 if a0 > 0 and not _punct(t0[a0 - 1]) else None
        at = after if after is not None else before
        if at is not None and not any(i <= at < j for i, j in runs):
            runs.append((at, at + 1))
    return runs


def _name(toks: list[Token], i: int, j: int) -> str:
    content = [t for t in toks[i:j] if not _punct(t) and t.plain not in STOPWORDS]
    head = (content or toks[i:j])[-1].text
    return cname(head[:1].upper() + head[1:], "V")


def read(source: SourceFile) -> list[Answer | Failure]:
    bag = DiagnosticBag(source)
    items = values(source, bag, "caption pairs: {\"id\", \"caption_0\", \"caption_1\"} per line")
    out: list[Answer | Failure] = []
    if bag.items:
        out.append(Failure(source, 0, source.whole(), list(bag.items)))
    for number, item in enumerate(items, start=1):
        if isinstance(item, Failure):
            item.number = number
            out.append(item)
            continue
        span = span_of(source, item)
        problems = DiagnosticBag(source)
        if not isinstance(item, JObj):
            problems.report("syntax-error", span, f"expected a caption pair, found {kind(item)}",
                            label="not an object",
                            help='one pair per line: {"id": ..., "caption_0": ..., '
                            '"caption_1": ...}')
            out.append(Failure(source, number, span, problems.items))
            continue
        outputs = _outputs(item)
        factual = item.get(*CAPTION_0)
        if len(outputs) > 1 and factual is not None and isinstance(factual[1], JStr):
            out.append(_caption_set(source, number, item, span, factual[1], outputs, problems))
            continue
        captions: list[JStr] = []
        for keys in (CAPTION_0, CAPTION_1):
            found = item.get(*keys)
            if found is None or not isinstance(found[1], JStr):
                where = span_of(source, found[1]) if found is not None else \
                    Span(span.line, span.column, span.line, span.column + 1, span.start,
                         span.start + 1)
                what = f"`{keys[0]}` must be a string, found {kind(found[1])}" if found \
                    else f"the pair has no `{keys[0]}`"
                problems.report("syntax-error", where, what, label="here",
                                help=f'add "{keys[0]}": "the caption"')
            else:
                captions.append(found[1])
        if problems.items:
            out.append(Failure(source, number, span, problems.items, raw_id(item)))
            continue
        p0, p1 = Piece.of_string(captions[0]), Piece.of_string(captions[1])
        t0 = tokens(p0.text)
        slots: dict[str, tuple[int, int]] = {}
        declared: list[Declared] = []
        for i, j in changed_runs(p0.text, p1.text):
            name, n = _name(t0, i, j), 2
            while name in slots:
                name, n = f"{_name(t0, i, j)}_{n}", n + 1
            slots[name] = (i, j)
            declared.append(Declared(name, None, None,
                                     p0.span(source, t0[i].start, t0[j - 1].end)))
        answer = Answer(source, "coco-cf", number, raw_id(item), span, p0, p1, declared,
                        needs_graph=False, slots=slots, diagnostics=problems.items)
        answer.graph_span = Span(span.line, span.column, span.line, span.column + 1, span.start,
                                 span.start + 1)
        out.append(answer)
    return out


def _outputs(item: JObj) -> list[tuple[JStr, JValue]]:
    """`output_1` ... `output_N` (SocialCounterfactuals), by their number."""
    found = [(int(m.group(1)), n, k, v) for n, (k, v) in enumerate(item.members)
             if (m := _MORE_OUTPUTS.match(k.value.strip()))]
    return [(k, v) for _, _, k, v in sorted(found, key=lambda o: (o[0], o[1]))]


def _caption_set(source: SourceFile, number: int, item: JObj, span: Span, caption: JStr,
                 outputs: list[tuple[JStr, JValue]], problems: DiagnosticBag) -> Answer | Failure:
    """A row with one caption and several counterfactual captions: one spec, a counterfactual
    per output (judged by `sets.py`). An output that is not a string is reported and left out;
    the others are imported."""
    kept: list[Output] = []
    for key, value in outputs:
        if isinstance(value, JStr):
            kept.append(Output(key.value, Piece.of_string(value)))
            continue
        problems.report("syntax-error", span_of(source, value),
                        f"`{key.value}` must be a string, found {kind(value)}",
                        label="not a caption",
                        help=f'write it as a caption, "{key.value}": "...", or drop it; the '
                        "row's other outputs are imported")
    if not kept:
        return Failure(source, number, span, problems.items, raw_id(item))
    answer = Answer(source, "coco-cf", number, raw_id(item), span, Piece.of_string(caption),
                    None, [], needs_graph=False, diagnostics=problems.items, outputs=kept)
    answer.graph_span = Span(span.line, span.column, span.line, span.column + 1, span.start,
                             span.start + 1)
    return answer
