"""LLM answers as free text: a `Variables:` list (`- P: Plate (the object holding the food)`),
edges in any arrow form, one or several per line, grouped into blocks (`SCM DAG:`, `Edges:`),
and `Original prompt:` / `Counterfactual prompt:` lines when the answer repeats them.

An answer often states its graph more than once (a first try, then a revised DAG, then the same
edges as a list). The last complete block is used and a note says so; a block with an arrow
that has no variable on one side (a truncated answer) is incomplete. A block whose heading
speaks of the counterfactual (`Counterfactual SCM:`, `SCM_aug:`, `after do(...)`) is the
counterfactual graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import DiagnosticBag, Label
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.importers import edges as edge_scan
from cfspec.importers.answer import (
    GRAPH_CHOICE,
    Answer,
    Declared,
    Edge,
    Failure,
    Piece,
    edge_from,
)

_BULLET = r"[ \t]*(?:[-*•+]|\d+[.)])?[ \t]*"
_PROMPT = re.compile(
    rf"^{_BULLET}(?:\*\*|__)?(?P<kind>original|factual|source|counterfactual|modified|edited"
    r"|new)?[ \t]*(?:prompt|caption)(?:[ \t]*\((?:original|counterfactual)\))?(?:\*\*|__)?"
    r"[ \t]*[:=][ \t]*(?:\*\*|__)?[ \t]*(?P<text>.*?)[ \t]*$",
    re.I,
)
_VARIABLES = re.compile(
    rf"^{_BULLET}(?:#+[ \t]*)?(?:\*\*|__)?(?:variables|nodes|variable list|the variables are)"
    r"(?:\*\*|__)?[ \t]*:?[ \t]*(?:\*\*|__)?[ \t]*$",
    re.I,
)
_ENTRY_BULLET = re.compile(r"^[ \t]*(?:[-*•+]|\d+[.)])[ \t]+")
_NAME_FIRST = re.compile(
    r"^(?:\*\*|__|`)?(?P<name>[^\s:=()*`]+)(?:\*\*|__|`)?[ \t]*[:=–—-][ \t]*(?P<rest>.+)$"
)
_LABEL_FIRST = re.compile(
    r"^(?:\*\*|__)?(?P<label>[^():=]+?)(?:\*\*|__)?[ \t]*\((?P<name>[^\s()]{1,12})\)"
    r"[ \t]*(?:[:–—-][ \t]*(?P<desc>.*))?$"
)
_AUG_HEADING = re.compile(
    r"counterfactual|\baug|after (?:the )?intervention|intervened|do\(|modified|post-intervention",
    re.I,
)
_QUOTES = "\"'“”‘’`*_"


@dataclass
class _Block:
    edges: list[Edge] = field(default_factory=list)
    broken: list[tuple[Span, str]] = field(default_factory=list)
    first_line: int = 0
    heading: str = ""
    start: int = 0
    end: int = 0

    @property
    def complete(self) -> bool:
        return not self.broken and bool(self.edges)

    @property
    def aug(self) -> bool:
        return bool(_AUG_HEADING.search(self.heading))


def _unquote(text: str, start: int) -> tuple[str, int]:
    """A prompt without the quotes or emphasis around it, and where it now starts."""
    lead = len(text) - len(text.lstrip(_QUOTES + " \t"))
    body = text.strip(_QUOTES + " \t")
    return body, start + lead


def split_label(rest: str) -> tuple[str | None, str | None]:
    """`Plate (the object holding the food)` or `Plate - the object ...` -> label, description."""
    rest = rest.strip()
    label, desc = rest, None
    paren = re.match(r"^(?P<label>[^(]+?)[ \t]*\((?P<desc>.*)\)[ \t]*[.;]?$", rest)
    dash = re.match(r"^(?P<label>[^–—:]+?)[ \t]+(?:-|–|—|:)[ \t]+(?P<desc>.+)$", rest)
    if paren:
        label, desc = paren.group("label"), paren.group("desc")
    elif dash:
        label, desc = dash.group("label"), dash.group("desc")
    return label.strip(_QUOTES + " \t.") or None, desc.strip() if desc else None


def entry_of(body: str, offset: int, piece: Piece, source: SourceFile) -> Declared | None:
    """One variable entry without its bullet: `P: Plate (why)`, `Plate (P): why`. `offset` is
    where `body` starts in `piece`."""
    span = piece.span(source, offset, offset + len(body.rstrip()))
    m = _NAME_FIRST.match(body)
    if m and not edge_scan.ARROW.search(body):
        label, desc = split_label(m.group("rest"))
        return Declared(edge_scan.clean_name(m.group("name")), label, desc, span)
    m = _LABEL_FIRST.match(body)
    if m:
        return Declared(edge_scan.clean_name(m.group("name")), m.group("label").strip(_QUOTES),
                        (m.group("desc") or "").strip() or None, span)
    return None


def _entry(line: str, start: int, source: SourceFile) -> Declared | None:
    body = _ENTRY_BULLET.sub("", line, count=1)
    if body == line and not re.match(r"^\s*\S+\s*[:=]", line):
        return None
    return entry_of(body, len(line) - len(body), Piece.at(line, start), source)


@dataclass
class _Scan:
    """What the line scan has found so far, and where it is: in a `Variables:` list, in a
    block of edges (`current`), or after a prompt heading whose text is on the next line."""

    source: SourceFile
    prompt: Piece | None = None
    counterfactual: Piece | None = None
    declared: list[Declared] | None = None
    blocks: list[_Block] = field(default_factory=list)
    current: _Block | None = None
    heading: str = ""
    in_variables: bool = False
    variables_at: Span | None = None
    prompt_next: str | None = None  # `cf` or `p0`: the prompt whose text is on the next line

    def set_prompt(self, which: str, piece: Piece) -> None:
        if which == "cf":
            self.counterfactual = piece
        else:
            self.prompt = piece


def read(source: SourceFile) -> list[Answer | Failure]:
    text = source.text
    bag = DiagnosticBag(source)
    control = re.search(r"[\x00-\x08\x0e-\x1f\x7f]", text)
    if control:
        bag.report("syntax-error", source.span(control.start(), control.start() + 1),
                   f"control character U+{ord(control.group()):04X}: this is not a text answer",
                   label="binary data?", help="import the answer as UTF-8 text")
        return [Failure(source, 1, source.whole(), bag.items)]
    scan = _Scan(source)
    pos = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        _scan_line(scan, number, raw.rstrip("\r"), pos)
        pos += len(raw) + 1
    if not scan.blocks and not scan.declared and scan.prompt is None \
            and scan.counterfactual is None:
        bag.report("syntax-error", source.span(0, min(1, len(text))),
                   "no SCM found in the text: no `Variables:` list, no edges, no prompts",
                   label="not an answer",
                   help="an answer lists edges like `W -> A: why`; pass --from llm-json or "
                   "coco-cf for other shapes")
        return [Failure(source, 1, source.whole(), bag.items)]
    return [_answer(scan, bag)]


def _scan_line(scan: _Scan, number: int, line: str, start: int) -> None:
    """One line: a prompt, the `Variables:` heading or one of its entries, edges, or a
    heading (any other text: it names the block of edges that may follow)."""
    stripped = line.strip()
    if scan.prompt_next is not None and stripped:
        body, at = _unquote(stripped, start + line.index(stripped))
        scan.set_prompt(scan.prompt_next, Piece.at(body, at))
        scan.prompt_next = None
        return
    if not stripped:
        return
    m = _PROMPT.match(line)
    if m and not edge_scan.ARROW.search(line):
        kind = (m.group("kind") or "").lower()
        which = "cf" if kind in ("counterfactual", "modified", "edited", "new") else "p0"
        body, at = _unquote(m.group("text"), start + m.start("text"))
        if body:
            scan.set_prompt(which, Piece.at(body, at))
        else:
            scan.prompt_next = which
        scan.current, scan.in_variables = None, False
        return
    if _VARIABLES.match(line):
        scan.declared = scan.declared if scan.declared is not None else []
        scan.variables_at = scan.variables_at or scan.source.span(
            start + len(line) - len(line.lstrip()), start + len(line.rstrip()))
        scan.in_variables, scan.current = True, None
        return
    scanned = edge_scan.scan(line)
    if scan.in_variables and not scanned.edges:
        entry = _entry(line, start, scan.source)
        if entry is not None:
            scan.declared = scan.declared if scan.declared is not None else []
            scan.declared.append(entry)
            return
        scan.in_variables = False
    if scanned.edges or scanned.broken:
        _edges_line(scan, number, line, start, scanned)
    else:
        scan.heading, scan.current = stripped, None


def _edges_line(scan: _Scan, number: int, line: str, start: int, scanned: edge_scan.Scan
                ) -> None:
    """A line with edges: added to the current block, or a new one under the last heading."""
    stripped = line.strip()
    if stripped.endswith(":") and not scanned.broken:
        scan.heading, scan.current = stripped, None  # `Edges (cause → effect):` is a heading
        return
    scan.in_variables = False
    if scan.current is None:
        scan.current = _Block(first_line=number, heading=scan.heading, start=start)
        scan.blocks.append(scan.current)
    piece = Piece.at(line, start)
    scan.current.edges += [edge_from(raw, piece, scan.source) for raw in scanned.edges]
    scan.current.broken += [(piece.span(scan.source, b.start, b.end), b.message)
                            for b in scanned.broken]
    scan.current.end = start + len(line)


def _answer(scan: _Scan, bag: DiagnosticBag) -> Answer:
    """The answer the scan found: the last complete factual and counterfactual graphs."""
    source = scan.source
    answer = Answer(source, "llm-text", 1, None, source.span(0, 0), scan.prompt,
                    scan.counterfactual, scan.declared)
    factual = [b for b in scan.blocks if not b.aug]
    aug = [b for b in scan.blocks if b.aug]
    answer.graph_span = scan.variables_at  # where the edges were expected, if none come
    chosen = _choose(factual, "graph", bag, source)
    if chosen is not None:
        answer.edges = chosen.edges
        answer.graph_span = chosen.edges[0].span if chosen.edges else None
        answer.graph_name = f"the graph at line {chosen.first_line}"
    chosen_aug = _choose(aug, "counterfactual graph", bag, source)
    if chosen_aug is not None:
        answer.aug = chosen_aug.edges
        answer.aug_name = f"the counterfactual graph at line {chosen_aug.first_line}"
    answer.diagnostics = bag.items
    return answer


def _choose(blocks: list[_Block], what: str, bag: DiagnosticBag, source: SourceFile
            ) -> _Block | None:
    """The last complete block; an incomplete one only when there is nothing else (its broken
    edges are then syntax errors)."""
    if not blocks:
        return None
    complete = [b for b in blocks if b.complete]
    if not complete:
        last = blocks[-1]
        for span, message in last.broken:
            bag.report("syntax-error", span, f"broken edge: {message}", label="here",
                       help="the answer may have been cut off; write each edge as `A -> B`")
        return last
    chosen = complete[-1]
    if len(blocks) > 1:
        notes = []
        same = {tuple(sorted(e.pair for e in chosen.edges))}
        for b in blocks:
            if b is chosen:
                continue
            state = "incomplete (an arrow without a variable), ignored" if not b.complete \
                else "the same edges" if tuple(sorted(e.pair for e in b.edges)) in same \
                else "ignored"
            notes.append(f"the {what} at line {b.first_line} ({len(b.edges)} edges): {state}")
        first = chosen.edges[0].span
        bag.report(
            GRAPH_CHOICE, first,
            f"the answer states its {what} {len(blocks)} times; the last complete one, at line "
            f"{chosen.first_line}, is used", label=f"the {what} used",
            labels=[Label(b.edges[0].span, "not used") for b in blocks
                    if b is not chosen and b.edges],
            notes=notes, severity=Severity.NOTE,
            help="keep one graph in the answer to make the choice explicit",
        )
    return chosen
