"""`cfspec questions` output: each counterfactual's questions as text a user reads and corrects,
or as JSON (docs/commands/questions.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cfspec.questions.record import Question

ABSENT = "(absent)"  # the variable is not in that world (`none`): nothing is asked there


@dataclass(frozen=True)
class Asked:
    """The questions of one counterfactual of one spec."""

    file: str
    spec_name: str
    id: str  # the pair id compile gives it (`<spec id>__<counterfactual>`)
    counterfactual: str
    prompt_0: str
    prompt_1: str
    questions: tuple[Question, ...]

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "spec_name": self.spec_name, "id": self.id,
                "counterfactual": self.counterfactual, "prompt_0": self.prompt_0,
                "prompt_1": self.prompt_1, "questions": [q.to_json() for q in self.questions]}


def line(question: Question) -> str:
    """`q2 A action [may-change, after q1]: Is the woman cutting? -> Is the man cutting?`; one
    question when both worlds ask the same."""
    tags = ", ".join([question.expect, *(["after " + " ".join(question.parents)]
                                         if question.parents else [])])
    factual, counterfactual = question.factual or ABSENT, question.counterfactual or ABSENT
    asked = factual if factual == counterfactual else f"{factual} -> {counterfactual}"
    return f"{question.id} {question.variable} {question.kind} [{tags}]: {asked}"


def render_text(entries: Sequence[Asked]) -> str:
    blocks = []
    for entry in entries:
        lines = [f"{entry.file}: {entry.spec_name} / {entry.counterfactual}",
                 f"  factual:        {_one_line(entry.prompt_0)}",
                 f"  counterfactual: {_one_line(entry.prompt_1)}"]
        lines += [f"  {line(q)}" for q in entry.questions] or ["  (no variable is in a prompt)"]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _one_line(text: str) -> str:
    return " ".join(text.split())
