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


# --- the builder: English per kind ---------------------------------------------------------------


def spec(prompt: str, variables: str, edges: str = "", counterfactuals: str = "") -> str:
    return f'scm s {{\n  prompt "{prompt}"\n{variables}\n{edges}\n{counterfactuals}\n}}\n'


def asked(text: str, counterfactual: str = "c") -> list[tuple[str, str | None, str | None]]:
    return [(q.variable, q.factual, q.counterfactual) for q in questions_of(text)[counterfactual]]


@pytest.mark.parametrize(("words", "new", "factual", "counterfactual"), [
    ("man", "apple", "Is there a man?", "Is there an apple?"),
    ("hour glass", "umbrella", "Is there an hour glass?", "Is there an umbrella?"),
    ("uniform", "men", "Is there a uniform?", "Are there men?"),
    ("horses", "child", "Are there horses?", "Is there a child?"),
    ("piece of cake", "pieces of cake", "Is there a piece of cake?", "Are there pieces of cake?"),
    ("water", "ice", "Is there water?", "Is there ice?"),  # mass nouns take no article
])
def test_existence_questions_choose_articles_and_number(words: str, new: str, factual: str,
                                                        counterfactual: str) -> None:
    text = spec("Look: {{ X }} here.", f'  var X: object = "{words}"',
                counterfactuals=f'  counterfactual c {{ do(X = "{new}") }}')
    assert asked(text) == [("X", factual, counterfactual)]


def test_an_action_is_asked_with_its_agent_and_depends_on_it() -> None:
    text = spec("A {{ W }} is {{ A }} a {{ C }}.",
                '  var W: agent = "woman"\n  var A: action = "cutting"\n'
                '  var C: object = "cake"',
                "  W -> A\n  C -> A", '  counterfactual c { do(W = "men") }')
    questions = by_variable(questions_of(text)["c"])
    assert (questions["A"].factual, questions["A"].counterfactual) == (
        "Is the woman cutting?", "Are the men cutting?")
    # the agent, not the object the action is done to, is who does it (DSG: its parent)
    assert questions["A"].parents == (questions["W"].id,)
    assert questions["C"].parents == ()


def test_an_action_in_the_third_person_is_asked_with_does() -> None:
    text = spec("A {{ P }} {{ L }} and {{ R }}.",
                '  var P: agent = "player"\n  var L: action = "lunges"\n'
                '  var R: action = "reaches back"',
                "  P -> L\n  P -> R", '  counterfactual c { do(P = "players") }')
    assert asked(text)[1:] == [("L", "Does the player lunge?", "Do the players lunges?"),
                               ("R", "Does the player reach back?",
                                "Do the players reaches back?")]


def test_an_attribute_is_asked_of_the_noun_it_qualifies() -> None:
    text = spec("A {{ C }} {{ P }} and a {{ S }} bear.",
                '  var C: color = "white"\n  var P: object = "plate"\n'
                '  var S: size = "large"',
                counterfactuals='  counterfactual c { do(C = "red") }')
    questions = by_variable(questions_of(text)["c"])
    assert (questions["C"].factual, questions["C"].counterfactual) == ("Is the plate white?",
                                                                       "Is the plate red?")
    assert questions["C"].parents == (questions["P"].id,)
    # a noun the caption writes itself (no variable): the question names it, with no parent
    assert (questions["S"].factual, questions["S"].parents) == ("Is the bear large?", ())


def test_attributes_in_a_row_qualify_the_same_noun() -> None:
    text = spec("{{ R | a }} {{ G }} barber", '  var R: race = "White"\n  var G: gender = "male"',
                counterfactuals='  counterfactual c { do(R = "Indian") }')
    assert asked(text) == [("R", "Is the barber White?", "Is the barber Indian?"),
                           ("G", "Is the barber male?", "Is the barber male?")]


def test_an_attribute_after_its_noun() -> None:
    text = spec("{{ B | a }} {{ S }} in the water", '  var B: animal = "polar bear"\n'
                '  var S: state = "partially submerged"',
                counterfactuals='  counterfactual c { do(B = "walrus") }')
    assert asked(text)[1] == ("S", "Is the polar bear partially submerged?",
                              "Is the walrus partially submerged?")


