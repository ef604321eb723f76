"""The question metrics (cfspec.workspace.question_metrics) on constructed images: a toy VQA
model reads its answers off the image (a statement is true where its pixel is lit), so each
image says exactly what it was made to say, and each metric must move the way the causal
graph says.

The spec: a woman (gender -> man) cutting (action: a non-descendant, asked about the person),
a cake on the table (hold), and the person's hat colour, a `set` descendant of gender
(red -> blue)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from cfspec.questions.record import Question
from cfspec.workspace.answers import Answer, answer_from_json, answers_json
from cfspec.workspace.question_metrics import QUESTION_METRICS, ask, question_metrics

STATEMENTS = ["Is there a woman?", "Is there a man?", "Is the woman cutting?",
              "Is the man cutting?", "Is there a cake?", "Is the hat red?", "Is the hat blue?",
              "Is it raining?"]


def image(*true: str) -> np.ndarray:
    """A 1 x len(STATEMENTS) image, lit where the statement is true."""
    pixels = np.zeros((1, len(STATEMENTS), 3), dtype=np.uint8)
    for statement in true:
        pixels[0, STATEMENTS.index(statement)] = 255
    return pixels


def toy_p_yes(images: Sequence[np.ndarray], questions: Sequence[str]) -> list[float]:
    """0.9 where the image lights the question's pixel, else 0.1 (an unknown question: 0.5,
    a coin the metrics must not rely on)."""
    return [0.5 if q not in STATEMENTS else (0.9 if im[0, STATEMENTS.index(q), 0] else 0.1)
            for im, q in zip(images, questions, strict=True)]


QUESTIONS = [
    Question("q1", "gender", "exists", "Is there a woman?", "Is there a man?", (), "change"),
    Question("q2", "action", "action", "Is the woman cutting?", "Is the man cutting?",
             ("q1",), "hold"),
    Question("q3", "object", "exists", "Is there a cake?", "Is there a cake?", (), "hold"),
    Question("q4", "hat", "attribute", "Is the hat red?", "Is the hat blue?", ("q1",),
             "follow"),
    Question("q5", "weather", "exists", "Is it raining?", "Is it raining?", (), "may-change"),
]

FACTUAL = ("Is there a woman?", "Is the woman cutting?", "Is there a cake?", "Is the hat red?")
GOOD_CF = ("Is there a man?", "Is the man cutting?", "Is there a cake?", "Is the hat blue?",
           "Is it raining?")  # the rain may change: not scored


def scores(image_0: np.ndarray, image_1: np.ndarray,
           questions: Sequence[Question] = QUESTIONS) -> dict[str, float | None]:
    return question_metrics(ask(questions, image_0, image_1, toy_p_yes))[0]


def test_a_faithful_counterfactual_scores_one_everywhere() -> None:
    assert scores(image(*FACTUAL), image(*GOOD_CF)) == dict.fromkeys(QUESTION_METRICS, 1.0)


def test_an_edit_that_did_not_happen_fails_intervention_success_only() -> None:
    unchanged = image(*FACTUAL)  # the counterfactual image is the factual one
    got = scores(image(*FACTUAL), unchanged)
    assert got["intervention_success"] == 0.0
    assert got["factual_fidelity"] == 1.0
    assert got["held_fixed"] == 1.0
    # The hat question's parent (is there a man?) fails on the counterfactual image: DSG
    # skips it, and with no other follow question the metric is undefined.
    assert got["descendants_followed"] is None


def test_both_values_at_once_is_not_success() -> None:
    """A counterfactual image with the man and the woman shows the new value but also the
    old: not a success."""
    both = image(*GOOD_CF, "Is there a woman?")
    assert scores(image(*FACTUAL), both)["intervention_success"] == 0.0


def test_a_bad_factual_image_fails_factual_fidelity() -> None:
    got = scores(image("Is there a cake?"), image(*GOOD_CF))
    assert got["factual_fidelity"] == 0.0 and got["intervention_success"] == 1.0


def test_a_lost_non_descendant_lowers_held_fixed() -> None:
    no_cake = image(*(s for s in GOOD_CF if s != "Is there a cake?"))
    assert scores(image(*FACTUAL), no_cake)["held_fixed"] == 0.5  # the action held, the cake not
    idle = image("Is there a man?", "Is the hat blue?")
    assert scores(image(*FACTUAL), idle)["held_fixed"] == 0.0


def test_a_descendant_that_did_not_follow_fails() -> None:
    red_hat = image(*(s for s in GOOD_CF if s != "Is the hat blue?"), "Is the hat red?")
    got = scores(image(*FACTUAL), red_hat)
    assert got["descendants_followed"] == 0.0 and got["intervention_success"] == 1.0


def test_a_child_counts_only_where_its_parent_holds() -> None:
    """Without the man on the counterfactual image, "is the man cutting?" is not asked of it
    (held_fixed then rests on the cake alone): without gating the lost action would count."""
    no_man = image("Is there a cake?", "Is the hat blue?")
    got = scores(image(*FACTUAL), no_man)
    assert got["held_fixed"] == 1.0  # only q3 counted: the cake held
    ungated = [q if q.id != "q2" else Question(q.id, q.variable, q.kind, q.factual,
                                               q.counterfactual, (), q.expect)
               for q in QUESTIONS]
    assert scores(image(*FACTUAL), no_man, ungated)["held_fixed"] == 0.5
    # A grandparent counts too: q4 under q2 under q1.
    chained = [*QUESTIONS[:3], Question("q4", "hat", "attribute", "Is the hat red?",
                                        "Is the hat blue?", ("q2",), "follow")]
    lazy = image("Is there a man?", "Is there a cake?", "Is the hat blue?")  # not cutting
    assert scores(image(*FACTUAL), lazy, chained)["descendants_followed"] is None
    assert scores(image(*FACTUAL), image(*GOOD_CF), chained)["descendants_followed"] == 1.0


def test_a_variable_absent_in_one_world_is_asked_only_in_the_other() -> None:
    """An added object: no factual wording. Success is yes on the counterfactual image;
    fidelity is no on the factual one."""
    added = [Question("q1", "dog", "exists", None, "Is there a dog?", (), "change")]
    statements = [*STATEMENTS, "Is there a dog?"]

    def p_yes(images: Sequence[np.ndarray], questions: Sequence[str]) -> list[float]:
        return [0.9 if im[0, statements.index(q), 0] else 0.1
                for im, q in zip(images, questions, strict=True)]

    def img(*true: str) -> np.ndarray:
        pixels = np.zeros((1, len(statements), 3), dtype=np.uint8)
        for s in true:
            pixels[0, statements.index(s)] = 255
        return pixels

    good = question_metrics(ask(added, img(), img("Is there a dog?"), p_yes))[0]
    assert good["intervention_success"] == 1.0 and good["factual_fidelity"] == 1.0
    bad = question_metrics(ask(added, img("Is there a dog?"), img(), p_yes))[0]
    assert bad["intervention_success"] == 0.0 and bad["factual_fidelity"] == 0.0


def test_metrics_without_questions_are_none_with_reasons() -> None:
    values, reasons = question_metrics([])
    assert values == dict.fromkeys(QUESTION_METRICS)
    assert set(reasons) == set(QUESTION_METRICS)
    assert "intervened variable" in reasons["intervention_success"]


def test_the_threshold_is_where_the_model_prefers_yes() -> None:
    q = Question("q", "v", "exists", "Is there a cake?", "Is there a cake?", (), "hold")
    at = question_metrics([Answer(q, (0.5, 0.5), (0.5, 0.5))])[0]
    below = question_metrics([Answer(q, (0.5, 0.4999), (0.5, 0.4999))])[0]
    assert at["held_fixed"] == 1.0 and below["held_fixed"] == 0.0


def test_answers_lines_round_trip() -> None:
    answers = ask(QUESTIONS, image(*FACTUAL), image(*GOOD_CF), toy_p_yes)
    lines = answers_json("pair-a", 3, answers, "toy")
    assert [line["question"] for line in lines] == [q.id for q in QUESTIONS]
    assert lines[0]["p_yes"] == {"factual": [0.9, 0.1], "counterfactual": [0.1, 0.9]}
    assert [answer_from_json(line) for line in lines] == answers


@pytest.mark.parametrize(("change", "message"), [
    ({"expect": "maybe"}, "expect 'maybe' is not one of"),
    ({"p_yes": {"factual": [0.2], "counterfactual": [0.1, 0.9]}}, "p_yes.factual"),
    ({"p_yes": {"factual": [0.2, 1.5], "counterfactual": [0.1, 0.9]}}, "each in [0, 1]"),
    ({"factual": None, "counterfactual": None}, "no wording in either world"),
    ({"parents": "q1"}, "parents must be a list"),
])
def test_bad_answers_lines_say_what_is_wrong(change: dict[str, object], message: str) -> None:
    line = answers_json("pair-a", 0, ask(QUESTIONS[:1], image(), image(), toy_p_yes), "toy")[0]
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        answer_from_json({**line, **change})


def test_outcomes_say_how_each_question_came_out_per_metric() -> None:
    from cfspec.workspace.question_metrics import outcomes

    no_man = image("Is there a cake?", "Is the hat blue?")
    found = outcomes(ask(QUESTIONS, image(*FACTUAL), no_man, toy_p_yes))
    assert found == {
        "q1": [("intervention_success", "fail"), ("factual_fidelity", "pass")],
        "q2": [("held_fixed", "skipped")],  # no man on image 1
        "q3": [("held_fixed", "pass")],
        "q4": [("descendants_followed", "skipped")],
        "q5": [],  # may change: not scored
    }
