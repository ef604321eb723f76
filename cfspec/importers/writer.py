"""The .scm an import writes, and `cfspec lint`'s findings on it traced back to the input.

The file is canonical (`cfspec fmt`), starts with the import's problems as `#` comments so the
user can fix it by hand, and keeps the answer's own names. Every variable, edge and the
counterfactual remember where in the input they came from, so a diagnostic that only the linter
finds on the written file (an `a`/`an` that no longer agrees, an unused variable) can still
point into the LLM's text.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from dataclasses import dataclass, field

from cfspec.diagnostics.records import Diagnostic, Label
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.fmt import format_source, quote
from cfspec.importers.photos import PhotoLine
from cfspec.lang.config import Config
from cfspec.lang.tokens import ClipTokenizer
from cfspec.lint import check

INDENT = "  "
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass
class DraftVar:
    name: str
    words: str | None  # None: the factual caption does not show it (`var X = none`)
    latent: bool
    description: str | None
    origin: Span


@dataclass
class DraftEdge:
    source: str
    target: str
    description: str | None
    origin: Span


@dataclass
class DraftCounterfactual:
    name: str
    origin: Span
    do: list[tuple[str, str | None]] = field(default_factory=list)
    sets: list[tuple[str, str | None]] = field(default_factory=list)
    prompt: str | None = None  # the literal counterfactual prompt, when substitution cannot
    edit: str | None = None
    do_comment: str | None = None  # a `#` comment at the end of the do() line


@dataclass
class DraftSet:
    """`counterfactuals NAME { do(V in [...], ...) }`: the members' edit types are the
    compiler's to choose, per pair."""

    name: str
    origin: Span  # the outputs it stands for, first to last
    grid: list[tuple[str, list[str | None]]] = field(default_factory=list)


@dataclass
class Draft:
    name: str
    item_id: str
    origin: Span  # the whole item in the input
    id_origin: Span
    prompt_origin: Span
    template: str | None
    photo: PhotoLine = field(default_factory=PhotoLine)  # `image "..."`, or a comment
    header: list[str] = field(default_factory=list)
    variables: list[DraftVar] = field(default_factory=list)
    edges: list[DraftEdge] = field(default_factory=list)
    counterfactuals: list[DraftCounterfactual] = field(default_factory=list)
    sets: list[DraftSet] = field(default_factory=list)


def comment(text: str) -> str:
    """One `#` line: nothing from the answer may end the comment and become .scm code."""
    return ("# " + _UNSAFE.sub(" ", text)).rstrip()


def _value(value: str | None) -> str:
    return "none" if value is None else quote(value)


def render(draft: Draft) -> str:
    """The .scm text, in the canonical layout: written so, except the grid layout of
    `counterfactuals` sets, which the formatter lays out."""
    lines = [comment(h) if h else "#" for h in draft.header]
    if lines:
        lines.append("")
    lines.append(f"scm {draft.name} {{")
    lines.append(f"{INDENT}id {quote(draft.item_id)}")
    if draft.photo.path is not None:
        lines.append(f"{INDENT}image {quote(draft.photo.path)}")
    elif draft.photo.note is not None:
        lines.append(INDENT + comment(draft.photo.note))
    if draft.template is not None:
        lines.append(f"{INDENT}prompt {quote(draft.template)}")
    if draft.variables:
        lines.append("")
    for v in draft.variables:
        kind = ": latent" if v.latent else ""
        described = f" {quote(v.description)}" if v.description else ""
        lines.append(f"{INDENT}var {v.name}{kind} = {_value(v.words)}{described}")
    if draft.edges:
        lines.append("")
    for e in draft.edges:
        described = f" {quote(e.description)}" if e.description else ""
        lines.append(f"{INDENT}{e.source} -> {e.target}{described}")
    for cf in draft.counterfactuals:
        lines += ["", *_counterfactual_lines(cf)]
    for cs in draft.sets:
        lists = ", ".join(f"{n} in [{', '.join(_value(v) for v in values)}]"
                          for n, values in cs.grid)
        lines += ["", f"{INDENT}counterfactuals {cs.name} {{", f"{INDENT * 2}do({lists})",
                  f"{INDENT}}}"]
    lines.append("}")
    text = "\n".join(lines) + "\n"
    if not draft.sets:
        # Already the canonical layout (tests/test_import_linear.py holds it to `cfspec fmt`):
        # formatting would parse the file twice more, the most of a large graph's import.
        return text
    try:
        formatted, _ = format_source(SourceFile("import.scm", text))
    except (NotImplementedError, RuntimeError):  # the formatter is optional polish here
        formatted = None
    return formatted if formatted is not None else text


