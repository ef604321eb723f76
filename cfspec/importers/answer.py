"""The records every importer fills in, whatever the input's shape: an `Answer` (prompts,
variables, edges, each with its position in the input file) and what comes out of judging it,
an `ImportedItem` (the .scm text, its diagnostics, the intervention it found)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cfspec.diagnostics.codes import BY_NAME, Severity
from cfspec.diagnostics.records import Diagnostic
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.importers.edges import RawEdge
from cfspec.importers.jsonpos import JStr
from cfspec.importers.photos import PhotoFolder, PhotoLine, photo_line
from cfspec.lang.config import Config
from cfspec.lang.tokens import ClipTokenizer

# coco-cf: caption pairs in JSON or JSON Lines, in any known dataset's columns; csv, tsv and
# parquet: caption pairs in those files (`tables.py`).
SHAPES = ("llm-json", "llm-text", "coco-cf", "csv", "tsv", "parquet")

# The note that says which of several graphs in a free-text answer was used. It wants a code of
# its own (`multiple-graphs`, a note); until the registry has one, `duplicate-setting` at note
# severity says the same thing: the graph is given more than once.
GRAPH_CHOICE = "multiple-graphs" if "multiple-graphs" in BY_NAME else "duplicate-setting"


@dataclass(frozen=True, slots=True)
class Piece:
    """Text taken from the input, and where each of its characters came from (JSON escapes
    move them). Text that is not in the file (`--prompt`) points at `fallback`."""

    text: str
    start: int = 0
    index: tuple[int, ...] | None = None
    end: int = 0
    fallback: Span | None = None

    @classmethod
    def of_string(cls, s: JStr) -> Piece:
        return cls(s.value, s.start + 1, s.offsets, s.end - 1)

    @classmethod
    def at(cls, text: str, offset: int) -> Piece:
        return cls(text, offset, None, offset + len(text))

    def offset(self, i: int) -> int:
        """The input offset of `text[i]`; `offset(len(text))` is where the text ends."""
        if self.index is None:
            return self.start + max(0, min(i, len(self.text)))
        if 0 <= i < len(self.index):
            return self.index[i]
        return self.end if i >= len(self.text) else self.start

    def span(self, source: SourceFile, i: int = 0, j: int | None = None) -> Span:
        if self.fallback is not None:
            return self.fallback
        j = len(self.text) if j is None else j
        return source.span(self.offset(i), self.offset(max(i, j)))


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    description: str | None
    span: Span  # from the source's name to the target's
    source_span: Span
    target_span: Span
    arrow: str
    kind: str  # see edges.ARROW: plain, latex, back, both, sloppy

    @property
    def pair(self) -> tuple[str, str]:
        return self.source, self.target

    def show(self) -> str:
        return f"{self.source} -> {self.target}"


@dataclass(frozen=True)
class Declared:
    """A variable the answer declares (a `Variables:` entry), or one found by the importer."""

    name: str
    label: str | None
    description: str | None
    span: Span


@dataclass(frozen=True)
class Output:
    """One counterfactual caption of a caption set (`output_3`): its key, and its text."""

    key: str
    piece: Piece


@dataclass
class Answer:
    source: SourceFile
    shape: str
    number: int  # 1-based position among the file's items
    raw_id: str | None
    span: Span  # the whole item
    prompt: Piece | None = None
    counterfactual: Piece | None = None
    declared: list[Declared] | None = None  # None: the variables are the edges' nodes
    declared_in: str = "the `Variables:` list"  # where `declared` came from, for messages
    edges: list[Edge] = field(default_factory=list)
    aug: list[Edge] | None = None  # the counterfactual graph, when the answer states one
    graph_span: Span | None = None  # where the factual graph is (for `empty-graph`)
    graph_name: str = "SCM"
    aug_name: str = "SCM_aug"
    needs_graph: bool = True  # an LLM answer must have edges; a caption pair has none
    slots: dict[str, tuple[int, int]] | None = None  # preset bindings (caption pairs)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # found while reading
    notes: list[str] = field(default_factory=list)  # for the .scm header
    silent: set[str] = field(default_factory=set)  # names the reader already reported
    item_id: str = ""  # path-safe; assigned by import_file
    # A caption set (one caption, many counterfactual captions): each becomes a counterfactual
    # of one spec (`sets.py`); `counterfactual` is then unused.
    outputs: list[Output] | None = None
    do_comment: str | None = None  # said at the end of the do() line (`swap of ...`)
    file_name: str | None = None  # the row's image file name (SugarCrepe's `filename`)


def answer_photo(answer: Answer, options: ImportOptions) -> PhotoLine:
    """What the spec written for `answer` says of its photo (importers.photos). Caption pairs
    only: an LLM's answer names no photo."""
    if answer.shape != "coco-cf":
        return PhotoLine()
    return photo_line(answer.raw_id, answer.file_name, options.images)


