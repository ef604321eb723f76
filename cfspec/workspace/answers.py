"""The spec's yes/no questions about a pair and a VQA model's answers to them: what `cfspec
evaluate --vqa-model` asks, writes to OUT/answers.jsonl and scores (cfspec.workspace.
question_metrics), and what export and the report read back. Standard library only.

A question (`cfspec.questions.record.Question`, pairs.jsonl's `questions`, written by
compile) is about one variable of the spec: its wording in the factual world (`factual`) and in
the counterfactual one (`counterfactual`), None where the variable is absent in that world; the
questions it presupposes (`parents`, DSG); and what the causal graph expects of it (`expect`).

An answer is P(yes) (cfspec.gpu.evaluate.vqa) for each wording on each image: image 0 is the
factual image, image 1 the counterfactual one. Every wording is asked of both images, so the
report can show what each image says to each question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfspec.questions.record import EXPECTS, KINDS, Question
from cfspec.workspace.layout import ANSWERS_FILE
from cfspec.workspace.reading import LineReport, json_lines, read_text

if TYPE_CHECKING:
    from cfspec.diagnostics.records import Diagnostic
    from cfspec.workspace.pairs import Pair

WORLDS = ("factual", "counterfactual")  # the wordings; image 0 is the factual world's


def question_from_line(data: Mapping[str, Any]) -> Question:
    """The question of an answers.jsonl line (its id under `question`), checked as
    pair.schema.json checks a pairs.jsonl question; ValueError says what is wrong."""
    ident = data.get("question")
    for key, value in (("question", ident), ("variable", data.get("variable"))):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key}: expected a string, got {value!r}")
    if data.get("kind") not in KINDS:
        raise ValueError(f"kind {data.get('kind')!r} is not one of {', '.join(KINDS)}")
    wordings = [data.get(world) for world in WORLDS]
    if any(w is not None and not isinstance(w, str) for w in wordings):
        raise ValueError("factual and counterfactual are strings or null")
    if all(w is None for w in wordings):
        raise ValueError(f"question {ident}: no wording in either world")
    parents = data.get("parents", [])
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ValueError(f"question {ident}: parents must be a list of question ids")
    if data.get("expect") not in EXPECTS:
        raise ValueError(f"question {ident}: expect {data.get('expect')!r} is not one of "
                         f"{', '.join(EXPECTS)}")
    return Question.from_json({**data, "id": ident})


@dataclass(frozen=True)
class Answer:
    """A question's P(yes) on both images of one (pair, seed), per wording: `factual[i]` is the
    factual wording's P(yes) on image i (None: the wording is null)."""

    question: Question
    factual: tuple[float, float] | None
    counterfactual: tuple[float, float] | None

    def p_yes(self, world: int, image: int) -> float | None:
        """P(yes) of the question worded for `world`, asked of image `image`."""
        asked = self.counterfactual if world else self.factual
        return None if asked is None else asked[image]


# Yes where P(yes) (normalised against no) is at least this: the model prefers yes to no.
YES = 0.5


def says_yes(p_yes: float | None) -> bool | None:
    return None if p_yes is None else p_yes >= YES


def answers_json(pair_id: str, seed: int, answers: Sequence[Answer],
                 vqa_model: str) -> list[dict[str, Any]]:
    """answers.jsonl's lines for one (pair, seed): one per question, its fields, then
    `p_yes`: each wording's P(yes) on [image 0, image 1], null for a null wording."""
    return [{"id": pair_id, "seed": seed, "question": a.question.id,
             **{k: v for k, v in a.question.to_json().items() if k != "id"},
             "p_yes": {"factual": None if a.factual is None else list(a.factual),
                       "counterfactual": None if a.counterfactual is None
                       else list(a.counterfactual)},
             "vqa_model": vqa_model} for a in answers]


