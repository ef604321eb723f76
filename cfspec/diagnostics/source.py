"""Source files and spans: where every node and diagnostic points.

Lines and columns are 1-based; `end_column` is exclusive (the column just after the span), as
lark reports it. Offsets index into `SourceFile.text`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Span:
    line: int
    column: int
    end_line: int
    end_column: int
    start: int  # offset of the first character
    end: int  # offset just past the last character

    def to(self, other: Span) -> Span:
        """The span from the start of `self` to the end of `other`."""
        return Span(self.line, self.column, other.end_line, other.end_column, self.start, other.end)


@dataclass(frozen=True)
class SourceFile:
    """A file's name and text. `name` is what diagnostics print (`-` or `<stdin>` for stdin)."""

    name: str
    text: str
    _line_starts: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        i = find("\n")
        while i != -1:
            starts.append(i + 1)
            i = find("\n", i + 1)
        object.__setattr__(self, "_line_starts", starts)

    @classmethod
    def read(cls, path: Path, display: str | None = None) -> SourceFile:
        """Read UTF-8 text; raises UnicodeDecodeError/OSError for the caller to report."""
        return cls(display or str(path), path.read_bytes().decode("utf-8"))

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        if line < 1 or line > len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self._line_starts[line] - 1 if line < len(self._line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def line_bounds(self, line: int) -> tuple[int, int]:
        """Offsets [start, end) of a 1-based line, without its newline (as `line_text`), so a
        caller can take a piece of a long line without copying all of it."""
        if line < 1 or line > len(self._line_starts):
            return len(self.text), len(self.text)
        start = self._line_starts[line - 1]
        end = self._line_starts[line] - 1 if line < len(self._line_starts) else len(self.text)
        while end > start and self.text[end - 1] == "\r":
            end -= 1
        return start, end

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of an offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def span(self, start: int, end: int) -> Span:
        """The span covering offsets [start, end)."""
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(line, column, end_line, end_column, start, end)

    def line_span(self, line: int) -> Span:
        """The span of a whole 1-based line, without its newline."""
        start = self._line_starts[line - 1]
        return self.span(start, start + len(self.line_text(line)))

    def whole(self) -> Span:
        return self.span(0, min(len(self.text), 1))