@dataclass
class Failure:
    """An item (or a whole file) that could not be read: only its diagnostics."""

    source: SourceFile
    number: int
    span: Span
    diagnostics: list[Diagnostic]
    raw_id: str | None = None


@dataclass(frozen=True)
class Columns:
    """`--columns ID,FACTUAL,COUNTERFACTUAL`: which columns of a caption-pair table hold the
    id and the captions. The id is optional (`FACTUAL,COUNTERFACTUAL`, or an empty first
    name): rows are then named after the file and their line. Several counterfactual columns
    make each row a caption set, one counterfactual per column."""

    id: str | None
    factual: str
    counterfactuals: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Columns:
        """ValueError with the reason when `text` names no factual and counterfactual column."""
        names = [n.strip() for n in text.split(",")]
        if len(names) < 2:
            raise ValueError(f"--columns {text!r}: give ID,FACTUAL,COUNTERFACTUAL (or "
                             "FACTUAL,COUNTERFACTUAL without an id column)")
        ident, rest = (None, names) if len(names) == 2 else (names[0] or None, names[1:])
        if not all(rest):
            raise ValueError(f"--columns {text!r}: an empty caption column name")
        return cls(ident, rest[0], tuple(rest[1:]))


@dataclass(frozen=True)
class ImportOptions:
    fix: bool = False
    prompt: str | None = None
    counterfactual_prompt: str | None = None
    config: Config = field(default_factory=Config)
    tokenizer: ClipTokenizer | None = None
    columns: Columns | None = None  # caption pairs: where the id and captions are
    images: PhotoFolder | None = None  # --images DIR: where the rows' photos are looked for


@dataclass
class ImportedItem:
    source: SourceFile
    shape: str
    item_id: str
    span: Span
    scm: str | None  # None: nothing could be read for this item
    diagnostics: list[Diagnostic]  # pointing into the input file
    relint: list[Diagnostic] = field(default_factory=list)  # `cfspec lint` of the .scm
    interventions: dict[str, str | None] = field(default_factory=dict)
    sets: dict[str, str | None] = field(default_factory=dict)
    counterfactual: str | None = None
    edit: str | None = None
    fixes: list[str] = field(default_factory=list)
    path: Path | None = None  # where the .scm was written
    # Every counterfactual written, by name (a set's member name when the row was written as a
    # set, in the outputs' order): its do() assignments (a caption set has many;
    # `counterfactual` and `interventions` above are the first of them).
    written: dict[str, dict[str, str | None]] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        """The names of its errors, each once, in code order."""
        found = {d.code.code: d.code.name for d in self.diagnostics
                 if d.level is Severity.ERROR}
        return [found[c] for c in sorted(found)]

    @property
    def verdict(self) -> str:
        """`clean` (no errors; warnings allowed) or its error names."""
        return ", ".join(self.errors) or "clean"


def edge_from(raw: RawEdge, piece: Piece, source: SourceFile) -> Edge:
    """An edge found in `piece` (a line, a JSON string), with positions in the input."""
    return Edge(
        raw.source, raw.target, raw.description,
        piece.span(source, raw.start, raw.end),
        piece.span(source, *raw.source_at), piece.span(source, *raw.target_at),
        raw.arrow, raw.kind,
    )
