"""Caption sets: one caption and many counterfactual captions (`caption`, `output_1` ...
`output_N`, the SocialCounterfactuals shape) import as ONE spec with a counterfactual per output.

The real slice end to end (import -> lint clean -> compile -> one pair per output whose prompts
are the caption and the output exactly), and rows nobody published, to show that nothing here
knows the data: other attributes, multi-word values, three attributes, an `a`/`an` that changes
on a word that is not the first, and outputs that do not fit (each reported where it is, the
rest of the row imported).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cfspec.compile.pairs import compile_spec
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.source import SourceFile
from cfspec.importers import ImportedItem, import_source
from cfspec.importers.sets import SUPPRESS
from cfspec.lang.config import Config
from cfspec.lint import check

ROOT = Path(__file__).resolve().parent.parent
SOCIAL = ROOT.parent / "shared" / "data" / "real" / "social_counterfactuals_race_gender_1-60.jsonl"
needs_real = pytest.mark.skipif(not SOCIAL.is_file(), reason="the real-data slice is not here")


def _row(caption: str, outputs: list[Any], **extra: str) -> str:
    row: dict[str, Any] = {"caption": caption}
    row.update({f"output_{n}": o for n, o in enumerate(outputs, start=1)})
    row.update(extra)
    return json.dumps(row)


def _import(text: str, name: str = "rows.jsonl") -> list[ImportedItem]:
    return import_source(SourceFile(name, text))


def _compiled(item: ImportedItem) -> list[dict[str, Any]]:
    assert item.scm is not None
    parsed = check(SourceFile(f"{item.item_id}.scm", item.scm), Config())
    errors = [d for d in parsed.diagnostics if d.level is Severity.ERROR]
    assert errors == [], item.scm
    [model] = parsed.models
    return compile_spec(model, f"{item.item_id}.scm")


def _lint_names(item: ImportedItem) -> list[str]:
    assert item.scm is not None
    return [d.code.name for d in check(SourceFile("x.scm", item.scm), Config()).diagnostics]


def _grid(template: str, *axes: list[str]) -> tuple[str, list[str]]:
    """The caption (every axis at its first value) and every other combination, in order."""
    import itertools

    combos = list(itertools.product(*axes))
    captions = [_fill(template, c) for c in combos]
    return captions[0], captions[1:]


def _fill(template: str, values: tuple[str, ...]) -> str:
    from cfspec.lang.prompt import article_for

    text = template.format(*values)
    # `{a}` placeholders: the article agreeing with the next word
    out = []
    words = text.split(" ")
    for n, w in enumerate(words):
        out.append(article_for(words[n + 1]) if w == "@a" else
                   article_for(words[n + 1]).capitalize() if w == "@A" else w)
    return " ".join(out)


def _exact(item: ImportedItem, caption: str, outputs: list[str]) -> None:
    pairs = _compiled(item)
    assert [p["prompt_1"] for p in pairs] == outputs
    assert {p["prompt_0"] for p in pairs} == {caption}


# --- the real slice ----------------------------------------------------------------------------


@needs_real
def test_the_real_slice_imports_as_one_spec_per_row_with_every_output(tmp_path: Path) -> None:
    lines = SOCIAL.read_text(encoding="utf-8").splitlines(keepends=True)
    items = _import("".join(lines), str(SOCIAL))
    assert len(items) == 60
    for line, item in zip(lines, items, strict=True):
        row = json.loads(line)
        outputs = [row[f"output_{n}"] for n in range(1, 12)]
        assert item.verdict == "clean"
        assert [d.code.name for d in item.diagnostics] == ["empty-graph"]
        assert _lint_names(item) == ["empty-graph"], item.scm  # no extra-counterfactuals
        assert item.item_id == row["filename"]
        _exact(item, row["caption"], outputs)
        assert len(item.written) == 11
        assert item.written["race_gender_middle_eastern_female"] == {"Race": "Middle Eastern",
                                                                     "Gender": "female"}
        # a factual value in a member is no intervention
        assert item.written["race_gender_indian_male"] == {"Race": "Indian"}
        assert item.written["race_gender_white_female"] == {"Gender": "female"}
        assert item.scm is not None and "{{ Race | a }} {{ Gender }}" in item.scm
        # one set, no explicit block, nothing to suppress: output_1..11 are the set's own
        # expansion order (Race outer), which _exact checks pair by pair
        assert item.scm.count("counterfactuals race_gender {") == 1, item.scm
        assert "\n  counterfactual " not in item.scm and SUPPRESS not in item.scm
        assert "written as one set" in item.scm
    first = items[0].scm
    assert first is not None
    assert 'do(Race in ["White", "Black", "Indian", "Asian", "Middle Eastern", "Latino"],\n' \
        '       Gender in ["male", "female"])' in first


@needs_real
def test_the_real_slice_through_the_commands(tmp_path: Path) -> None:
    from cfspec.cli.app import app

    runner = CliRunner()
    imported = runner.invoke(app, ["import", str(SOCIAL), "-o", str(tmp_path / "specs"),
                                   "--format", "json"])
    assert imported.exit_code == 0, imported.output
    assert "extra-counterfactuals" not in imported.output
    linted = runner.invoke(app, ["lint", str(tmp_path / "specs"), "--format", "json"])
    assert linted.exit_code == 0
    assert {d["name"] for d in json.loads(linted.stdout)} == {"empty-graph"}
    compiled = runner.invoke(app, ["compile", str(tmp_path / "specs"), "-o", str(tmp_path / "out")])
    assert compiled.exit_code == 0, compiled.output
    pairs = [json.loads(x) for x in (tmp_path / "out" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 660
    by_id = {p["id"]: p for p in pairs}
    assert by_id["race_gender_barber__race_gender_indian_male"]["prompt_1"] == \
        "an Indian male barber"
    assert by_id["a_photo_of_race_gender_barber__race_gender_middle_eastern_female"][
        "prompt_1"] == "A photo of a Middle Eastern female barber"
    assert by_id["an_image_of_race_gender_ceo__race_gender_asian_female"]["prompt_0"] == \
        "An image of a White male CEO"


# --- rows nobody published ------------------------------------------------------------------


def test_other_attributes_with_multi_word_values_and_no_id() -> None:
    caption, outputs = _grid("A photo of @a {} {} person at the beach",
                             ["young", "old", "middle aged", "elderly"],
                             ["happy", "very sad", "angry"])
    [item] = _import(_row(caption, outputs))
    assert item.verdict == "clean"
    _exact(item, caption, outputs)
    assert len(item.written) == 11
    # Named after their words without an id that names them; a joint change of two
    # neighbouring multi-word values is split where the single changes show the values.
    assert item.written["young_happy_elderly_very_sad"] == {"Young": "elderly",
                                                            "Happy": "very sad"}
    assert item.written["young_happy_middle_aged_angry"] == {"Young": "middle aged",
                                                             "Happy": "angry"}
    assert item.written["young_happy_old_happy"] == {"Young": "old"}
    assert item.scm is not None and "@a" not in item.scm
    assert 'prompt "A photo of {{ Young | a }} {{ Happy }} person at the beach"' in item.scm
    assert _lint_names(item) == ["empty-graph"]


def test_an_id_that_names_the_attributes_names_the_variables() -> None:
    caption, outputs = _grid("@A {} {} person", ["young", "old"], ["happy", "very sad"])
    [item] = _import(_row(caption, outputs, id="age_emotion_person"))
    assert item.written == {"age_emotion_young_very_sad": {"Emotion": "very sad"},
                            "age_emotion_old_happy": {"Age": "old"},
                            "age_emotion_old_very_sad": {"Age": "old", "Emotion": "very sad"}}
    _exact(item, caption, outputs)
    # an id that does not stand in for the varied words names nothing: words are used
    [other] = _import(_row(caption, outputs, id="row_17"))
    assert set(other.written["young_happy_old_very_sad"]) == {"Young", "Happy"}


def test_three_attributes_changed_together() -> None:
    caption, outputs = _grid("@a {} {} {} chair", ["small", "enormous"], ["red", "orange"],
                             ["wooden", "metal"])
    assert caption == "a small red wooden chair" and "an enormous orange metal chair" in outputs
    [item] = _import(_row(caption, outputs))
    assert item.verdict == "clean"
    _exact(item, caption, outputs)
    assert item.written["small_red_wooden_enormous_orange_metal"] == {
        "Small": "enormous", "Red": "orange", "Wooden": "metal"}
    # a complete 2x2x2 grid: one set of 7 members, which may change all three at once
    assert item.scm is not None and SUPPRESS not in item.scm
    assert 'do(Small in ["small", "enormous"], Red in ["red", "orange"],' in item.scm
    assert _lint_names(item) == ["empty-graph"]


def test_an_article_that_changes_on_a_later_word() -> None:
    caption = "A dog next to a red car"
    outputs = ["A cat next to a red car", "A dog next to an orange car",
               "A cat next to an orange car", "A dog next to a blue car"]
    [item] = _import(_row(caption, outputs))
    assert item.scm is not None
    assert 'prompt "A {{ Dog }} next to {{ Red | a }} car"' in item.scm
    assert item.written["cat_orange"] == {"Dog": "cat", "Red": "orange"}
    _exact(item, caption, outputs)


def test_joint_changes_that_no_single_change_isolates_are_too_many() -> None:
    """Only the grid's cells are marked: a counterfactual changing two variables neither of
    which is changed alone elsewhere is `too-many-interventions`, in import and in lint."""
    caption = "a man riding a horse"
    line = _row(caption, ["a woman riding a camel", "a boy riding a pony"])
    [item] = _import(line)
    assert item.verdict == "too-many-interventions"
    first = next(d for d in item.diagnostics if d.code.name == "too-many-interventions")
    assert (first.span.line, first.span.column) == (1, line.index("camel") + 1)
    assert item.scm is not None and SUPPRESS not in item.scm
    assert _lint_names(item).count("too-many-interventions") == 2


def test_outputs_that_do_not_fit_are_reported_where_they_are_and_the_rest_imports() -> None:
    caption = "a White male barber"
    good = ["a White female barber", "a Black male barber", "a Black female barber"]
    bad: list[Any] = ["a White male barber", "a Black male barber", "a Black male barbre", 7]
    line = _row(caption, [*good, *bad], filename="race_gender_barber")
    [item] = _import("\n" + line + "\n")
    shown = [(d.code.name, d.level.value, d.span.line, d.span.column) for d in item.diagnostics]
    assert shown == [
        ("empty-graph", "warning", 2, 1),
        ("extra-counterfactuals", "warning", 2,
         line.index('"a White male barber", "output_5"') + 2),
        ("extra-counterfactuals", "warning", 2,
         line.index('"a Black male barber", "output_6"') + 2),
        ("extra-counterfactuals", "warning", 2, line.index("barbre") + 1),
        ("syntax-error", "error", 2, line.index('"output_7": 7') + len('"output_7": ') + 1),
    ]
    for d in item.diagnostics:
        assert d.help, d  # every one says the way out
    left_out = [d.message for d in item.diagnostics if d.code.name == "extra-counterfactuals"]
    assert left_out == [
        "`output_4` is not imported: it has the caption's own words",
        "`output_5` is not imported: it repeats `output_2`",
        "`output_6` is not imported: it also changes 'barber' to 'barbre', which no other "
        "output of the row changes",
    ]
    dup = next(d for d in item.diagnostics if "repeats" in d.message)
    assert dup.labels[0].span.column == line.index('"a Black male barber"') + 2
    # the three outputs kept are a complete 2x2 grid: one set
    assert item.written == {"race_gender_white_female": {"Gender": "female"},
                            "race_gender_black_male": {"Race": "Black"},
                            "race_gender_black_female": {"Race": "Black", "Gender": "female"}}
    _exact(item, caption, good)
    assert _lint_names(item) == ["empty-graph"]


def test_a_row_whose_outputs_all_equal_the_caption_is_judged_as_a_pair() -> None:
    line = _row("a cat", ["a cat", "a  cat"])
    [item] = _import(line)
    names = [d.code.name for d in item.diagnostics]
    assert "no-op-intervention" in names and item.verdict != "clean"
    assert item.scm is not None


def test_a_single_output_row_is_still_a_caption_pair() -> None:
    [item] = _import(_row("a White male barber", ["a White female barber"]))
    assert item.interventions == {"Male": "female"} and item.written == {
        "female": {"Male": "female"}}


def test_a_removed_word_with_its_article_left_and_a_changed_article() -> None:
    caption = "a big red ball on the grass"
    outputs = ["a red ball on the grass", "a big blue ball on the grass",
               "a blue ball on the grass", "an enormous red ball on the grass"]
    [item] = _import(_row(caption, outputs))
    assert item.verdict == "clean"
    _exact(item, caption, outputs)
    assert list(item.written) == ["no_big", "blue", "no_big_blue", "enormous"]
    assert _lint_names(item) == ["empty-graph"]


def test_a_caption_artefact_in_one_output_and_fix() -> None:
    """`They 'll` in one output is a caption-artefact warning at its place; the .scm keeps that
    output as written (a literal prompt), and `--fix` writes it the way the caption is."""
    from cfspec.importers import ImportOptions

    caption = "They'll tow a red car."
    outputs = ["They 'll tow a blue car.", "They'll tow an orange car."]
    line = _row(caption, outputs)
    [item] = _import(line)
    artefact = next(d for d in item.diagnostics if d.code.name == "caption-artefact")
    assert (artefact.span.line, artefact.span.column) == (1, line.index("They 'll") + 1)
    _exact(item, caption, outputs)
    assert sorted(_lint_names(item)) == ["caption-artefact", "empty-graph"]
    [fixed] = import_source(SourceFile("rows.jsonl", line), options=ImportOptions(fix=True))
    assert fixed.fixes and "caption-artefact" not in [d.code.name for d in fixed.diagnostics]
    _exact(fixed, caption, ["They'll tow a blue car.", "They'll tow an orange car."])


# --- complete grids are one `counterfactuals` set ---------------------------------------------


def _pairs(item: ImportedItem) -> list[tuple[str, str, str, str]]:
    return [(p["id"], p["prompt_0"], p["prompt_1"], p["edit"]["type"]) for p in _compiled(item)]


def _is_one_set(item: ImportedItem, name: str) -> bool:
    assert item.scm is not None
    module = check(SourceFile("x.scm", item.scm), Config()).module
    assert module is not None
    [spec] = module.specs
    return spec.counterfactuals == () and [s.name.text for s in spec.counterfactual_sets] == [name]


AGES = ["young", "old", "middle aged"]
MOODS = ["happy", "very sad"]


def test_a_complete_grid_is_one_set_that_expands_in_the_outputs_order() -> None:
    caption, outputs = _grid("@A {} {} person", AGES, MOODS)
    [item] = _import(_row(caption, outputs, id="age_emotion_person"))
    assert item.verdict == "clean" and _is_one_set(item, "age_emotion")
    assert item.scm is not None
    assert 'do(Age in ["young", "old", "middle aged"], Emotion in ["happy", "very sad"])' \
        in item.scm
    # the compiler's order (the expansion) is the outputs' order, and each pair is the member
    # the import says it wrote for that output
    pairs = _pairs(item)
    assert [p[2] for p in pairs] == outputs
    assert [p[0] for p in pairs] == [f"age_emotion_person__{m}" for m in item.written]
    assert list(item.written)[:2] == ["age_emotion_young_very_sad", "age_emotion_old_happy"]
    assert _lint_names(item) == ["empty-graph"]


def test_a_complete_grid_in_another_order_is_the_same_set_listed_as_first_seen() -> None:
    caption, outputs = _grid("@A {} {} person", AGES, MOODS)
    shuffled = [outputs[k] for k in (4, 1, 0, 3, 2)]
    [ordered] = _import(_row(caption, outputs, id="age_emotion_person"))
    [item] = _import(_row(caption, shuffled, id="age_emotion_person"))
    assert item.verdict == "clean" and _is_one_set(item, "age_emotion")
    assert item.scm is not None
    # "middle aged very sad" comes first: each list is the caption's value, then first seen
    assert 'do(Age in ["young", "middle aged", "old"], Emotion in ["happy", "very sad"])' \
        in item.scm
    assert sorted(_pairs(item)) == sorted(_pairs(ordered))  # ids, prompts and edit types
    # each output's member renders that output, whatever the order
    by_id = {p[0]: p[2] for p in _pairs(item)}
    assert [by_id[f"age_emotion_person__{m}"] for m in item.written] == shuffled


def test_the_set_order_follows_the_outputs_when_the_inner_variable_comes_first() -> None:
    """The outputs vary the caption's second variable outermost: the set lists it first."""
    caption = "a young happy person"
    outputs = ["an old happy person", "a young sad person", "an old sad person"]
    [item] = _import(_row(caption, outputs))
    assert _is_one_set(item, "happy_young")
    assert [p[2] for p in _pairs(item)] == outputs


