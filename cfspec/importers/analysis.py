"""Judging one answer, whatever its shape: a pair (`pair.py`, by the passes of `passes/`) or a
caption set (`sets.py`). Every diagnostic points into the input (the LLM's own text)."""

from __future__ import annotations

from cfspec.importers.answer import Answer, ImportedItem, ImportOptions
from cfspec.importers.pair import judge_pair
from cfspec.importers.sets import judge_set


def analyze(answer: Answer, options: ImportOptions) -> ImportedItem:
    """Judge one answer and write its .scm text (not the file)."""
    if answer.outputs is not None:
        return judge_set(answer, options)
    return judge_pair(answer, options)
