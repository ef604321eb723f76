"""Caption pairs (`id, caption_0, caption_1` in COCO-Counterfactuals' layout; SugarCrepe's,
Winoground's, ARO's and any columns named with `--columns`), as `tables.py` reads them from
JSON, JSON Lines, CSV, TSV or Parquet.

A pair has no graph. The captions are compared word by word, case and punctuation aside (a
difference in writing only is a `caption-artefact` warning, never a change), and each
contiguous run of changed words becomes a variable (`pair_runs`); unchanged words between two
runs make them two:

- a run that replaces words is an intervention on them: `stop sign` -> `traffic light` is
  `do(Sign = "traffic light")`; words deleted are `do(X = none)`;
- words added where the factual caption has none are an intervention on a variable it does
  not show: `var Polka_dot = none` placed where they go, `do(Polka_dot = "polka-dot")`;
- a run made only of forms that agree with another run's change (a pronoun or possessive, a
  verb's or a noun's number, an article: `cfspec.lang.agreement`) is its consequence, not an
  intervention: a variable downstream of the intervened one (an edge `Girl -> Her`) that the
  counterfactual `set`s (`girl ... her` -> `boy ... his`);
- two interventions that exchange their words (`woman ... man` -> `man ... woman`) are a swap:
  two interventions still, said on their do() line.

The edit type follows from the runs: replace when every run keeps its word count, refine for
insertions and deletions. Without a graph a pair is still a valid one-intervention spec, so
`empty-graph` is only a warning here.
"""

from __future__ import annotations

from dataclasses import dataclass

from cfspec.diagnostics.records import Diagnostic, DiagnosticBag
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.importers import tables
from cfspec.importers.answer import Answer, Columns, Declared, Edge, Failure, Output, Piece
from cfspec.importers.binding import Token, tokens
from cfspec.importers.changes import absent_slot, is_artefact, opcodes
from cfspec.importers.jsonpos import JStr, kind
from cfspec.importers.llm_json import span_of
from cfspec.importers.names import word_name
from cfspec.importers.photos import row_file_name
from cfspec.importers.runs import trim, word_beside
from cfspec.lang.agreement import Agreement, agreement, consequences
from cfspec.lang.prompt import REMOVED, close_gaps


@dataclass
class Run:
    """One contiguous run of changed words: factual tokens [i, j), counterfactual tokens
    [lo, hi). An addition has i == j: its words go before factual token i."""

    i: int
    j: int
    lo: int
    hi: int
    agreement: Agreement | None = None  # made of agreement forms alone
    parent: int | None = None  # the run whose change it follows (then not an intervention)
    swap: int | None = None  # the run it exchanges words with

    @property
    def added(self) -> bool:
        return self.i == self.j


def _absent_fits(p0: str, t0: list[Token], at: int) -> bool:
    """Whether a variable with no factual words can sit before token `at`
    (`changes.absent_slot`) and still render the factual caption exactly."""
    if not t0:
        return False
    cut, slot = absent_slot(t0, at, REMOVED)
    return close_gaps(p0[:cut] + slot + p0[cut:])[0] == p0


def pair_runs(p0: str, p1: str) -> tuple[list[Token], list[Token], list[Run]]:
    """The runs of changed words (see the module docstring), each marked as an agreement
    consequence of another (`parent`) or as half of a swap."""
    t0, t1 = tokens(p0), tokens(p1)
    runs: list[Run] = []
    for op in opcodes(t0, t1):
        tag, a0, a1, b0, b1 = op
        if tag == "equal" or is_artefact(op, t0, t1):
            continue
        i, j = trim(t0, a0, a1)
        lo, hi = trim(t1, b0, b1)
        if i == j:
            if lo == hi:
                continue  # punctuation for punctuation
            i = j = a0  # added, or in place of nothing but punctuation (`mountain..`)
        runs.append(Run(i, j, lo, hi))
    changes = [([t.text for t in t0[r.i:r.j]], [t.text for t in t1[r.lo:r.hi]], r.i)
               for r in runs]
    for r, (old, new, _), parent in zip(runs, changes, consequences(changes), strict=True):
        r.agreement, r.parent = agreement(old, new), parent
    _pair_swaps(runs, t0, t1, [k for k, r in enumerate(runs) if r.parent is None])
    return t0, t1, runs


def _pair_swaps(runs: list[Run], t0: list[Token], t1: list[Token], causes: list[int]) -> None:
    """Mark interventions that exchange their words: what one takes away the other puts in,
    both ways (`woman` -> `man` and `man` -> `woman`; `A man` -> `Two men` and `two men` ->
    `a man`, where only the count moves)."""
    def keys(toks: list[Token]) -> set[str]:
        return {t.key for t in toks if t.content}

    moved = []
    for k in causes:
        r = runs[k]
        if r.i == r.j or r.lo == r.hi:
            continue  # an addition or a removal moves something, it exchanges nothing
        old, new = keys(t0[r.i:r.j]), keys(t1[r.lo:r.hi])
        moved.append((k, old - new, new - old))
    for n, (k, out_k, in_k) in enumerate(moved):
        if runs[k].swap is not None:
            continue
        for m, out_m, in_m in moved[n + 1:]:
            if runs[m].swap is not None or not (out_k | out_m):
                continue
            if (out_k & in_m or not (out_k or in_m)) and (out_m & in_k or not (out_m or in_k)):
                runs[k].swap, runs[m].swap = m, k
                break


