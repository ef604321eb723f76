"""The syntax tree of a .scm file: frozen nodes, each with the span it came from. No logic here
beyond small accessors; meaning is given by `model.py` and judged by `checks/`. A counterfactual
set (`counterfactuals NAME { ... }`) stays one node here; `set_expansion.py` expands it into
`Counterfactual` members (with `origin` set), which only the model holds."""

from __future__ import annotations

from dataclasses import dataclass

from cfspec.diagnostics.source import Span


@dataclass(frozen=True, slots=True)
class Name:
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Text:
    """A string literal. `value` is unescaped; `offsets[i]` is the column offset (from the
    opening quote) of `value[i]` in the source, so positions inside strings stay exact."""

    value: str
    span: Span
    offsets: tuple[int, ...] | None = None  # None: no escapes, value[i] sits at column + 1 + i

    def sub_span(self, start: int, end: int) -> Span:
        """The source span of `value[start:end]` (strings never span lines)."""

        def column_offset(i: int) -> int:
            if self.offsets is None:
                return 1 + i
            if i >= len(self.offsets):
                return self.offsets[-1] + 1 if self.offsets else 1
            return self.offsets[i]

        a, b = column_offset(start), column_offset(end) if end > start else column_offset(start)
        s = self.span
        return Span(s.line, s.column + a, s.line, s.column + b, s.start + a, s.start + b)


@dataclass(frozen=True, slots=True)
class NoneValue:
    """`none` as an intervention value: the thing is removed from the scene."""

    span: Span


Value = Text | NoneValue


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    raw: str
    span: Span


@dataclass(frozen=True, slots=True)
class IdDecl:
    value: Text
    span: Span


@dataclass(frozen=True, slots=True)
class PromptDecl:
    value: Text
    span: Span


@dataclass(frozen=True, slots=True)
class ImageDecl:
    """`image "000000158956.jpg"`: the factual photo, as written (resolved by
    `workspace.photos.resolve`)."""

    value: Text
    span: Span


@dataclass(frozen=True, slots=True)
class Variable:
    name: Name
    words: Text | NoneValue  # NoneValue: absent from the factual caption (`var P = none`)
    kind: Name | None
    description: Text | None
    span: Span
    # `ask "Is there a man in a suit?"`: the spec's own question for it (cfspec.questions)
    ask: Text | None = None

    @property
    def value(self) -> str | None:
        """Its factual words; None when the factual caption does not show it (`none`)."""
        return None if isinstance(self.words, NoneValue) else self.words.value


@dataclass(frozen=True, slots=True)
class Edge:
    source: Name
    target: Name
    arrow: str  # as written: "->" or "→"
    description: Text | None
    span: Span


@dataclass(frozen=True, slots=True)
class Assignment:
    target: Name
    value: Value
    span: Span


