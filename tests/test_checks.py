"""Focused behaviour of the checks, beyond the fixtures: messages, every position, the edges of
each rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfspec.diagnostics.records import Diagnostic
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.lang.config import Config
from cfspec.lang.tokens import MAX_TOKENS
from cfspec.lint import check

ROOT = Path(__file__).resolve().parent.parent


def lint(text: str, config: Config | None = None) -> list[Diagnostic]:
    return check(SourceFile("t.scm", text), config or Config()).diagnostics


def named(text: str, name: str, config: Config | None = None) -> list[Diagnostic]:
    return [d for d in lint(text, config) if d.code.name == name]


def where(text: str, needle: str, occurrence: int = 0, skip: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the n-th occurrence of `needle`, plus `skip` characters."""
    offset = -1
    for _ in range(occurrence + 1):
        offset = text.index(needle, offset + 1)
    return SourceFile("t.scm", text).position(offset + skip)


def at(d: Diagnostic) -> tuple[int, int]:
    return d.span.line, d.span.column


def span_text(text: str, span: Span) -> str:
    return text[span.start : span.end]


# --- cycle and self-loop -----------------------------------------------------------------------

CYCLES = """\
scm loops {
  prompt "{{ A }} {{ B }} {{ C }} {{ D }} {{ E }}"
  var A = "a"
  var B = "b"
  var C = "c"
  var D = "d"
  var E = "e"
  A -> B
  D -> E
  B -> C
  E -> D
  C -> A
  counterfactual x { do(A = "x") }
}
"""


def test_two_cycles_two_diagnostics() -> None:
    cycles = named(CYCLES, "cycle")
    assert [d.message for d in cycles] == ["cycle A -> B -> C -> A", "cycle D -> E -> D"]
    assert [at(d) for d in cycles] == [where(CYCLES, "A -> B"), where(CYCLES, "D -> E")]


def test_every_edge_of_a_cycle_is_labelled_in_order() -> None:
    three, two = named(CYCLES, "cycle")
    drawn = [(span_text(CYCLES, three.span), three.label)] + [
        (span_text(CYCLES, lb.span), lb.message) for lb in three.labels
    ]
    assert drawn == [
        ("A -> B", "edge 1 of 3 in the cycle"),
        ("B -> C", "edge 2 of 3 in the cycle"),
        ("C -> A", "edge 3 of 3 in the cycle"),
    ]
    drawn = [(span_text(CYCLES, two.span), two.label)] + [
        (span_text(CYCLES, lb.span), lb.message) for lb in two.labels
    ]
    assert drawn == [("D -> E", "edge 1 of 2 in the cycle"), ("E -> D", "edge 2 of 2 in the cycle")]


def test_cycle_starts_at_its_first_written_edge() -> None:
    text = CYCLES.replace("  A -> B\n", "").replace("  C -> A\n", "  C -> A\n  A -> B\n")
    (three,) = [d for d in named(text, "cycle") if "A" in d.message]
    assert three.message == "cycle B -> C -> A -> B"
    assert at(three) == where(text, "B -> C")


SELF_LOOP_IN_CYCLE = """\
scm loops {
  prompt "{{ A }} {{ B }}"
  var A = "a"
  var B = "b"
  A -> A
  A -> B
  B -> A
  counterfactual x { do(A = "x") }
}
"""


def test_self_loop_is_not_also_a_cycle() -> None:
    found = [(d.code.name, at(d), d.message) for d in lint(SELF_LOOP_IN_CYCLE)]
    assert found == [
        ("self-loop", where(SELF_LOOP_IN_CYCLE, "A -> A"), "edge `A -> A` goes from a variable "
         "to itself"),
        ("cycle", where(SELF_LOOP_IN_CYCLE, "A -> B"), "cycle A -> B -> A"),
    ]


def test_lone_self_loop() -> None:
    text = SELF_LOOP_IN_CYCLE.replace("  A -> B\n  B -> A\n", "  B -> A\n")
    assert [(d.code.name, at(d)) for d in lint(text)] == [
        ("self-loop", where(text, "A -> A"))
    ]


# --- non-minimal-change ------------------------------------------------------------------------

PLATE = """\
scm plate {
  prompt "A white plate with a sliced up piece of food on top of it."
  var P = "white plate"
  var F = "sliced up piece of food"
  var K: latent = "knife"
  K -> F "The food was sliced with a knife."
  F -> P "The food is served on the plate."
  counterfactual fork {
    do(K = "fork")
    prompt "A white plate with a sliced up piece of food on top of it, using a fork to cut."
  }
}
"""