def pair_answer(source: SourceFile, number: int, item_id: str | None, span: Span, p0: Piece,
                p1: Piece, diagnostics: list[Diagnostic]) -> Answer:
    """A caption pair as an `Answer`: its runs as variables bound to the factual caption, an
    edge into each agreement consequence, and notes that say which run follows which and
    which two are a swap."""
    t0, t1, runs = pair_runs(p0.text, p1.text)
    slots: dict[str, tuple[int, int]] = {}
    declared: list[Declared] = []
    names: list[str] = []
    spans: list[Span] = []
    for r in runs:
        if r.added and not _absent_fits(p0.text, t0, r.i):
            r.i, r.j = _beside(t0, r.i)  # cannot sit alone: extends a neighbour
            if r.added:  # no word to extend: its words stay unexplained
                names.append("")
                spans.append(p1.span(source, t1[r.lo].start, t1[r.hi - 1].end))
                continue
        if r.added:
            base = word_name(t1, r.lo, r.hi)
            where = p1.span(source, t1[r.lo].start, t1[r.hi - 1].end)
        else:
            base = word_name(t0, r.i, r.j)
            where = p0.span(source, t0[r.i].start, t0[r.j - 1].end)
        name, n = base, 2
        while name in slots or name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
        spans.append(where)
        if r.i < r.j and any(a < r.j and r.i < b for a, b in slots.values()):
            continue  # it joined a neighbour that is a run already: that run's words
        slots[name] = (r.i, r.j)
        declared.append(Declared(name, None, None, where))
    notes: list[str] = []
    edges: list[Edge] = []
    shown = [(_said(p0.text, t0, r.i, r.j), _said(p1.text, t1, r.lo, r.hi)) for r in runs]
    comments: list[str] = []
    for k, r in enumerate(runs):
        if r.parent is not None and names[k] in slots and names[r.parent] in slots:
            assert r.agreement is not None
            parent = names[r.parent]
            what = _forms(r.agreement)
            edges.append(Edge(parent, names[k], f"agreement: follows {parent} ({what})",
                              spans[k], spans[r.parent], spans[k], "->", "plain"))
            notes.append(f"{shown[k][0]} -> {shown[k][1]} agrees with {shown[r.parent][0]} -> "
                         f"{shown[r.parent][1]} ({what}): a consequence of `{parent}`, written "
                         f"as `set {names[k]}` with the edge `{parent} -> {names[k]}`, not as "
                         "an intervention.")
        if r.swap is not None and r.swap > k:
            m = r.swap
            comments.append(f"swap of {shown[k][0]} and {shown[m][0]}")
            notes.append(f"A swap: {shown[k][0]} -> {shown[k][1]} and {shown[m][0]} -> "
                         f"{shown[m][1]} exchange their words; two interventions, "
                         f"`{names[k]}` and `{names[m]}`.")
    answer = Answer(source, "coco-cf", number, item_id, span, p0, p1, declared,
                    needs_graph=False, slots=slots, diagnostics=diagnostics, edges=edges,
                    notes=notes)
    answer.do_comment = "; ".join(comments) or None
    answer.graph_span = Span(span.line, span.column, span.line, span.column + 1, span.start,
                             span.start + 1)
    return answer


def _said(text: str, toks: list[Token], i: int, j: int) -> str:
    return f"`{text[toks[i].start:toks[j - 1].end]}`" if i < j else "nothing"


def _forms(agreed: Agreement) -> str:
    names = {"pronoun": "pronoun", "verb": "verb number", "number": "number",
             "article": "article"}
    return ", ".join(names[k] for k in agreed.kinds)


def _beside(t0: list[Token], at: int) -> tuple[int, int]:
    """The word an addition extends when it cannot stand alone (`runs.word_beside`)."""
    chosen = word_beside(t0, at)
    return (chosen, chosen + 1) if chosen is not None else (at, at)


def read(source: SourceFile, columns: Columns | None = None, table: str = "json"
         ) -> list[Answer | Failure]:
    """The caption pairs (and caption sets) of an input, read by `tables.rows`, each as an
    Answer; rows that are no pair are the Failures `tables` reports."""
    out: list[Answer | Failure] = []
    for row in tables.rows(source, columns, table):
        if isinstance(row, Failure):
            out.append(row)
        else:
            if row.outputs is not None:
                read_row = _caption_set(source, row, DiagnosticBag(source))
            else:
                assert row.counterfactual is not None
                read_row = pair_answer(source, row.number, row.raw_id, row.span,
                                       Piece.of_string(row.factual),
                                       Piece.of_string(row.counterfactual), [])
            if isinstance(read_row, Answer):  # its photo, when the row names one
                read_row.file_name = row_file_name(row.item)
            out.append(read_row)
    return out


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