def test_places_quantities_and_scenes() -> None:
    text = spec("{{ N }} {{ P }} on {{ F | a }} at {{ E | a }} of {{ S }}.",
                '  var N: quantity = "a lot of"\n  var P: animal = "pigeons"\n'
                '  var F: place = "beach"\n  var E: event = "game"\n  var S: sport = "tennis"',
                counterfactuals='  counterfactual c { do(F = "field") }')
    assert asked(text) == [
        ("P", "Are there pigeons?", "Are there pigeons?"),  # before N, which presupposes it
        ("N", "Are there a lot of pigeons?", "Are there a lot of pigeons?"),
        ("F", "Is this on a beach?", "Is this on a field?"),
        ("E", "Is this a game?", "Is this a game?"),
        ("S", "Is this tennis?", "Is this tennis?"),
    ]
    questions = by_variable(questions_of(text)["c"])
    assert questions["N"].parents == (questions["P"].id,)  # counted pigeons presuppose pigeons


def test_a_variable_absent_in_one_world_has_no_question_there() -> None:
    text = spec("A {{ M }} with a {{ K }} {{ P }}.", '  var M: agent = "man"\n'
                '  var K: tool = "knife"\n  var P: place = none',
                counterfactuals='  counterfactual gone { do(K = none) }\n'
                                '  counterfactual there { do(P = "in a park") }')
    assert asked(text, "gone") == [("M", "Is there a man?", "Is there a man?"),
                                   ("K", "Is there a knife?", None)]
    assert asked(text, "there")[-1] == ("P", None, "Is this in a park?")


def test_a_variable_not_in_any_prompt_gets_no_question() -> None:
    text = spec("A {{ M }} here.", '  var M: agent = "man"\n  var T: latent = none', "  T -> M",
                '  counterfactual c { do(M = "woman") }')
    assert [v for v, _, _ in asked(text)] == ["M"]


def test_parents_come_first_whatever_the_declaration_order() -> None:
    text = spec("A {{ C }} {{ P }} and a {{ W }} {{ A }}.",
                '  var A: action = "sitting"\n  var C: color = "white"\n'
                '  var W: agent = "woman"\n  var P: object = "plate"',
                "  W -> A", '  counterfactual c { do(P = "cup") }')
    questions = questions_of(text)["c"]
    assert [q.variable for q in questions] == ["W", "A", "P", "C"]
    assert [q.id for q in questions] == ["q1", "q2", "q3", "q4"]
    seen: set[str] = set()
    for q in questions:
        assert set(q.parents) <= seen
        seen.add(q.id)


@pytest.mark.parametrize(("prompt", "new", "kind", "factual"), [
    # What the importers write: no kinds; the form of the words decides.
    ("A brown chicken on a field.", "white", "attribute", "Is the chicken brown?"),
    ("A person on a skateboard.", "above", "relation", "Is the person on the skateboard?"),
    ("Three women cooking together.", "chefs", "exists", "Are there women?"),
    ("A cat sitting in a sink.", "lying", "action", "Is the cat sitting?"),
])
def test_a_variable_without_a_kind_is_guessed_from_its_words(prompt: str, new: str, kind: str,
                                                             factual: str) -> None:
    from cfspec.lang.words import split_words

    word = {"white": "brown", "above": "on", "chefs": "women", "lying": "sitting"}[new]
    assert word in [w for w, _, _ in split_words(prompt)]
    text = (f'scm s {{\n  prompt "{prompt}"\n  var X = "{word}"\n'
            f'  counterfactual c {{ do(X = "{new}") }}\n}}\n')
    (question,) = questions_of(text)["c"]
    assert (question.kind, question.factual) == (kind, factual)


def test_agreement_words_get_no_question() -> None:
    text = ('scm s {\n  prompt "A boy holds his kite."\n  var B = "boy"\n  var H = "his"\n'
            '  B -> H\n  counterfactual c { do(B = "girl") set H = "her" }\n}\n')
    assert [v for v, _, _ in asked(text)] == ["B"]


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.scm")), ids=lambda p: p.stem)
def test_every_bundled_spec_asks_something_of_every_counterfactual(path: Path) -> None:
    for name, questions in questions_of(path.read_text(encoding="utf-8")).items():
        assert questions, name
        for q in questions:
            assert q.factual or q.counterfactual
            for text in (q.factual, q.counterfactual):
                assert text is None or (text[0].isupper() and text.endswith("?")), text