def test_non_minimal_change_names_exactly_the_unexplained_words() -> None:
    (d,) = lint(PLATE)
    assert d.code.name == "non-minimal-change"
    assert d.message == (
        "the counterfactual prompt changes 'using a to cut', which no intervention explains"
    )
    assert at(d) == where(PLATE, "using")
    assert span_text(PLATE, d.span) == "using"
    assert [span_text(PLATE, lb.span) for lb in d.labels] == ["a", "to", "cut"]
    assert [where(PLATE, "a fork"), where(PLATE, "to cut"), where(PLATE, "cut.")] == [
        (lb.span.line, lb.span.column) for lb in d.labels
    ]


def test_changed_words_of_a_descendant_are_explained() -> None:
    # "sliced up" belongs to F, a descendant of the intervened K: it may change.
    text = PLATE.replace(
        "sliced up piece of food on top of it, using a fork to cut.",
        "fork pierced piece of food on top of it.",
    )
    assert lint(text) == []


def test_inserted_words_need_an_explanation_too() -> None:
    text = PLATE.replace(", using a fork to cut.", ", and a fork.")
    (d,) = lint(text)
    assert d.message == "the counterfactual prompt changes 'and a', which no intervention explains"
    assert at(d) == where(text, "and a fork")


def test_removed_words_point_into_the_counterfactual() -> None:
    text = PLATE.replace("on top of it, using a fork to cut.", "on top, near a fork.")
    (d,) = named(text, "non-minimal-change")
    assert "'of it" in d.message
    # Removed factual words are labelled in the factual prompt; the diagnostic itself sits in
    # the counterfactual, at its first unexplained word.
    assert at(d) == where(text, "near a fork")
    assert [span_text(text, lb.span) for lb in d.labels] == ["of", "it", "a"]
    only_removed = PLATE.replace("on top of it, using a fork to cut.", "on top, fork.")
    (d,) = named(only_removed, "non-minimal-change")
    assert d.message == "the counterfactual prompt changes 'of it', which no intervention explains"
    assert at(d) == where(only_removed, '"A white plate', occurrence=1)
    assert [(lb.span.line, span_text(only_removed, lb.span)) for lb in d.labels] == [
        (2, "of"), (2, "it")
    ]


CAKE = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")


def test_set_on_a_descendant_is_fine() -> None:
    assert 'set A = "digging"' in CAKE
    assert lint(CAKE) == []


def test_set_on_a_non_descendant_is_non_minimal() -> None:
    text = CAKE.replace('set A = "digging"', 'set C = "pie"')
    (d,) = lint(text)
    assert d.code.name == "non-minimal-change"
    assert at(d) == where(text, 'C = "pie"')
    assert d.message == "`set C` changes a variable that is not downstream of `K`"


# --- too-many-interventions --------------------------------------------------------------------

FOUR = """\
scm cake {
  prompt "A {{ W }} at a {{ T }} is {{ A }} a {{ C }}."
  var W = "woman"
  var T = "table"
  var A = "cutting"
  var C = "cake"
  W -> A
  C -> A
  T -> A
  counterfactual cf { DO }
}
"""


def _four(do: str) -> str:
    return FOUR.replace("DO", do)


def test_intervening_on_a_descendant_too_counts_once() -> None:
    text = _four('do(W = "man", A = "slicing")')
    assert named(text, "too-many-interventions") == []
    assert lint(text) == []


def test_two_independent_interventions() -> None:
    text = _four('do(W = "man", C = "pie")')
    (d,) = named(text, "too-many-interventions")
    assert at(d) == where(text, 'C = "pie"')
    assert d.message == ("counterfactual `cf` makes 2 independent interventions (W, C); "
                         "at most 1 allowed")


def test_independent_count_ignores_descendants() -> None:
    text = _four('do(W = "man", A = "slicing", C = "pie")')
    (d,) = named(text, "too-many-interventions")
    assert "makes 2 independent" in d.message
    assert at(d) == where(text, 'C = "pie"')


def test_max_interventions_is_honoured() -> None:
    two = _four('do(W = "man", C = "pie")')
    three = _four('do(W = "man", C = "pie", T = "bench")')
    config = Config(max_interventions=2)
    assert named(two, "too-many-interventions", config) == []
    (d,) = named(three, "too-many-interventions", config)
    assert at(d) == where(three, 'T = "bench"')
    assert d.message == ("counterfactual `cf` makes 3 independent interventions (W, C, T); "
                         "at most 2 allowed")


