"""What every pass of a judgement shares: the answer, the options, and where what the passes
find is put (diagnostics, `--fix`'s fixes, the header's notes), with the helpers for the input's
positions and for the edges touching a variable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cfspec.checks.edits import report_prompt_length
from cfspec.checks.interventions import report_caption_artefacts
from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.importers.answer import Answer, Edge, ImportOptions, Piece


@dataclass(frozen=True)
class Judging:
    """One answer being judged. `p0`/`p1`: the factual and counterfactual prompts, from the
    answer or from `--prompt`/`--counterfactual-prompt` (then pointing at the answer's start)."""

    answer: Answer
    options: ImportOptions
    bag: DiagnosticBag
    p0: Piece | None
    p1: Piece | None
    fixes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the .scm header

    @property
    def source(self) -> SourceFile:
        return self.answer.source

    def report(self, name: str, span: Span, message: str, **kwargs: object) -> None:
        if name not in self.answer.silent:
            self.bag.report(name, span, message, **kwargs)  # type: ignore[arg-type]


def start(answer: Answer, options: ImportOptions) -> Judging:
    """The context for judging `answer`: what its reader found is already in the bag."""
    bag = DiagnosticBag(answer.source)
    bag.items.extend(answer.diagnostics)
    here = point(answer.span)
    p0 = answer.prompt or (Piece(options.prompt, fallback=here)
                           if options.prompt is not None else None)
    p1 = answer.counterfactual or (Piece(options.counterfactual_prompt, fallback=here)
                                   if options.counterfactual_prompt is not None else None)
    return Judging(answer, options, bag, p0, p1, notes=list(answer.notes))


def point(span: Span) -> Span:
    """The empty span at the start of `span`."""
    return Span(span.line, span.column, span.line, span.column, span.start, span.start)


def touching(edges: Sequence[Edge]) -> dict[str, list[Edge]]:
    """Each variable's edges, in order: built once, so that per-variable lookups stay linear
    in the answer (an answer may hold thousands of edges)."""
    out: dict[str, list[Edge]] = {}
    for e in edges:
        out.setdefault(e.source, []).append(e)
        if e.target != e.source:
            out.setdefault(e.target, []).append(e)
    return out


def descriptions(index: Mapping[str, list[Edge]], name: str) -> list[str]:
    return [e.description or "" for e in index.get(name, ())]


def report_length(j: Judging, piece: Piece, what: str) -> None:
    report_prompt_length(j.report, piece.span(j.source), piece.text, what, j.options.tokenizer)


def report_artefacts(j: Judging, p0: Piece, p1: Piece) -> None:
    """Differences in writing only between the captions: warned about, kept as written."""
    report_caption_artefacts(
        j.report, p0.text, p1.text,
        lambda start, end: p1.span(j.source, start, end),
        note="not a change of content, so not an intervention; the .scm keeps the caption "
        "as written",
        help="`cfspec import --fix` writes the counterfactual the way the original is "
        "written")
