"""Diagnostic records. Checks create them; reporters (`report.py`) render them. Nothing here
prints."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from cfspec.diagnostics.codes import BY_NAME, Code, Severity
from cfspec.diagnostics.source import SourceFile, Span


@dataclass(frozen=True, slots=True)
class Label:
    """A secondary span with a short message, drawn under the source like rustc's labels."""

    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the text under `span` with `text` (an empty span inserts, empty text deletes)."""

    span: Span
    text: str


class Applicability(enum.Enum):
    """As ruff's: a safe fix keeps what the author meant (`--fix` applies it); an unsafe one
    is a guess among several right answers (only `--unsafe-fixes`, or an editor's quick fix)."""

    SAFE = "safe"
    UNSAFE = "unsafe"


@dataclass(frozen=True, slots=True)
class Fix:
    """A mechanical fix a check knows for its diagnostic: edits to the diagnostic's own file,
    never overlapping."""

    title: str
    edits: tuple[Edit, ...]
    applicability: Applicability = Applicability.SAFE

    @property
    def safe(self) -> bool:
        return self.applicability is Applicability.SAFE

    def to_json(self) -> dict[str, object]:
        return {
            "title": self.title,
            "applicability": self.applicability.value,
            "edits": [
                {"line": e.span.line, "column": e.span.column, "end_line": e.span.end_line,
                 "end_column": e.span.end_column, "text": e.text}
                for e in self.edits
            ],
        }


@dataclass(frozen=True)
class Diagnostic:
    code: Code
    message: str
    source: SourceFile
    span: Span
    label: str = ""  # the message drawn under the primary span
    labels: tuple[Label, ...] = ()
    notes: tuple[str, ...] = ()
    help: str | None = None
    severity: Severity | None = None  # None: the code's default
    fix: Fix | None = None

    @property
    def level(self) -> Severity:
        return self.severity or self.code.severity

    @property
    def file(self) -> str:
        return self.source.name

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.source.name, self.span.line, self.span.column, self.code.code)

    def with_severity(self, severity: Severity) -> Diagnostic:
        return replace(self, severity=severity)

    def to_json(self) -> dict[str, object]:
        """The contract's JSON shape."""
        return {
            "code": self.code.code,
            "name": self.code.name,
            "severity": self.level.value,
            "message": self.message,
            "file": self.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "labels": [
                {
                    "message": lb.message,
                    "line": lb.span.line,
                    "column": lb.span.column,
                    "end_line": lb.span.end_line,
                    "end_column": lb.span.end_column,
                }
                for lb in self.labels
            ],
            "notes": list(self.notes),
            "help": self.help,
            **({"fix": self.fix.to_json()} if self.fix is not None else {}),
        }


@dataclass
class DiagnosticBag:
    """Collects diagnostics for one source file. Checks call `report(...)`."""

    source: SourceFile
    items: list[Diagnostic] = field(default_factory=list)

    def report(
        self,
        name: str,
        span: Span,
        message: str,
        *,
        label: str = "",
        labels: Sequence[Label] = (),
        notes: Sequence[str] = (),
        help: str | None = None,
        severity: Severity | None = None,
        fix: Fix | None = None,
    ) -> Diagnostic:
        diagnostic = Diagnostic(
            code=BY_NAME[name],
            message=message,
            source=self.source,
            span=span,
            label=label,
            labels=tuple(labels),
            notes=tuple(notes),
            help=help,
            severity=severity,
            fix=fix,
        )
        self.items.append(diagnostic)
        return diagnostic


class Reporter(Protocol):
    """What a check reports through: `DiagnosticBag.report`, `Context.report`, or an
    importer's reporter that moves positions into the LLM's own text."""

    def __call__(
        self,
        name: str,
        span: Span,
        message: str,
        *,
        label: str = ...,
        labels: Sequence[Label] = ...,
        notes: Sequence[str] = ...,
        help: str | None = ...,
        severity: Severity | None = ...,
        fix: Fix | None = ...,
    ) -> object: ...


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.level is Severity.ERROR for d in diagnostics)


def report_bug(bag: DiagnosticBag, span: Span, message: str, *, label: str, left: str,
               meanwhile: str) -> Diagnostic:
    """The one `internal-error`: a failure of cfspec's, never of the input, said the same way
    by whichever stage it happens in: what failed (`message`), what was `left` as it was, and
    how to report it (`meanwhile`: what still works until it is fixed)."""
    return bag.report("internal-error", span, message, label=label, notes=[left],
                      help="this is a bug in cfspec, not in your file; please report it with "
                           f"this file attached ({meanwhile})")
