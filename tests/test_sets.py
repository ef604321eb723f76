"""Counterfactual sets (`counterfactuals NAME { do(X in [...], ...) }`) and sampled edit settings
(`cross_replace uniform(low, high)`): parsing, the expansion (order, names, the factual skipped),
what the checks see of the members, fmt, and what compile writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lark import Lark

from cfspec.compile.stage import compile_paths
from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.fmt import format_source
from cfspec.lang import ast
from cfspec.lang.config import Config
from cfspec.lang.grammar_export import export
from cfspec.lang.model import build
from cfspec.lang.parser import grammar_path, parse
from cfspec.lang.set_expansion import MAX_MEMBERS, MAX_SLUG, slug
from cfspec.lint import check
from cfspec.workspace.layout import is_safe_id
from cfspec.workspace.pairs import PAIRS_FILE, read_pairs, schema_errors

ROOT = Path(__file__).resolve().parent.parent
BARBER = ROOT / "specs" / "barber_set.scm"

RACES = ["White", "Black", "Indian", "Asian", "Middle Eastern", "Latino"]


def spec_text(grid: str, *, prompt: str = "{{ R | a }} {{ G }} barber", extra: str = "",
              edit: str = "") -> str:
    return f"""scm barber {{
  prompt "{prompt}"
  var R = "White"
  var G = "male"
  var L: latent = "appearance"
  R -> L
  G -> L
{extra}
  counterfactuals race_gender {{
    do({grid})
    {edit}
  }}
}}
"""


GRID = 'R in [' + ", ".join(f'"{r}"' for r in RACES) + '], G in ["male", "female"]'


def parsed(text: str) -> ast.Module:
    source = SourceFile("t.scm", text)
    bag = DiagnosticBag(source)
    module = parse(source, bag)
    assert module is not None, [d.message for d in bag.items]
    return module


def lint(text: str, config: Config | None = None) -> list[tuple[str, int, int, str]]:
    result = check(SourceFile("t.scm", text), config or Config())
    return [(d.code.name, d.span.line, d.span.column, d.message) for d in result.diagnostics]


def members(text: str) -> list[str]:
    model = build(parsed(text).specs[0])
    return [cm.node.name.text for cm in model.counterfactuals]


# --- parsing --------------------------------------------------------------------------------


def test_a_set_parses_into_choices_and_fixed_assignments() -> None:
    module = parsed(spec_text('R in ["Black", none], G = "female"'))
    (node,) = module.specs[0].counterfactual_sets
    assert node.name.text == "race_gender"
    choice, fixed = node.grid
    assert isinstance(choice, ast.Choice) and choice.target.text == "R"
    assert isinstance(choice.values[0], ast.Text) and choice.values[0].value == "Black"
    assert isinstance(choice.values[1], ast.NoneValue)
    assert isinstance(fixed, ast.Assignment) and fixed.target.text == "G"
    # A set is not a counterfactual of the syntax tree; its members live in the model.
    assert module.specs[0].counterfactuals == ()


def test_the_grammar_stays_lalr_strict_and_names_every_terminal() -> None:
    text = grammar_path().read_text(encoding="utf-8")
    parser = Lark(text, parser="lalr", strict=True)
    assert not [t.name for t in parser.terminals if t.name.startswith("__")]
    assert {"COUNTERFACTUALS", "IN", "UNIFORM"} <= {t.name for t in parser.terminals}


@pytest.mark.parametrize("target", ["llguidance", "gbnf"])
def test_exports_know_the_new_keywords(target: str) -> None:
    """The new keywords are terminals and no NAME may be one (the grammar's comments mention
    them too, so the exclusions are what is checked)."""
    out = export(target)
    for word in ("counterfactuals", "in", "uniform"):
        if target == "llguidance":
            excluded = re.search(r"^NAME: .*& ~/\((.*)\)/$", out, re.MULTILINE)
            assert excluded is not None and word in excluded.group(1).split("|")
            assert re.search(rf'^{word.upper()}: "{word}"$', out, re.MULTILINE)
        else:  # gbnf spells NAME minus the keywords as a trie: after the whole word, more
            # characters are required
            assert re.search(rf"^name-after-{word} ::= \[0-9A-Z_a-z\] \[0-9A-Z_a-z\]\*$",
                             out, re.MULTILINE)
            assert re.search(rf'^{word}-t ::= "{word}"$', out, re.MULTILINE)


# --- the expansion --------------------------------------------------------------------------


def test_members_follow_the_written_order_and_skip_the_factual() -> None:
    names = members(spec_text(GRID))
    expected = [f"race_gender_{slug(r)}_{g}" for r in RACES for g in ("male", "female")]
    expected.remove("race_gender_white_male")  # the factual caption is no counterfactual
    assert names == expected and len(names) == 11
    assert "race_gender_middle_eastern_female" in names


def test_a_factual_value_is_no_intervention_in_a_member() -> None:
    model = build(parsed(spec_text(GRID)).specs[0])
    by_name = {cm.node.name.text: cm for cm in model.counterfactuals}
    assert list(by_name["race_gender_white_female"].interventions) == ["G"]
    assert list(by_name["race_gender_black_male"].interventions) == ["R"]
    assert list(by_name["race_gender_black_female"].interventions) == ["R", "G"]
    # The member's name points at the first value it changes, inside the list.
    name_span = by_name["race_gender_black_female"].node.name.span
    assert (name_span.line, name_span.column) == (10, 23)


def test_a_fixed_assignment_is_a_list_of_one() -> None:
    names = members(spec_text('R in ["White", "Black"], G = "female"'))
    assert names == ["race_gender_white_female", "race_gender_black_female"]


def test_slugs_are_path_safe() -> None:
    assert slug("Middle Eastern") == "middle_eastern"
    assert slug("  Café au-lait! ") == "cafe_au_lait"
    assert slug("日本") == ""
    assert len(slug("x" * 100)) == MAX_SLUG
    names = members(spec_text('R in ["日本", none, "Ünïcode word"]', prompt="{{ R }} barber"))
    assert names == ["race_gender_v1", "race_gender_none", "race_gender_unicode_word"]
    assert all(is_safe_id(f"socialcf_barber__{n}") for n in names)


def test_the_bundled_example_lints_clean_and_compiles_to_eleven_pairs(tmp_path: Path) -> None:
    assert check(SourceFile.read(BARBER), Config()).diagnostics == []
    result = compile_paths([str(BARBER)], Config(), tmp_path)
    assert result.diagnostics == []
    prompts = {p["counterfactual"]: p["prompt_1"] for p in result.pairs}
    assert len(prompts) == 11
    assert prompts["race_gender_indian_male"] == "an Indian male barber"
    assert prompts["race_gender_asian_female"] == "an Asian female barber"
    assert prompts["race_gender_middle_eastern_male"] == "a Middle Eastern male barber"
    assert prompts["race_gender_white_female"] == "a White female barber"
    assert all(p["prompt_0"] == "a White male barber" for p in result.pairs)
    assert all(is_safe_id(p["id"]) for p in result.pairs)
    pairs, problems = read_pairs(tmp_path / PAIRS_FILE)
    assert problems == [] and len(pairs) == 11


# --- sampled edit settings ------------------------------------------------------------------


def test_uniform_compiles_to_edit_sample_and_a_midpoint_window(tmp_path: Path) -> None:
    text = spec_text('R in ["Black"]', edit="edit { cross_replace uniform(0.1, 0.9)  "
                     "self_replace uniform(0.2, 0.6) }")
    spec = tmp_path / "s.scm"
    spec.write_text(text, encoding="utf-8")
    result = compile_paths([str(spec)], Config(), tmp_path / "out")
    assert result.diagnostics == []
    (pair,) = result.pairs
    edit = pair["edit"]
    assert edit["sample"] == {"cross_replace": {"uniform": [0.1, 0.9]},
                              "self_replace": {"uniform": [0.2, 0.6]}}
    assert edit["cross_replace_steps"]["default"] == pytest.approx([0.0, 0.5])
    assert edit["self_replace_steps"] == pytest.approx([0.0, 0.4])
    assert schema_errors(pair) == []
    line = (tmp_path / "out" / PAIRS_FILE).read_text(encoding="utf-8").splitlines()[0]
    assert json.loads(line)["edit"]["sample"]["cross_replace"] == {"uniform": [0.1, 0.9]}


def test_fixed_windows_write_no_sample(tmp_path: Path) -> None:
    spec = tmp_path / "s.scm"
    spec.write_text(spec_text('R in ["Black"]', edit="edit { cross_replace 0.7 }"),
                    encoding="utf-8")
    (pair,) = compile_paths([str(spec)], Config(), tmp_path / "out").pairs
    assert "sample" not in pair["edit"]
    # The schema refuses an empty sample: compile must leave the key out, not write {}.
    pair["edit"]["sample"] = {}
    assert schema_errors(pair) != []


def test_uniform_in_an_ordinary_counterfactual() -> None:
    text = """scm s {
  prompt "A {{ W }} cuts a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") edit { self_replace uniform(0.7, 0.2) } }
}
"""
    assert [(n, line, col) for n, line, col, _ in lint(text)] == [
        ("invalid-edit-setting", 6, 58)]


# --- what the checks see --------------------------------------------------------------------


def test_findings_shared_by_members_are_one_diagnostic_listing_them() -> None:
    # `a` is in the prompt: every member whose race starts with a vowel disagrees, each at
    # its own value; the two genders of one race share the value, so they fold into one.
    text = spec_text(GRID, prompt="a {{ R }} {{ G }} barber")
    result = check(SourceFile("t.scm", text), Config())
    found = [(d.code.name, d.span.column) for d in result.diagnostics]
    assert found == [("article-mismatch", 32), ("article-mismatch", 42)]
    indian = result.diagnostics[0]
    assert "race_gender_indian_male" in indian.message
    assert any("race_gender_indian_female" in n and "2 members" in n for n in indian.notes)


def test_members_change_their_listed_factors_together_but_no_more() -> None:
    assert lint(spec_text(GRID)) == []
    over = spec_text(GRID + ', S = "scissors"', prompt="{{ R | a }} {{ G }} barber {{ S }}",
                     extra='  var S = "comb"\n  S -> L')
    found = lint(over)
    # The factors a member changes count as one; S counts on its own: every member that
    # changes S and a factor is one too many, each kind of member its own diagnostic.
    assert [(n, line) for n, line, _, _ in found] == [("too-many-interventions", 11)] * 3
    assert sorted(message.split(" makes ")[1] for *_, message in found) == [
        "2 independent interventions (G, S); at most 1 allowed",
        "2 independent interventions (R, S); at most 1 allowed",
        "3 independent interventions (R, G, S); at most 2 allowed"]
    # The configured limit still applies where it is higher.
    assert lint(over, Config(max_interventions=3)) == []
    # A list of one is a fixed assignment, not a factor.
    one = lint(spec_text('R in ["Black"], G in ["female"]'))
    assert [(n, line, col) for n, line, col, _ in one] == [("too-many-interventions", 10, 30)]


def test_a_member_named_like_a_counterfactual_is_a_duplicate() -> None:
    text = spec_text('R in ["Black"]',
                     extra='  counterfactual race_gender_black { do(R = "Black") }')
    assert [(n, line, col) for n, line, col, _ in lint(text)] == [
        ("duplicate-counterfactual", 10, 14)]


def test_a_variable_listed_twice_conflicts_and_the_first_list_counts() -> None:
    text = spec_text('R in ["Black", "Indian"], G in ["male", "female"], R in ["Asian"]')
    assert [(n, line, col) for n, line, col, _ in lint(text)] == [
        ("conflicting-assignment", 10, 59)]
    assert "race_gender_asian_female" not in members(text)


def test_unknown_targets_and_undefined_sets_are_reported_once() -> None:
    text = spec_text('R in ["Black", "Asian"], Q in ["x", "y", "z"]')
    assert [(n, line, col) for n, line, col, _ in lint(text)] == [
        ("unknown-intervention-target", 10, 33)]


@pytest.mark.parametrize(("grid", "name", "column"), [
    # do( is at column 5 of line 10, so the first item starts at column 8
    ('R in ["Black"], G in []', "empty-value-list", 24),
    ('R in ["Black", "black"]', "duplicate-set-value", 23),
    ('R in ["White"], G in ["male"]', "empty-counterfactual-set", 19),  # the set's name
    ('R in ["Middle Eastern", "Middle-Eastern"]', "set-name-collision", 32),
])
def test_set_codes_and_positions(grid: str, name: str, column: int) -> None:
    line = 9 if name == "empty-counterfactual-set" else 10
    found = [(n, ln, col) for n, ln, col, _ in lint(spec_text(grid))]
    if name == "empty-counterfactual-set":  # its lists of one are fixed factual words, too
        assert found[1:] == [("unchanged-intervention-value", 10, 14),
                             ("unchanged-intervention-value", 10, 30)]
        found = found[:1]
    assert found == [(name, line, column)]


def test_a_set_without_do_expands_to_nothing() -> None:
    text = spec_text('R in ["Black"]').replace('do(R in ["Black"])', "")
    found = lint(text)
    assert [(n, line) for n, line, _, _ in found] == [("empty-counterfactual-set", 9)]
    assert "no do()" in found[0][3]


def test_a_set_too_large_is_not_expanded() -> None:
    n = int(MAX_MEMBERS ** 0.5) + 2  # n * n > MAX_MEMBERS
    values = ", ".join(f'"w{i}"' for i in range(n))
    text = spec_text(f"R in [{values}], G in [{values}]", prompt="{{ R }} {{ G }}")
    assert [(name, line) for name, line, _, _ in lint(text)] == [("set-too-large", 9)]
    assert members(text) == []


def test_long_member_names_make_an_invalid_pair_id() -> None:
    # A spec id of 120 and a set name of 100 leave too little of a pair id's 255 characters
    # for two values of 40 (each slug is cut at MAX_SLUG).
    values = ", ".join(f'"{c * 45}"' for c in "abc")
    text = spec_text(f"R in [{values}], G in [{values}]", prompt="{{ R }} {{ G }}",
                     extra='  id "' + "x" * 120 + '"')
    long_set = text.replace("counterfactuals race_gender", "counterfactuals " + "s" * 100)
    found = lint(long_set)
    assert [(n, line, col) for n, line, col, _ in found] == [("invalid-id", 9, 19)]
    assert "of 304 characters" in found[0][3]  # 120 + 2 + 100 + 1 + 40 + 1 + 40
    assert lint(text) == []  # the same with the short set name


# --- fmt --------------------------------------------------------------------------------------


def test_fmt_prints_sets_canonically_and_is_idempotent() -> None:
    messy = """scm barber {
  prompt "{{ R | a }} {{ G }} barber"
  var R = "White"
  var G = "male"
  var L: latent = "look"
  R -> L
  G -> L
  counterfactuals short {do( R in [ "Black" ,none],G="female" )}
  counterfactuals race_gender {
    do(R in ["White", "Black", "Indian", "Asian", "Middle Eastern", "Latino"], GRID_G)
    edit { cross_replace uniform( 0.1,0.9 ) }
  }
}
""".replace("GRID_G", 'G in ["male", "female"]')  # one line of 103 characters: fmt splits it
    text, errors = format_source(SourceFile("t.scm", messy))
    assert errors == [] and text is not None
    assert '  counterfactuals short { do(R in ["Black", none], G = "female") }\n' in text
    assert ('    do(R in ["White", "Black", "Indian", "Asian", "Middle Eastern", "Latino"],\n'
            '       G in ["male", "female"])\n') in text
    assert "    edit { cross_replace uniform(0.1, 0.9) }\n" in text
    again, _ = format_source(SourceFile("t.scm", text))
    assert again == text
    assert members(text) == members(messy)


def test_fmt_leaves_the_bundled_example_as_it_is() -> None:
    text = BARBER.read_text(encoding="utf-8")
    assert format_source(SourceFile(str(BARBER), text))[0] == text


# --- syntax errors --------------------------------------------------------------------------


@pytest.mark.parametrize(("grid", "hint"), [
    ('R = ["Black"]', "X in ["),  # a list after `=`
    ('R for ["Black"]', "X in ["),  # not `in`
])
def test_common_mistakes_get_a_way_out(grid: str, hint: str) -> None:
    source = SourceFile("t.scm", spec_text(grid))
    bag = DiagnosticBag(source)
    assert parse(source, bag) is None
    (error,) = bag.items
    assert error.code.name == "syntax-error" and hint in (error.help or "")


def test_a_list_in_a_single_counterfactual_says_to_use_a_set() -> None:
    text = spec_text('R in ["Black"]').replace("counterfactuals", "counterfactual")
    source = SourceFile("t.scm", text)
    bag = DiagnosticBag(source)
    assert parse(source, bag) is None
    (error,) = bag.items
    assert (error.span.line, error.span.column) == (10, 10)
    assert "counterfactuals NAME" in (error.help or "")


# --- the language server --------------------------------------------------------------------


def test_the_language_server_renames_into_sets_and_describes_them() -> None:
    from cfspec.lsp import analysis

    text = spec_text(GRID, extra='  counterfactual black { do(R = "Black") }')
    doc = analysis.analyse("t.scm", text, Config())
    at = text.index("var R") + 4
    edits = analysis.rename(doc, at, "Race")
    # The declaration, the edge, the placeholder, the counterfactual's do() and the set's list.
    assert len(edits) == 5
    assert any(span.line == 10 and span.column == 8 for span, _ in edits)
    described, _ = analysis.hover(doc, text.index("race_gender") + 1) or ("", None)
    assert "**counterfactuals race_gender**" in described and "11 members" in described
    assert "'an Indian male barber'" in described


def test_members_with_different_findings_at_one_place_are_reported_apart() -> None:
    """A set's literal prompt is one place for every member, but what each member gets wrong
    there differs: one diagnostic per finding, never one member's message for another."""
    text = """scm b {
  prompt "{{ R | a }} {{ G }} barber"
  var R: race = "White"
  var G: gender = "male"
  counterfactuals rg {
    do(R in ["White", "Black"], G in ["male", "female"])
    prompt "a Black female barber"
  }
}
"""
    result = check(SourceFile("t.scm", text), Config())
    found = [(d.code.name, d.span.line, d.message) for d in result.diagnostics
             if d.code.name == "non-minimal-change"]
    assert [(code, line) for code, line, _ in found] == [("non-minimal-change", 7)] * 2
    assert ["'White'" in found[0][2], "'male'" in found[1][2]] == [True, True]
    assert all("the same holds" not in note for d in result.diagnostics for note in d.notes)
