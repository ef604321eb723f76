"""The report's question table of a pair: the spec's yes/no questions (cfspec.questions) with
what a VQA model answered on both images of the shown seed (OUT/answers.jsonl, written by
`evaluate --vqa-model`), each row coloured by what the causal graph expects of it, and how it
came out for the question metrics (cfspec.workspace.question_metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfspec.workspace.answers import Answer, says_yes
from cfspec.workspace.pairs import Pair
from cfspec.workspace.question_metrics import outcomes

# expect -> (what the table says, the row's CSS class)
EXPECT_VIEW = {
    "change": ("must change", "q-change"),
    "follow": ("must change (set)", "q-change"),
    "may-change": ("may change", "q-may"),
    "hold": ("must hold", "q-hold"),
}
_OUTCOME_TEXT = {"pass": "as expected", "fail": "NOT as expected",
                 "skipped": "skipped: a parent question did not hold",
                 "unasked": "not asked on that image"}


def question_rows(pair: Pair, answers: Mapping[str, Answer]) -> list[dict[str, Any]]:
    """One row per question of the pair: its wordings, what the graph expects, P(yes) of each
    wording on image 0 and image 1 (None: not asked), and its outcome per metric."""
    results = outcomes([answers[q.id] for q in pair.questions if q.id in answers])
    rows = []
    for question in pair.questions:
        answer = answers.get(question.id)
        label, css = EXPECT_VIEW[question.expect]
        cells = []
        for world in (0, 1):
            for image in (0, 1):
                p = None if answer is None else answer.p_yes(world, image)
                cells.append({"text": "" if p is None else f"{p:.2f}", "yes": bool(says_yes(p))})
        rows.append({
            "id": question.id,
            "variable": question.variable,
            "factual": question.factual,
            "counterfactual": question.counterfactual,
            "expect": label,
            "css": css,
            "answered": answer is not None,
            "cells": cells,
            "outcomes": [f"{name}: {_OUTCOME_TEXT[outcome]}"
                         for name, outcome in results.get(question.id, [])],
            "failed": any(o == "fail" for _, o in results.get(question.id, [])),
        })
    return rows