def test_interventions_in_separate_do_statements_count_too() -> None:
    text = _four('do(W = "man") do(C = "pie")')
    (d,) = named(text, "too-many-interventions")
    assert at(d) == where(text, 'C = "pie"')


# --- article-mismatch --------------------------------------------------------------------------

ARTICLE = """\
scm hold {
  prompt "A {{ W }} is holding PLACE."
  var W = "woman"
  var K = "knife"
  W -> K
  counterfactual apple { do(K = "apple") }
}
"""


def test_article_mismatch_with_a_bare_placeholder() -> None:
    text = ARTICLE.replace("PLACE", "a {{ K }}")
    (d,) = lint(text)
    assert d.code.name == "article-mismatch"
    assert at(d) == where(text, '"apple"')
    assert d.message == "in counterfactual `apple`, 'a' does not agree with 'apple'"
    assert "{{ K | a }}" in (d.help or "")


@pytest.mark.parametrize("place", ["{{ K | a }}", "{{ K|an }}"])
def test_article_filter_follows_the_words(place: str) -> None:
    assert lint(ARTICLE.replace("PLACE", place)) == []


def test_article_that_still_agrees() -> None:
    text = ARTICLE.replace("PLACE", "a {{ K }}").replace('"apple"', '"fork"')
    assert lint(text) == []


def test_an_article_before_another_determiner_is_not_an_article_mismatch() -> None:
    text = ARTICLE.replace("PLACE", "a {{ K }}").replace('"apple"', '"the apple"')
    assert [d.code.name for d in lint(text)] == ["dangling-determiner"]


# --- dangling-determiner -----------------------------------------------------------------------

BEACH = """\
scm beach {
  prompt "A man rides PLACE on the beach."
  var M = "man"
  var H = "horse"
  M -> H
  counterfactual gone { do(H = NEW) }
}
"""


def beach(place: str, new: str = "none") -> str:
    return BEACH.replace("PLACE", place).replace("NEW", new)


@pytest.mark.parametrize("det", ["a", "the", "this", "his", "her", "their", "every", "no"])
def test_a_removed_word_leaves_its_determiner_dangling(det: str) -> None:
    text = beach(f"{det} horse")
    (d,) = named(text, "dangling-determiner")
    assert at(d) == where(text, "none")
    (label,) = d.labels
    assert span_text(text, label.span) == det  # exact: the caption is literal
    assert label.span.start == text.index(f" {det} horse") + 1
    assert f"{det!r} is left without its words ({f'rides {det} on'!r})" in d.message
    assert f'var H = "{det} horse"' in (d.help or "")


def test_the_issue_example_and_its_fix() -> None:
    """Issue 22: lint said `All checks passed` for "A man rides a on the beach."."""
    text = beach("a horse")
    (d,) = lint(text)
    assert d.code.name == "dangling-determiner" and d.level.value == "warning"
    fixed = text.replace('var H = "horse"', 'var H = "a horse"')
    assert lint(fixed) == []
    (model,) = check(SourceFile("t.scm", fixed), Config()).models
    assert model.counterfactuals[0].prompt_1 is not None
    assert model.counterfactuals[0].prompt_1.text == "A man rides on the beach."


@pytest.mark.parametrize("place, new", [
    ("a horse", '"zebra"'),             # replaced, not removed
    ("{{ H | a }}", "none"),            # the filter takes the article with the words
    ("a {{ H }}", '"zebra"'),
])
def test_what_is_not_a_dangling_determiner(place: str, new: str) -> None:
    text = beach(place, new)
    if "{{" in place:
        text = text.replace('"A man', '"A {{ M }}')
    assert named(text, "dangling-determiner") == []


def test_a_removed_adjective_leaves_the_determiner_its_noun() -> None:
    text = BEACH.replace("PLACE", "a red horse").replace('var H = "horse"', 'var H = "red"')
    assert named(text, "dangling-determiner") == []


def test_in_a_template_the_filter_is_the_fix() -> None:
    text = beach("a {{ H }}").replace('"A man', '"A {{ M }}')
    (d,) = named(text, "dangling-determiner")
    assert at(d) == where(text, "none")
    assert "`{{ H | a }}` in place of `a {{ H }}`" in (d.help or "")
    assert lint(text.replace("a {{ H }}", "{{ H | a }}")) == []


def test_two_determiners_in_a_row() -> None:
    text = beach("the horse", '"a zebra"')
    (d,) = named(text, "dangling-determiner")
    assert at(d) == where(text, '"a zebra"')
    assert "'the' comes straight before 'a'" in d.message
    assert 'H = "zebra"' in (d.help or "")
    assert named(text, "article-mismatch") == []


