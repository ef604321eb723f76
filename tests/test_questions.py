"""Questions from the spec (issue 26): the record pairs.jsonl carries, what the causal graph
expects of each variable, and the questions' English for each kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfspec.compile.stage import compile_paths
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lint import check
from cfspec.questions.build import build
from cfspec.questions.record import EXPECTS, KINDS, Question
from cfspec.workspace.pairs import PAIRS_FILE, Pair, read_pairs, schema_errors

ROOT = Path(__file__).resolve().parent.parent


def questions_of(text: str) -> dict[str, tuple[Question, ...]]:
    """Counterfactual name -> its questions, for a spec that lints clean."""
    parsed = check(SourceFile("spec.scm", text), Config())
    assert [d for d in parsed.diagnostics if d.level.value == "error"] == []
    (model,) = parsed.models
    return {cm.node.name.text: build(model, cm) for cm in model.counterfactuals}


def by_variable(questions: tuple[Question, ...]) -> dict[str, Question]:
    return {q.variable: q for q in questions}


def test_the_record_round_trips_through_json() -> None:
    q = Question("q2", "A", "action", "Is the woman cutting?", None, ("q1",), "may-change")
    assert q.to_json() == {"id": "q2", "variable": "A", "kind": "action",
                           "factual": "Is the woman cutting?", "counterfactual": None,
                           "parents": ["q1"], "expect": "may-change"}
    assert Question.from_json(json.loads(json.dumps(q.to_json()))) == q
    assert q.text(0) == "Is the woman cutting?" and q.text(1) is None


def test_the_schema_names_the_same_kinds_and_expectations_as_the_record() -> None:
    from cfspec.workspace.pairs import pair_schema

    question = pair_schema()["$defs"]["question"]["properties"]
    assert tuple(question["kind"]["enum"]) == KINDS
    assert tuple(question["expect"]["enum"]) == EXPECTS


def test_compile_writes_the_questions_of_each_pair(tmp_path: Path) -> None:
    result = compile_paths([str(ROOT / "specs" / "cake.scm")], Config(), tmp_path)
    assert result.diagnostics == []
    pairs, problems = read_pairs(tmp_path / PAIRS_FILE)
    assert problems == []
    fork = next(p for p in pairs if p.counterfactual == "fork")
    assert [(q.variable, q.expect) for q in fork.questions] == [
        ("W", "hold"), ("A", "follow"), ("C", "hold"), ("K", "change")]
    action = by_variable(fork.questions)["A"]
    assert (action.factual, action.counterfactual) == ("Is the woman cutting?",
                                                       "Is the woman digging?")
    assert action.parents == (by_variable(fork.questions)["W"].id,)
    knife = by_variable(fork.questions)["K"]
    assert (knife.factual, knife.counterfactual) == ("Is there a large knife?",
                                                    "Is there a fork?")


def test_a_pair_from_before_questions_reads_with_none() -> None:
    line = json.loads((ROOT / "tests" / "golden" / "replace.jsonl").read_text().splitlines()[0])
    del line["questions"]
    assert schema_errors(line) == []
    assert Pair.from_json(line).questions == ()


@pytest.mark.parametrize(("change", "problem"), [
    (lambda qs: qs[1].update(parents=["q9"]), "must be questions listed before 'q2'"),
    (lambda qs: qs[1].update(id="q1"), "'q1' is used twice"),
    (lambda qs: qs[0].update(expect="stay"), "questions.0.expect"),
    (lambda qs: qs[0].update(kind="colour"), "questions.0.kind"),
    (lambda qs: qs[0].update(factual=""), "questions.0.factual"),
    (lambda qs: qs[0].pop("parents"), "'parents' is a required property"),
])
def test_the_schema_rejects_broken_questions(change, problem) -> None:  # type: ignore[no-untyped-def]
    line = json.loads((ROOT / "tests" / "golden" / "replace.jsonl").read_text().splitlines()[0])
    assert len(line["questions"]) >= 2 and schema_errors(line) == []
    change(line["questions"])
    assert any(problem in error for error in schema_errors(line)), schema_errors(line)


CAKE = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")


def test_expectations_follow_the_causal_graph() -> None:
    found = questions_of(CAKE)
    # do(W = man): W changes; A and K are downstream of W (may change); C is not (holds).
    assert {q.variable: q.expect for q in found["man"]} == {
        "W": "change", "A": "may-change", "K": "may-change", "C": "hold"}
    # do(K = fork), set A: K changes, A follows as the spec says, W and C are upstream.
    assert {q.variable: q.expect for q in found["fork"]} == {
        "W": "hold", "A": "follow", "K": "change", "C": "hold"}