def answer_from_json(data: Mapping[str, Any]) -> Answer:
    """An answers.jsonl line back (ValueError says what is wrong)."""
    question = question_from_line(data)
    p_yes = data.get("p_yes")
    if not isinstance(p_yes, Mapping):
        raise ValueError("p_yes: expected an object {factual, counterfactual}")
    pairs: list[tuple[float, float] | None] = []
    for world in WORLDS:
        value = p_yes.get(world)
        wording = question.text(WORLDS.index(world))
        if value is None and wording is None:
            pairs.append(None)
            continue
        if (not isinstance(value, list) or len(value) != 2
                or not all(_probability(v) for v in value)):
            raise ValueError(f"p_yes.{world}: expected [P(yes) on image 0, on image 1], each "
                             f"in [0, 1]{'' if wording else ', or null (no wording)'}, got "
                             f"{value!r}")
        pairs.append((float(value[0]), float(value[1])))
    return Answer(question, pairs[0], pairs[1])


def _probability(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0.0 <= float(value) <= 1.0)


def read_answers(out: Path, pairs: Mapping[str, Pair]
                 ) -> tuple[dict[tuple[str, int], dict[str, Answer]], list[Diagnostic]]:
    """OUT/answers.jsonl, validated: (pair id, seed) -> question id -> answer; {} when there is
    no such file (evaluate ran without --vqa-model). Each bad line is an
    `invalid-answers-file` diagnostic naming the line and the field; good lines are kept."""
    path = out / ANSWERS_FILE
    if not path.is_file():
        return {}, []
    report = LineReport(path, read_text(path), "invalid-answers-file")
    rerun = f"re-run `cfspec evaluate {out} --vqa-model MODEL`"
    found: dict[tuple[str, int], dict[str, Answer]] = {}
    for number, data in json_lines(path, report, torn_ok=False):
        problem: tuple[str | None, str] | None = _line_problem(data, pairs)
        if problem is None:
            try:
                answer = answer_from_json(data)
            except ValueError as error:
                problem = (None, str(error))
            else:  # same id, other words: a spec's `ask` added or changed since evaluate ran
                if answer.question not in pairs[data["id"]].questions:
                    problem = ("question", f"{answer.question.id} of pair {data['id']!r} is "
                               "not the question pairs.jsonl has (pairs.jsonl was compiled "
                               "again since)")
        if problem is not None:
            report.add(number, problem[0], problem[1], help=rerun)
            continue
        answers = found.setdefault((data["id"], data["seed"]), {})
        if answer.question.id in answers:
            report.add(number, "question", f"repeats question {answer.question.id} of pair "
                       f"{data['id']!r}, seed {data['seed']}", help=rerun)
            continue
        answers[answer.question.id] = answer
    return found, report.items


def _line_problem(data: Mapping[str, Any], pairs: Mapping[str, Pair]
                  ) -> tuple[str, str] | None:
    """(field, what is wrong) with a line's pair, seed or question, or None."""
    ident = data.get("id")
    pair = pairs.get(ident) if isinstance(ident, str) else None
    if pair is None:
        return "id", f"{data.get('id')!r} is not a pair of pairs.jsonl"
    seed = data.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        return "seed", f"expected a seed (an integer >= 0), got {seed!r}"
    if data.get("question") not in {q.id for q in pair.questions}:
        return "question", (f"{data.get('question')!r} is not a question of pair {pair.id!r} "
                            "(pairs.jsonl was compiled again since)")
    return None


def questions_column(questions: Sequence[Question], answers: Mapping[str, Answer]
                     ) -> list[dict[str, Any]]:
    """A (pair, seed)'s questions with their P(yes), as the export's `questions` column holds
    them: each question's fields, then `p_yes_factual` and `p_yes_counterfactual` (that
    wording's P(yes) on [image 0, image 1]; null where the wording is null or nothing was
    asked: evaluate ran without --vqa-model)."""
    rows = []
    for question in questions:
        answer = answers.get(question.id)
        factual = None if answer is None else answer.factual
        counterfactual = None if answer is None else answer.counterfactual
        rows.append({**question.to_json(),
                     "p_yes_factual": None if factual is None else list(factual),
                     "p_yes_counterfactual": None if counterfactual is None
                     else list(counterfactual)})
    return rows
