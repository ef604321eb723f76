"""The question metrics of one (pair, seed): pure functions (standard library) from the spec's
questions and a VQA model's P(yes) on both images (cfspec.workspace.answers) to four numbers in
[0, 1], each the share of its questions that came out as the causal graph says:

* `intervention_success`: the intervened variable's questions (`expect: change`) on the
  counterfactual image: it says yes to the counterfactual wording and no to the factual one
  (where each exists: a variable absent in one world is only asked in the other).
* `factual_fidelity`: the same questions on the factual image: yes to the factual wording, no
  to the counterfactual one. Low values blame the generator's factual image (or the VQA model),
  not the edit.
* `held_fixed`: the non-descendants (`expect: hold`): both images give the same answer, each to
  its own world's wording (the two are the same text unless the question names the
  intervened variable's value).
* `descendants_followed`: the descendants the counterfactual `set`s (`expect: follow`): as
  intervention_success, on the counterfactual image.

Other descendants (`may-change`) are not scored: the graph allows either answer.

An answer is yes where P(yes) >= 0.5 (`answers.YES`; P(yes) is normalised against no, so this
is where the model prefers yes). A question counts only where its parents hold (DSG: "is the
dog brown?" is meaningless on an image without a dog): every ancestor question says yes to its
own wording on the image(s) the metric reads (both images for held_fixed). A metric with no
question to count is None, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cfspec.questions.record import Expect, Question
from cfspec.workspace.answers import Answer, says_yes

# (images, questions) -> P(yes) of each: cfspec.gpu.evaluate.vqa.VqaScorer.p_yes, or a toy.
PYes = Callable[[Sequence[Any], Sequence[str]], list[float]]

# name -> (the questions it scores, the images its questions are read on)
QUESTION_METRICS: dict[str, tuple[Expect, tuple[int, ...]]] = {
    "intervention_success": ("change", (1,)),
    "factual_fidelity": ("change", (0,)),
    "held_fixed": ("hold", (0, 1)),
    "descendants_followed": ("follow", (1,)),
}

_NONE_ASKED = {
    "change": "no question about the intervened variable",
    "hold": "no question about a non-descendant",
    "follow": "no question about a descendant the counterfactual sets",
}


def ask(questions: Sequence[Question], image_0: Any, image_1: Any, p_yes: PYes
        ) -> list[Answer]:
    """Every wording of every question asked of both images, in one `p_yes` call."""
    asks = [(q, world, image) for q in questions for world in (0, 1)
            if q.text(world) is not None for image in (0, 1)]
    found = p_yes([image_1 if image else image_0 for _, _, image in asks],
                  [str(q.text(world)) for q, world, _ in asks])
    got = {(q.id, world, image): p for (q, world, image), p in zip(asks, found, strict=True)}
    answers = []
    for q in questions:
        worlds = [None if q.text(world) is None
                  else (got[(q.id, world, 0)], got[(q.id, world, 1)]) for world in (0, 1)]
        answers.append(Answer(q, worlds[0], worlds[1]))
    return answers


def shows_world(answer: Answer, world: int, image: int) -> bool | None:
    """Image `image` shows `world`'s value: yes to that world's wording and no to the other
    world's (where it has one and it differs). None where `world` has no wording."""
    own = says_yes(answer.p_yes(world, image))
    if own is None:
        # The variable is absent in `world`: it shows that world where the other's wording
        # is denied.
        other = says_yes(answer.p_yes(1 - world, image))
        return None if other is None else not other
    q = answer.question
    if q.text(1 - world) is None or q.text(1 - world) == q.text(world):
        return own
    return own and not says_yes(answer.p_yes(1 - world, image))


def held(answer: Answer) -> bool | None:
    """Both images give the same answer, each to its own world's wording (the other world's
    where its own is null)."""
    verdicts = []
    for image in (0, 1):
        p = answer.p_yes(image, image)
        verdicts.append(says_yes(p if p is not None else answer.p_yes(1 - image, image)))
    if verdicts[0] is None or verdicts[1] is None:
        return None
    return verdicts[0] == verdicts[1]


def _verdict(name: str) -> Callable[[Answer], bool | None]:
    if name == "held_fixed":
        return held
    image = QUESTION_METRICS[name][1][0]
    return lambda answer: shows_world(answer, image, image)


def parents_hold(answer: Answer, by_id: Mapping[str, Answer], images: Sequence[int],
                 seen: frozenset[str] = frozenset()) -> bool:
    """Every ancestor of the question says yes to its own world's wording on each of
    `images` (an unknown parent id, or a cycle, does not hold)."""
    for parent_id in answer.question.parents:
        parent = by_id.get(parent_id)
        if parent is None or parent_id in seen:
            return False
        if not all(says_yes(parent.p_yes(image, image)) for image in images):
            return False
        if not parents_hold(parent, by_id, images, seen | {answer.question.id}):
            return False
    return True


Outcome = str  # "pass", "fail", "skipped" (a parent did not hold), "unasked" (no wording)


def outcomes(answers: Sequence[Answer]) -> dict[str, list[tuple[str, Outcome]]]:
    """Question id -> (metric, how the question came out for it) for each metric that reads
    it (none for a `may-change` question): what the metrics average, and the report shows."""
    by_id = {a.question.id: a for a in answers}
    found: dict[str, list[tuple[str, Outcome]]] = {a.question.id: [] for a in answers}
    for name, (expect, images) in QUESTION_METRICS.items():
        verdict = _verdict(name)
        for answer in answers:
            if answer.question.expect != expect:
                continue
            if not parents_hold(answer, by_id, images):
                found[answer.question.id].append((name, "skipped"))
                continue
            passed = verdict(answer)
            found[answer.question.id].append(
                (name, "unasked" if passed is None else "pass" if passed else "fail"))
    return found


def question_metrics(answers: Sequence[Answer]) -> tuple[dict[str, float | None],
                                                         dict[str, str]]:
    """The four metrics of one (pair, seed) and, for each None one, why."""
    per_metric: dict[str, list[Outcome]] = {name: [] for name in QUESTION_METRICS}
    for results in outcomes(answers).values():
        for name, outcome in results:
            per_metric[name].append(outcome)
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for name, (expect, _) in QUESTION_METRICS.items():
        counted = [o == "pass" for o in per_metric[name] if o in ("pass", "fail")]
        if counted:
            values[name] = sum(counted) / len(counted)
            continue
        values[name] = None
        if not per_metric[name]:
            reasons[name] = _NONE_ASKED[expect]
        else:
            reasons[name] = (f"none of its {len(per_metric[name])} question(s) counted: a "
                             "parent question did not hold on the image (DSG), or the question "
                             "has no wording there")
    return values, reasons
