"""Applying the fixes attached to diagnostics to their file's text (`cfspec lint --fix`)."""

from __future__ import annotations

from collections.abc import Iterable

from cfspec.diagnostics.records import Diagnostic, Fix


def applicable(diagnostics: Iterable[Diagnostic], unsafe: bool) -> list[Fix]:
    """The fixes to apply: the safe ones, and the unsafe ones too when `unsafe`."""
    return [d.fix for d in diagnostics
            if d.fix is not None and d.fix.edits and (unsafe or d.fix.safe)]


def apply_fixes(text: str, fixes: Iterable[Fix]) -> tuple[str, int]:
    """`text` with the fixes applied, and how many were. A fix is applied whole or not at all:
    one whose edits touch text an earlier fix changes waits for the next pass (the caller
    lints again), as do repeats of a fix already taken."""
    taken: list[tuple[int, int]] = []
    chosen = []
    seen = set()
    for fix in sorted(fixes, key=lambda f: min(e.span.start for e in f.edits)):
        key = tuple((e.span.start, e.span.end, e.text) for e in fix.edits)
        if key in seen:
            continue
        ranges = [(e.span.start, e.span.end) for e in fix.edits]
        if any(_overlap(r, t) for r in ranges for t in taken):
            continue
        seen.add(key)
        taken += ranges
        chosen.append(fix)
    edits = sorted((e for f in chosen for e in f.edits), key=lambda e: e.span.start,
                   reverse=True)
    for e in edits:  # from the end, so earlier offsets stay valid
        text = text[: e.span.start] + e.text + text[e.span.end :]
    return text, len(chosen)


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    # Two insertions at one point, or an insertion inside a replaced range, also conflict:
    # their order would be a guess.
    return a[0] < b[1] and b[0] < a[1] or a[0] == b[0] or (
        a[0] == a[1] and b[0] <= a[0] <= b[1]) or (b[0] == b[1] and a[0] <= b[0] <= a[1])