@dataclass(frozen=True, slots=True)
class Do:
    assignments: tuple[Assignment, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class SetWords:
    assignment: Assignment
    span: Span


@dataclass(frozen=True, slots=True)
class Steps:
    """A fraction of the denoising schedule (`0.8`) or a window (`[0.1, 0.8]`)."""

    start: Number
    end: Number | None
    span: Span


@dataclass(frozen=True, slots=True)
class Uniform:
    """`uniform(0.1, 0.9)`: a window [0, x] with x drawn from U(low, high) per (pair, seed)."""

    low: Number
    high: Number
    span: Span


Schedule = Steps | Uniform


@dataclass(frozen=True, slots=True)
class CrossReplace:
    word: Text | None  # None: the whole prompt
    steps: Schedule
    span: Span


@dataclass(frozen=True, slots=True)
class SelfReplace:
    steps: Schedule
    span: Span


@dataclass(frozen=True, slots=True)
class Blend:
    words_0: tuple[Text, ...]
    words_1: tuple[Text, ...] | None  # None: the same words in both prompts
    span: Span


@dataclass(frozen=True, slots=True)
class Threshold:
    value: Number
    span: Span


@dataclass(frozen=True, slots=True)
class BlendStart:
    """`blend_start 0.2`: the fraction of the schedule before which LocalBlend does not blend."""

    value: Number
    span: Span


@dataclass(frozen=True, slots=True)
class Reweight:
    word: Text
    weight: Number
    span: Span


EditItem = CrossReplace | SelfReplace | Blend | Threshold | BlendStart | Reweight


@dataclass(frozen=True, slots=True)
class Edit:
    type: Name | None  # replace | refine | reweight; None: chosen by the compiler
    items: tuple[EditItem, ...]
    span: Span


CfItem = Do | SetWords | PromptDecl | Edit


class _Block:
    """What a counterfactual and a counterfactual set share: `set` statements, prompts and edit
    blocks among their items (which hold these and their own kinds of `do`)."""

    __slots__ = ()
    items: tuple[CfItem | SetItem, ...]

    @property
    def sets(self) -> tuple[Assignment, ...]:
        return tuple(item.assignment for item in self.items if isinstance(item, SetWords))

    @property
    def prompts(self) -> tuple[PromptDecl, ...]:
        return tuple(item for item in self.items if isinstance(item, PromptDecl))

    @property
    def edits(self) -> tuple[Edit, ...]:
        return tuple(item for item in self.items if isinstance(item, Edit))


@dataclass(frozen=True, slots=True)
class Counterfactual(_Block):
    name: Name
    items: tuple[CfItem, ...]
    span: Span
    # The set this counterfactual is a member of (set_expansion.py made it); None: written as is.
    origin: CounterfactualSet | None = None

    @property
    def interventions(self) -> tuple[Assignment, ...]:
        return tuple(a for item in self.items if isinstance(item, Do) for a in item.assignments)


@dataclass(frozen=True, slots=True)
class Choice:
    """`R in ["White", "Black"]` in a set's do(): one member per value."""

    target: Name
    values: tuple[Value, ...]
    span: Span


GridItem = Assignment | Choice


@dataclass(frozen=True, slots=True)
class Grid:
    """A set's `do(...)`: choices and fixed assignments (a fixed one is a list of one)."""

    items: tuple[GridItem, ...]
    span: Span


SetItem = Grid | SetWords | PromptDecl | Edit


@dataclass(frozen=True, slots=True)
class CounterfactualSet(_Block):
    """`counterfactuals NAME { do(R in [...], G in [...]) ... }`: the other items (set, prompt,
    edit) apply to every member."""

    name: Name
    items: tuple[SetItem, ...]
    span: Span

    @property
    def grid(self) -> tuple[GridItem, ...]:
        return tuple(g for item in self.items if isinstance(item, Grid) for g in item.items)

    @property
    def grids(self) -> tuple[Grid, ...]:
        return tuple(item for item in self.items if isinstance(item, Grid))


# A counterfactual as written: one, or a set of them.
Block = Counterfactual | CounterfactualSet

SpecItem = IdDecl | PromptDecl | ImageDecl | Variable | Edge | Counterfactual | CounterfactualSet


@dataclass(frozen=True, slots=True)
class Spec:
    name: Name
    items: tuple[SpecItem, ...]
    span: Span

    @property
    def ids(self) -> tuple[IdDecl, ...]:
        return tuple(i for i in self.items if isinstance(i, IdDecl))

    @property
    def prompts(self) -> tuple[PromptDecl, ...]:
        return tuple(i for i in self.items if isinstance(i, PromptDecl))

    @property
    def images(self) -> tuple[ImageDecl, ...]:
        return tuple(i for i in self.items if isinstance(i, ImageDecl))

    @property
    def image(self) -> str | None:
        """The factual photo as written (the first; a second is an error), else None."""
        images = self.images
        return images[0].value.value if images else None

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(i for i in self.items if isinstance(i, Variable))

    @property
    def edges(self) -> tuple[Edge, ...]:
        return tuple(i for i in self.items if isinstance(i, Edge))

    @property
    def counterfactuals(self) -> tuple[Counterfactual, ...]:
        """The counterfactuals written one by one; set members are in the model."""
        return tuple(i for i in self.items if isinstance(i, Counterfactual))

    @property
    def counterfactual_sets(self) -> tuple[CounterfactualSet, ...]:
        return tuple(i for i in self.items if isinstance(i, CounterfactualSet))

    @property
    def blocks(self) -> tuple[Block, ...]:
        """Counterfactuals and counterfactual sets as written, in order."""
        return tuple(i for i in self.items if isinstance(i, (Counterfactual, CounterfactualSet)))

    @property
    def spec_id(self) -> str:
        """The declared id, else the spec's name."""
        ids = self.ids
        return ids[0].value.value if ids else self.name.text


@dataclass(frozen=True, slots=True)
class Comment:
    text: str  # including the leading '#'
    span: Span


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed file."""

    specs: tuple[Spec, ...]
    comments: tuple[Comment, ...]