def _counterfactual_lines(cf: DraftCounterfactual) -> list[str]:
    assigned = ", ".join(f"{n} = {_value(v)}" for n, v in cf.do)
    if not (cf.sets or cf.prompt is not None or cf.edit or cf.do_comment):
        body = f" do({assigned}) " if cf.do else ""  # as `cfspec fmt` writes it
        return [f"{INDENT}counterfactual {cf.name} {{{body}}}"]
    lines = [f"{INDENT}counterfactual {cf.name} {{"]
    if cf.do:
        tail = f"  {comment(cf.do_comment)}" if cf.do_comment else ""
        lines.append(f"{INDENT * 2}do({assigned}){tail}")
    for target, new in cf.sets:
        lines.append(f"{INDENT * 2}set {target} = {_value(new)}")
    if cf.prompt is not None:
        lines.append(f"{INDENT * 2}prompt {quote(cf.prompt)}")
    if cf.edit:
        lines.append(f"{INDENT * 2}edit {cf.edit} {{}}")
    lines.append(f"{INDENT}}}")
    return lines


def moved(diagnostics: list[Diagnostic], text: str, longer: str, display: str
          ) -> list[Diagnostic]:
    """Diagnostics of `text` as they are in `longer`, the same spec with a longer header: every
    position after the header moves by the lines and characters the header gained."""
    lines = longer.count("\n") - text.count("\n")
    chars = len(longer) - len(text)
    body = re.search(r"^scm ", text, re.M)  # header lines are comments: the body is the rest
    assert body is not None and longer.endswith(text[body.start():])
    source = SourceFile(display, longer)

    def move(span: Span) -> Span:
        return Span(span.line + lines, span.column, span.end_line + lines, span.end_column,
                    span.start + chars, span.end + chars)

    return [dataclasses.replace(d, source=source, span=move(d.span),
                                labels=tuple(Label(move(lb.span), lb.message) for lb in d.labels))
            for d in diagnostics]


def relint(
    draft: Draft,
    text: str,
    display: str,
    source: SourceFile,
    config: Config,
    tokenizer: ClipTokenizer | None,
) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """`cfspec lint` on the written text: its own diagnostics, and the same traced back to the
    input (`source`), where each points at the input's record of the item it is about."""
    parsed = check(SourceFile(display, text), config, tokenizer)
    module = parsed.module
    spec = module.specs[0] if module is not None and module.specs else None

    # Every item of the written spec, by where it starts, paired with where it came from in
    # the input: one sorted table and a binary search per diagnostic, so tracing thousands of
    # diagnostics back stays linear.
    table: list[tuple[int, int, Span]] = []
    if spec is not None:
        pairs: list[tuple[Span, Span]] = [
            *((v.span, dv.origin) for v, dv in zip(spec.variables, draft.variables, strict=False)),
            *((e.span, de.origin) for e, de in zip(spec.edges, draft.edges, strict=False)),
            *((c.span, dc.origin) for c, dc in zip(spec.counterfactuals, draft.counterfactuals,
                                                    strict=False)),
            *((c.span, ds.origin) for c, ds in zip(spec.counterfactual_sets, draft.sets,
                                                    strict=False)),
            *((d.span, draft.prompt_origin) for d in spec.prompts),
            *((d.span, draft.id_origin) for d in spec.ids),
        ]
        table = sorted((written.start, written.end, came) for written, came in pairs)
    starts = [start for start, _, _ in table]

    def origin(span: Span) -> Span:
        at = bisect.bisect_right(starts, span.start) - 1
        if at >= 0 and table[at][0] <= span.start < table[at][1]:
            return table[at][2]
        return draft.origin

    mapped = []
    for d in parsed.diagnostics:
        labels = tuple(Label(origin(lb.span), lb.message) for lb in d.labels)
        note = "found by `cfspec lint` on the written .scm" if module is not None else \
            "internal error: the written .scm does not parse; please report it"
        mapped.append(Diagnostic(
            code=d.code, message=d.message, source=source, span=origin(d.span), label=d.label,
            labels=labels, notes=(*d.notes, note), help=d.help, severity=d.severity,
        ))
    return parsed.diagnostics, mapped

