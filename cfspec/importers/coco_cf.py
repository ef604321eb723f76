"""Caption pairs (`id, caption_0, caption_1` in COCO-Counterfactuals' layout; SugarCrepe's,
Winoground's, ARO's and any columns named with `--columns`), as `tables.py` reads them from
JSON, JSON Lines, CSV, TSV or Parquet.

A pair has no graph. Each contiguous run of changed words becomes a variable, intervened on:
`flock` -> `pair` is `do(flock = "pair")`; words deleted are `do(X = none)`; words inserted
extend the word next to them (`dog` -> `big dog`). The edit type follows from the runs: replace
when every run keeps its word count, refine for insertions and deletions. Without a graph a
pair is still a valid one-intervention spec, so `empty-graph` is only a warning here.
"""

from __future__ import annotations

from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.importers import tables
from cfspec.importers.analysis import cname
from cfspec.importers.answer import Answer, Columns, Declared, Failure, Output, Piece
from cfspec.importers.binding import STOPWORDS, Token, tokens
from cfspec.importers.changes import is_artefact, opcodes
from cfspec.importers.jsonpos import JStr, kind
from cfspec.importers.llm_json import span_of


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


def read(source: SourceFile, columns: Columns | None = None, table: str = "json"
         ) -> list[Answer | Failure]:
    """The caption pairs (and caption sets) of an input, read by `tables.rows`, each as an
    Answer; rows that are no pair are the Failures `tables` reports."""
    out: list[Answer | Failure] = []
    for row in tables.rows(source, columns, table):
        if isinstance(row, Failure):
            out.append(row)
        elif row.outputs is not None:
            out.append(_caption_set(source, row, DiagnosticBag(source)))
        else:
            out.append(_pair(source, row))
    return out


def _pair(source: SourceFile, row: tables.Row) -> Answer:
    assert row.counterfactual is not None
    span = row.span
    p0, p1 = Piece.of_string(row.factual), Piece.of_string(row.counterfactual)
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
    answer = Answer(source, "coco-cf", row.number, row.raw_id, span, p0, p1, declared,
                    needs_graph=False, slots=slots)
    answer.graph_span = Span(span.line, span.column, span.line, span.column + 1, span.start,
                             span.start + 1)
    return answer


def _caption_set(source: SourceFile, row: tables.Row, problems: DiagnosticBag
                 ) -> Answer | Failure:
    """A row with one caption and several counterfactual captions: one spec, a counterfactual
    per output (judged by `sets.py`). An output that is not a string is reported and left out;
    the others are imported."""
    assert row.outputs is not None
    number, span, caption, outputs = row.number, row.span, row.factual, row.outputs
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
        return Failure(source, number, span, problems.items, row.raw_id)
    answer = Answer(source, "coco-cf", number, row.raw_id, span, Piece.of_string(caption),
                    None, [], needs_graph=False, diagnostics=problems.items, outputs=kept)
    answer.graph_span = Span(span.line, span.column, span.line, span.column + 1, span.start,
                             span.start + 1)
    return answer