# --- the spec's own question: `ask` --------------------------------------------------------------


def test_ask_is_parsed_after_the_description() -> None:
    text = ('scm s {\n  prompt "A {{ W }}."\n'
            '  var W: agent = "woman" "the person" ask "Is there a woman in a suit?"\n'
            '  counterfactual c { do(W = "man") }\n}\n')
    parsed = check(SourceFile("spec.scm", text), Config())
    variable = parsed.models[0].variables["W"]
    assert variable.description is not None and variable.description.value == "the person"
    assert variable.ask is not None and variable.ask.value == "Is there a woman in a suit?"
    # the declaration's span runs to the end of the question
    assert text.splitlines()[2].endswith("?\"") and variable.span.end_column == len(
        text.splitlines()[2]) + 1


@pytest.mark.parametrize(("ask", "new", "factual", "counterfactual"), [
    ("Is there a woman in a suit?", "man", "Is there a woman in a suit?",
     "Is there a man in a suit?"),
    # the article before the words follows them
    ("Is there a woman in a suit?", "officer", "Is there a woman in a suit?",
     "Is there an officer in a suit?"),
    # a question that does not name the words is asked as written
    ("Is anyone wearing a suit?", "man", "Is anyone wearing a suit?",
     "Is anyone wearing a suit?"),
    ("Is there a woman in a suit?", None, "Is there a woman in a suit?", None),
])
def test_the_own_question_is_said_with_each_worlds_words(ask: str, new: str | None,
                                                         factual: str,
                                                         counterfactual: str | None) -> None:
    value = "none" if new is None else f'"{new}"'
    text = spec("A {{ W }} with a cake.", f'  var W: agent = "woman" ask "{ask}"',
                counterfactuals=f"  counterfactual c {{ do(W = {value}) }}")
    (question,) = questions_of(text)["c"]
    assert (question.kind, question.factual, question.counterfactual) == (
        "ask", factual, counterfactual)


def test_an_own_question_keeps_the_parents_of_the_built_one() -> None:
    text = spec("A {{ W }} is {{ A }}.", '  var W: agent = "woman"\n'
                '  var A: action = "cutting" ask "Is the woman cutting a cake?"', "  W -> A",
                '  counterfactual c { do(W = "man") }')
    questions = by_variable(questions_of(text)["c"])
    assert questions["A"].parents == (questions["W"].id,)
    assert questions["A"].counterfactual == "Is the woman cutting a cake?"  # A's words hold


def test_a_bundled_spec_shows_an_own_question() -> None:
    found = questions_of((ROOT / "specs" / "surfboard_horse.scm").read_text(encoding="utf-8"))
    suit = by_variable(found["snow"])["W"]
    assert (suit.kind, suit.factual, suit.counterfactual, suit.expect) == (
        "ask", "Is the man wearing a wet suit?", "Is the man wearing a ski suit?", "follow")


@pytest.mark.parametrize(("ask", "help"), [
    ("What is the woman wearing?", 'e.g. `ask "Is there a woman?"`'),
    ("Is the woman wearing a suit", 'end it with `?`: `ask "Is the woman wearing a suit?"`'),
    ("", 'e.g. `ask "Is there a woman?"`'),
])
def test_lint_warns_about_an_own_question_that_is_not_yes_no(ask: str, help: str) -> None:
    text = spec("A {{ W }}.", f'  var W: agent = "woman" ask "{ask}"',
                counterfactuals='  counterfactual c { do(W = "man") }')
    found = [d for d in check(SourceFile("s.scm", text), Config()).diagnostics
             if d.code.name == "ask-not-yes-no"]
    assert len(found) == 1
    (warning,) = found
    assert warning.level.value == "warning" and warning.help is not None and help in warning.help
    line = text.splitlines()[2]  # the question's opening quote, 1-based
    assert (warning.span.line, warning.span.column) == (3, line.index('ask "') + 5)


def test_yes_no_questions_pass_lint() -> None:
    for ask in ("Is there a woman?", "Does the woman hold a knife?", "Can you see a woman? "):
        text = spec("A {{ W }}.", f'  var W: agent = "woman" ask "{ask}"',
                    counterfactuals='  counterfactual c { do(W = "man") }')
        assert [d.code.name for d in check(SourceFile("s.scm", text), Config()).diagnostics
                if d.code.name == "ask-not-yes-no"] == []