def test_new_words_that_end_with_a_determiner() -> None:
    text = beach("the horse", '"a"').replace('var H = "horse"', 'var H = "the horse"')
    (d,) = named(text, "dangling-determiner")
    assert at(d) == where(text, '"a"')
    assert "the article 'a' is left without its words ('rides a on')" in d.message
    assert d.labels == ()  # it is not in the factual prompt


@pytest.mark.parametrize("new, dangles", [('"A"', False), ('"a"', True)])
def test_a_capitalised_determiner_inside_a_sentence_is_a_name(new: str, dangles: bool) -> None:
    """COCO-CF 36861_3: `in front of building windows.` -> `in front of building A.`"""
    text = BEACH.replace("rides PLACE on the beach", "rides past building windows").replace(
        '"horse"', '"windows"').replace("NEW", new)
    assert len(named(text, "dangling-determiner")) == dangles


@pytest.mark.parametrize("caption_0, caption_1", [
    # COCO-CF 450075_4: `US` after `the` is a name, not the pronoun.
    ("A woman is getting her tie adjusted in the city.",
     "A woman is getting her tie adjusted in the US."),
    # COCO-CF 67534_4: a re-tokenized quote may open the article's words.
    ('A young man is taking a "selfie" of himself. ',
     "A young child is taking a `` selfie '' of himself."),
])
def test_real_captions_that_keep_their_determiners(caption_0: str, caption_1: str) -> None:
    import json

    from cfspec.importers import import_source

    line = json.dumps({"coco-counterfactual-index": "r1", "original_caption": caption_0,
                       "counterfactual_caption": caption_1})
    (item,) = import_source(SourceFile("pairs.jsonl", line + "\n"), "coco-cf")
    assert "dangling-determiner" not in {d.code.name for d in item.diagnostics}


def test_a_literal_counterfactual_prompt_points_at_its_own_word() -> None:
    text = beach("a horse").replace(
        "do(H = none) }", 'do(H = none) prompt "A man rides a near the beach." }')
    (d,) = named(text, "dangling-determiner")
    assert at(d) == where(text, "a near", skip=0)
    assert span_text(text, d.span) == "a"


def test_at_the_end_or_before_punctuation() -> None:
    text = BEACH.replace("PLACE on the beach.", "her horse").replace("NEW", "none")
    (d,) = named(text, "dangling-determiner")
    assert "'her' is left without its words" in d.message


def test_set_members_share_one_diagnostic() -> None:
    text = beach("a {{ H }}").replace('"A man', '"A {{ M }}').replace(
        "counterfactual gone { do(H = none) }",
        'counterfactuals kinds { do(H in [none, "the zebra", "zebra"]) }')
    found = named(text, "dangling-determiner")
    assert sorted(at(d) for d in found) == sorted([where(text, "none"),
                                                   where(text, '"the zebra"')])


@pytest.mark.parametrize("caption_1, dangles", [
    ("A man rides a on the beach.", True),
    ("A man rides the a zebra on the beach.", True),
    ("A man rides on the beach.", False),
])
def test_import_and_compile_report_it_the_same_way(tmp_path: Path, caption_1: str,
                                                   dangles: bool) -> None:
    import json

    from cfspec.compile.stage import compile_paths
    from cfspec.importers import import_source

    caption_0 = "A man rides the horse on the beach."
    line = json.dumps({"coco-counterfactual-index": "r1", "original_caption": caption_0,
                       "counterfactual_caption": caption_1})
    (item,) = import_source(SourceFile("pairs.jsonl", line + "\n"), "coco-cf")
    dangling = [d for d in item.diagnostics if d.code.name == "dangling-determiner"]
    spec = tmp_path / "r1.scm"
    spec.write_text(item.scm, encoding="utf-8")
    compiled = compile_paths([str(spec)], Config(), tmp_path / "out")
    again = [d for d in compiled.diagnostics if d.code.name == "dangling-determiner"]
    if not dangles:
        assert dangling == [] and again == []
        return
    (d,) = dangling
    assert d.file == "pairs.jsonl" and d.span.line == 1
    assert line[d.span.start : d.span.end] == caption_1  # the caption that says it
    (c,) = again
    assert c.message == d.message and c.code == d.code
    assert [p["prompt_1"] for p in compiled.pairs] == [caption_1]  # a warning: still written


# --- prompt-too-long ---------------------------------------------------------------------------


def _long(words: int) -> str:
    caption = "A {{ W }} " + " ".join(["cake"] * words)
    return f"""\
scm long {{
  prompt "{caption}"
  var W = "woman"
  var H: latent = "hunger"
  H -> W
  counterfactual man {{ do(W = "man") }}
}}
"""


