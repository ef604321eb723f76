"""Placeholder until the formatter lands."""
from __future__ import annotations

from cfspec.diagnostics import Diagnostic
from cfspec.source import SourceFile


def format_source(source: SourceFile) -> tuple[str | None, list[Diagnostic]]:
    raise NotImplementedError
