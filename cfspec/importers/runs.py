"""The runs of changed words between a caption and its counterfactual, as factual token ranges:
what a caption pair's variables bind to (`coco_cf`) and which words a caption set's outputs
change (`sets`)."""

from __future__ import annotations

from collections.abc import Sequence

from cfspec.importers.binding import Token
from cfspec.importers.changes import is_artefact
from cfspec.lang.words import Opcode, is_punctuation


def trim(toks: Sequence[Token], i: int, j: int) -> tuple[int, int]:
    """`[i, j)` without the punctuation at its ends."""
    while i < j and is_punctuation(toks[i].text):
        i += 1
    while j > i and is_punctuation(toks[j - 1].text):
        j -= 1
    return i, j


def changed_runs(t0: Sequence[Token], t1: Sequence[Token], ops: Sequence[Opcode]
                 ) -> list[tuple[int, int]]:
    """The factual token range each changed run binds to (`coco_cf`'s docstring says how),
    from the caption's and the counterfactual's tokens and their alignment (`opcodes`).
    Changes in writing only (`They'll` -> `They 'll`) are caption artefacts, not runs."""
    runs: list[tuple[int, int]] = []
    for op in ops:
        tag, a0, a1, b0, b1 = op
        if tag == "equal" or is_artefact(op, t0, t1):
            continue
        i, j = trim(t0, a0, a1)
        if i < j:
            runs.append((i, j))
            continue
        # Inserted, or in place of nothing but punctuation (`mountain..` -> `mountain goats`).
        if all(is_punctuation(t.text) for t in t1[b0:b1]):
            continue
        at = word_beside(t0, a0)
        if at is not None and not any(i <= at < j for i, j in runs):
            runs.append((at, at + 1))
    return runs


def word_beside(t0: Sequence[Token], a0: int) -> int | None:
    """The word an insertion before token `a0` goes with: the word after it (an adjective
    before its noun), else the one before; None when both are punctuation or missing."""
    if a0 < len(t0) and not is_punctuation(t0[a0].text):
        return a0
    if a0 > 0 and not is_punctuation(t0[a0 - 1].text):
        return a0 - 1
    return None