def test_prompt_of_77_tokens_fits() -> None:
    # BOS + "a" + "woman" + 73 x "cake" + EOS = 77
    assert named(_long(MAX_TOKENS - 4), "prompt-too-long") == []


def test_prompt_too_long_is_an_estimate() -> None:
    text = _long(MAX_TOKENS - 3)
    factual, counterfactual = named(text, "prompt-too-long")
    assert at(factual) == where(text, '"A {{ W }}')
    assert factual.message.startswith("the prompt is 78 tokens at least (estimated")
    assert "the text encoder reads 77" in factual.message
    assert "tokenizer" in factual.message
    assert at(counterfactual) == where(text, "man {")
    assert counterfactual.message.startswith("counterfactual `man` is 78 tokens at least")


# --- template-error and positions inside strings ----------------------------------------------


def _template(prompt: str) -> str:
    return f"""\
scm t {{
  prompt "{prompt}"
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man {{ do(W = "man") }}
}}
"""


def test_template_expression_is_not_evaluated() -> None:
    text = _template("A {{ W }} with {{ ''.__class__.__mro__ }} {{ C }}")
    (d,) = lint(text)
    assert d.code.name == "template-error"
    assert at(d) == where(text, "{{ ''")
    assert span_text(text, d.span) == "{{ ''.__class__.__mro__ }}"
    assert d.message == "`{{ ''.__class__.__mro__ }}` is not a variable placeholder"


def test_template_statement_is_one_error() -> None:
    text = _template("A {% for x in y %}{{ W }}{% endfor %} and a {{ C }}")
    found = lint(text)
    assert [(d.code.name, at(d), span_text(text, d.span)) for d in found] == [
        ("template-error", where(text, "{% for"), "{% for x in y %}"),
        ("template-error", where(text, "{% endfor"), "{% endfor %}"),
    ]
    assert "template statements" in found[0].message


def test_template_comment_and_stray_braces() -> None:
    text = _template("A {# note #}{{ W }} and }} a {{ C }}")
    found = lint(text)
    assert [(at(d), span_text(text, d.span)) for d in found] == [
        (where(text, "{#"), "{# note #}"),
        (where(text, "}} a {{"), "}}"),
    ]
    assert found[0].message == "template comments are not allowed in prompts"
    assert found[1].message == "unbalanced `}}` in the prompt template"


def test_unknown_filter_points_at_the_filter() -> None:
    text = _template("A {{ W | shout }} and a {{ C }}")
    (d,) = lint(text)
    assert d.code.name == "template-error"
    assert d.message == "unknown filter `shout`"
    assert at(d) == where(text, "shout")
    assert span_text(text, d.span) == "shout"


def test_close_filter_is_suggested() -> None:
    text = _template("A {{ W | uper }} and a {{ C }}")
    (d,) = lint(text)
    assert "did you mean `upper`?" in (d.help or "")


def test_undefined_placeholder_points_at_the_name() -> None:
    text = _template("A {{ W }} and a {{ Cake }}")
    (d,) = named(text, "undefined-variable")
    assert at(d) == (2, 30)
    assert at(d) == where(text, "Cake")
    assert span_text(text, d.span) == "Cake"
    assert d.help == "did you mean `C`?" or "declare it" in (d.help or "")


@pytest.mark.parametrize(
    "before",
    [
        '\\"big\\" ',  # escaped quotes
        "caf\\u00e9 ",  # a \\u escape: six characters in the source, one in the value
        "tab\\there\\\\ ",  # \\t and an escaped backslash
        "\\/\\n\\r ",
    ],
)
def test_positions_inside_strings_with_escapes(before: str) -> None:
    text = _template("A " + before + "{{ W }} and a {{ Q }}").replace('var C = "cake"', "")
    text = text.replace("W -> C", "W -> W2").replace('var W = "woman"',
                                                     'var W = "woman"\n  var W2: latent = "x"')
    (d,) = named(text, "undefined-variable")
    assert at(d) == where(text, "Q }}")
    assert span_text(text, d.span) == "Q"


def test_literal_word_spans_with_escapes() -> None:
    text = PLATE.replace("using a fork to cut.", 'using a \\"fork\\" to cut.')
    (d,) = named(text, "non-minimal-change")
    assert at(d) == where(text, "using")
    assert [span_text(text, lb.span) for lb in d.labels] == ["a", "to", "cut"]
    assert [(lb.span.line, lb.span.column) for lb in d.labels][1] == where(text, "to cut")
