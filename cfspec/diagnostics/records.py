"""Diagnostic records. Checks create them; reporters (`report.py`) render them. Nothing here
prints."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from cfspec.diagnostics.codes import BY_NAME, Code, Severity
from cfspec.diagnostics.source import SourceFile, Span


@dataclass(frozen=True, slots=True)
class Label:
    """A secondary span with a short message, drawn under the source like rustc's labels."""

    span: Span
    message: str


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
        labels: tuple[Label, ...] | list[Label] = (),
        notes: tuple[str, ...] | list[str] = (),
        help: str | None = None,
        severity: Severity | None = None,
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
        )
        self.items.append(diagnostic)
        return diagnostic


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.level is Severity.ERROR for d in diagnostics)