# --- cfspec questions -------------------------------------------------------------------------


def run_cli(*args: str):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    return CliRunner().invoke(app, ["questions", *args])


def test_the_command_prints_each_counterfactuals_questions() -> None:
    result = run_cli(str(ROOT / "specs" / "cake.scm"))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("cake_cutting / ") == 3
    assert "  q2 A action [follow, after q1]: Is the woman cutting? -> Is the woman digging?\n" \
        in result.stdout
    assert "  q3 C exists [hold]: Is there a cake?\n" in result.stdout  # once: both the same


def test_the_json_form_is_what_compile_writes(tmp_path: Path) -> None:
    result = run_cli(str(ROOT / "specs" / "cake.scm"), "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["diagnostics"] == []
    compile_paths([str(ROOT / "specs" / "cake.scm")], Config(), tmp_path)
    pairs, _ = read_pairs(tmp_path / PAIRS_FILE)
    assert [(p["id"], p["prompt_0"], p["prompt_1"], p["questions"]) for p in shown["pairs"]] == [
        (p.id, p.prompt_0, p.prompt_1, [q.to_json() for q in p.questions]) for p in pairs]


def test_a_spec_with_errors_gets_its_diagnostics_and_no_questions() -> None:
    cake, cycle = ROOT / "specs" / "cake.scm", ROOT / "specs" / "invalid" / "cycle.scm"
    result = run_cli(str(cycle), str(cake), "--format", "json")
    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert {p["file"] for p in shown["pairs"]} == {str(cake)}
    assert "cycle" in {d["name"] for d in shown["diagnostics"]}
    text = run_cli(str(cycle))
    assert text.exit_code == 1 and "[cycle]" in text.stderr and text.stdout == ""


@pytest.mark.parametrize("args", [["nothere.scm"], [str(ROOT / "specs" / "cake.scm"),
                                                    "--format", "sarif"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2 and result.stderr.startswith("cfspec: error: ")


# --- real data: what the importers write ---------------------------------------------------------

REAL = ROOT.parent / "shared" / "data" / "real"
SLICES = [REAL / "social_counterfactuals_race_gender_1-60.jsonl",
          *sorted((REAL / "sugarcrepe_1-100").glob("*.json"))]


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is not here")
def test_imported_real_slices_get_questions(tmp_path: Path) -> None:
    """COCO-Counterfactuals (every 10th pair), SocialCounterfactuals and the seven SugarCrepe
    files, imported with `cfspec import`: every spec gets questions without error, those that
    lint clean (SugarCrepe's swaps are two interventions) for every counterfactual."""
    from typer.testing import CliRunner

    from cfspec.cli.app import app
    from cfspec.lint import read

    coco = tmp_path / "coco.jsonl"
    lines = (REAL / "coco_counterfactuals_captions_1-5000.jsonl").read_text(
        encoding="utf-8").splitlines(keepends=True)[::10]
    coco.write_text("".join(lines), encoding="utf-8")
    counted = {"specs": 0, "clean": 0, "asked": 0}
    for n, source in enumerate([coco, *SLICES]):
        out = tmp_path / f"import_{n}"
        result = CliRunner().invoke(app, ["import", str(source), "-o", str(out), "--quiet"])
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        assert not crashed and result.exit_code in (0, 1), result.output
        for path in sorted(out.glob("*.scm")):
            parsed = check(read(str(path), Config()).source, Config())
            for model in parsed.models:
                counted["specs"] += 1
                clean = not parsed.spec_has_errors(model.spec)
                counted["clean"] += clean
                for cm in model.counterfactuals:
                    if model.prompt_0 is None or cm.prompt_1 is None:
                        continue
                    questions = build(model, cm)
                    assert questions or not clean, (path, cm.node.name.text)
                    counted["asked"] += bool(questions)
                    for q in questions:
                        assert q.factual or q.counterfactual
                        assert all(t.endswith("?") for t in (q.factual, q.counterfactual) if t)
    assert counted["specs"] == len(lines) + 60 + 700
    assert counted["clean"] >= 0.7 * counted["specs"]