def test_an_incomplete_grid_stays_explicit_blocks() -> None:
    caption, outputs = _grid("@A {} {} person", AGES, MOODS)
    [item] = _import(_row(caption, outputs[:-1], id="age_emotion_person"))
    assert item.scm is not None and "\n  counterfactuals " not in item.scm
    assert list(item.written) == ["very_sad", "old", "old_very_sad", "middle_aged"]
    assert item.scm.count(")  # " + SUPPRESS) == 1  # the one joint cell
    _exact(item, caption, outputs[:-1])
    # the explicit blocks' edit types (written by the import) are the set's (the compiler's)
    [whole] = _import(_row(caption, outputs, id="age_emotion_person"))
    types = {p[2]: p[3] for p in _pairs(whole)}
    assert {p[2]: p[3] for p in _pairs(item)} == {o: types[o] for o in outputs[:-1]}
    assert set(types.values()) == {"replace", "refine"}


def test_an_output_left_out_leaves_an_incomplete_grid() -> None:
    caption = "a White male barber"
    outputs = ["a White female barber", "a Black male barber", "a Black female barbre"]
    [item] = _import(_row(caption, outputs))
    assert [d.code.name for d in item.diagnostics] == ["empty-graph", "extra-counterfactuals"]
    assert item.scm is not None and "\n  counterfactuals " not in item.scm
    assert list(item.written) == ["female", "black"]


def test_one_variable_stays_explicit_blocks() -> None:
    caption = "a White male barber"
    outputs = ["a Black male barber", "an Indian male barber"]
    [item] = _import(_row(caption, outputs))
    assert item.scm is not None and "\n  counterfactuals " not in item.scm
    assert list(item.written) == ["black", "indian"]
    _exact(item, caption, outputs)


@pytest.mark.parametrize("row_id, set_name", [
    ("cross_replace_person", "cross_replace_set"),  # the joined names are a keyword
    ("scm_edit_person", "scm_edit"),  # each name is one in lower case; joined, it is not
])
def test_variables_whose_names_make_a_keyword(row_id: str, set_name: str) -> None:
    caption, outputs = _grid("@A {} {} person", ["young", "old"], ["happy", "sad"])
    [item] = _import(_row(caption, outputs, id=row_id))
    assert item.verdict == "clean" and _is_one_set(item, set_name), item.scm
    assert _lint_names(item) == ["empty-graph"]
    assert [p[2] for p in _pairs(item)] == outputs
    assert all(m.startswith(set_name + "_") for m in item.written)
