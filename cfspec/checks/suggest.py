"""Suggestions and fixes the checks attach to their diagnostics: the closest declared name for
a misspelt one, and the edits that delete an edge or declare a variable. A leaf module: the
check families import it, and it imports none of them."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from cfspec.diagnostics.records import Applicability, Edit, Fix
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.lang import ast

# Suggestions compare a name with every candidate; past this many candidates a spec is
# machine-written and a hint is worth less than linear time.
_MAX_SUGGESTION_CANDIDATES = 200


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    close = suggestion(name, candidates)
    return f"did you mean `{close}`?" if close else None


def suggestion(name: str, candidates: Iterable[str]) -> str | None:
    """The declared name `name` most likely misspells, or None (also past the candidate
    limit)."""
    pool = list(candidates)
    if len(pool) > _MAX_SUGGESTION_CANDIDATES:
        return None
    return closest_name(name, pool)


def closest_name(name: str, pool: list[str]) -> str | None:
    """The candidate `name` is most likely a misspelling of: the same name in another case
    (`h` for `H`), else the closest by difflib's ratio."""
    same = [c for c in pool if c.lower() == name.lower() and c != name]
    if same:
        return same[0]
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return close[0] if close else None


def rename_fix(span: Span, name: str, meant: str) -> Fix:
    """Change a misspelt name to the declared one. Safe only when they differ in case: a
    name in another case cannot be anything else, a merely close one may be."""
    safe = name.lower() == meant.lower()
    return Fix(f"Change to `{meant}`", (Edit(span, meant),),
               Applicability.SAFE if safe else Applicability.UNSAFE)


def declare_fix(source: SourceFile, spec: ast.Spec, name: str) -> Fix:
    """Declare `name` after the spec's last variable (or prompt, or id), its words guessed
    from the name: unsafe, the words are the author's to choose."""
    anchors = spec.variables or spec.prompts or spec.ids
    if anchors:
        at = source.line_span(anchors[-1].span.end_line).end
        indent = re.match(r"\s*", source.line_text(anchors[-1].span.line))
        prefix = indent.group() if indent else "  "
    else:  # after `scm Name {`
        brace = source.text.find("{", spec.name.span.end)
        at = brace + 1 if brace != -1 else spec.name.span.end
        prefix = "  "
    word = name.lower().replace("_", " ")
    return Fix(f"Declare variable `{name}`",
               (Edit(source.span(at, at), f'\n{prefix}var {name} = "{word}"'),),
               Applicability.UNSAFE)


def delete_edit(source: SourceFile, span: Span) -> Edit:
    """Delete a span; the whole line when nothing but a comment is left on it (the comment
    was about what is deleted)."""
    line = source.line_span(span.line)
    rest = source.text[line.start : span.start] + source.text[span.end : line.end]
    if span.line == span.end_line and not rest.split("#", 1)[0].strip():
        end = min(line.end + 1, len(source.text))
        return Edit(source.span(line.start, end), "")
    return Edit(span, "")
