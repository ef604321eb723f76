"""Syntax-error recovery: every syntax error in a file, each once, at its own position, with a
did-you-mean for a misspelt keyword, and no follow-on errors from one mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.lang import ast
from cfspec.lang.config import Config
from cfspec.lang.parser import parse, parse_partial
from cfspec.lang.recovery import MAX_ERRORS
from cfspec.lang.wording import closest_keyword, distance
from cfspec.lint import check

ROOT = Path(__file__).resolve().parent.parent
INVALID = ROOT / "specs" / "invalid"


def errors(text: str) -> list[tuple[int, int, str, str | None]]:
    """(line, column, message, help) of every diagnostic, in order."""
    parsed = check(SourceFile("f.scm", text), Config())
    return [(d.span.line, d.span.column, d.message, d.help) for d in parsed.diagnostics]


def test_three_mistakes_three_diagnostics() -> None:
    parsed = check(SourceFile.read(INVALID / "syntax-error-three-mistakes.scm"), Config())
    found = [(d.code.name, d.span.line, d.span.column, d.help) for d in parsed.diagnostics]
    assert found == [
        ("syntax-error", 5, 3, "write `prompt`"),
        ("syntax-error", 6, 11, 'words are quoted strings: "woman"'),
        ("syntax-error", 9, 3, "write `counterfactual`"),
    ]
    assert "did you mean `prompt`?" in parsed.diagnostics[0].message
    assert "did you mean `counterfactual`?" in parsed.diagnostics[2].message
    # The span is the misspelt word itself.
    span = parsed.diagnostics[2].span
    assert parsed.source.text[span.start : span.end] == "counterfacual"


def test_the_issue_example() -> None:
    text = 'scm s {\n  var W = "w"\n  counterfacual camel { do(W = "x") }\n}\n'
    [(line, column, message, help_text)] = errors(text)
    assert (line, column) == (3, 3)
    assert message == "unknown keyword `counterfacual`; did you mean `counterfactual`?"
    assert help_text == "write `counterfactual`"


@pytest.mark.parametrize(
    ("text", "where", "suggestion"),
    [
        ('sm s { var W = "w" }', (1, 1), "scm"),
        ('scm s {\n  vr W = "w"\n}', (2, 3), "var"),
        ('scm s {\n  var W = "w"\n  counterfactual c { do(W = "x") edit refin { } }\n}',
         (3, 39), "refine"),
        ('scm s {\n  var W = "w"\n  counterfactual c { od(W = "x") }\n}', (3, 22), "do"),
        ('scm s {\n  Prompt "a w"\n}', (2, 3), "prompt"),
    ],
)
def test_misspelt_keywords(text: str, where: tuple[int, int], suggestion: str) -> None:
    [(line, column, message, _)] = errors(text)
    assert (line, column) == where
    assert f"did you mean `{suggestion}`?" in message


def test_an_unknown_word_is_not_forced_into_a_keyword() -> None:
    # `banana` is far from every keyword: a plain syntax error, no suggestion.
    [(_, _, message, _)] = errors('scm s {\n  banana W = "w"\n}')
    assert "did you mean" not in message


def test_unclosed_block_is_reported_where_the_next_item_starts() -> None:
    text = ('scm s {\n  var W = "w"\n  counterfactual c { do(W = "x")\n  var X = "x"\n'
            "  W -> X\n}\n")
    [(line, column, message, help_text)] = errors(text)
    assert (line, column) == (4, 3)
    assert message == "expected `}`, found `var`"
    assert help_text == "close the block with `}` before this line"


def test_unclosed_spec_before_the_next_spec() -> None:
    text = 'scm a {\n  var W = "w"\nscm b {\n  var Y = y\n}\n'
    assert [(line, column) for line, column, *_ in errors(text)] == [(3, 1), (4, 11)]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("scm s {\n  var W = 'woman'\n  var X = x\n}", [(2, 11), (3, 11)],
         "strings use double quotes"),
        ('scm s {\n  prompt "A w.\n  var X = x\n}', [(2, 10), (3, 11)], "unterminated string"),
        ('scm s {\n  {{ W }}\n  var X = x\n}', [(2, 3), (3, 11)],
         "a template placeholder outside a string"),
        ('scm s {\n  var W @@@ = "w"\n  var X = x\n}', [(2, 9), (3, 11)],
         "unexpected character `@`"),
    ],
)
def test_bad_characters_then_the_next_error(text: str, where: list[tuple[int, int]],
                                            message: str) -> None:
    found = errors(text)
    assert [(line, column) for line, column, *_ in found] == where
    assert found[0][2] == message


def test_one_mistake_one_diagnostic() -> None:
    # A broken item is dropped whole: the words after the error are not read as new items.
    text = 'scm s {\n  var W = "w" "d" "e" f g h\n  var X = "x"\n  W -> X\n}\n'
    assert len(errors(text)) == 1
    text = 'scm s {\n  var W = "w"\n  counterfactual c { do(W = ) set = "y" }\n}\n'
    assert len(errors(text)) == 1


def test_errors_in_separate_blocks_are_all_reported() -> None:
    text = "".join(f'scm s{i} {{\n  var W = w{i}\n}}\n' for i in range(5))
    assert [(line, column) for line, column, *_ in errors(text)] == [
        (2 + 3 * i, 11) for i in range(5)]


def test_reporting_stops_after_the_limit() -> None:
    text = "".join(f'scm s{i} {{\n  var W = w{i}\n}}\n' for i in range(MAX_ERRORS + 20))
    parsed = check(SourceFile("f.scm", text), Config())
    assert len(parsed.diagnostics) == MAX_ERRORS
    assert "too many errors" in parsed.diagnostics[-1].notes[-1]


def test_lint_parse_returns_nothing_but_the_editor_parse_keeps_the_rest() -> None:
    text = ('scm s {\n  var W = woman\n  var C = "cake"\n  W -> C\n'
            '  counterfactual c { do(C = "pie") }\n}\n')
    bag = DiagnosticBag(SourceFile("f.scm", text))
    assert parse(bag.source, bag) is None
    bag = DiagnosticBag(SourceFile("f.scm", text))
    module = parse_partial(bag.source, bag)
    assert module is not None and len(bag.items) == 1
    [spec] = module.specs
    assert [v.name.text for v in spec.variables] == ["C"]
    assert [cf.name.text for cf in spec.counterfactuals] == ["c"]
    assert len(spec.edges) == 1


def test_the_editor_parse_closes_blocks_left_open_at_the_end() -> None:
    text = 'scm s {\n  var W = "w"\n  counterfactual c { do(W = "x")'
    bag = DiagnosticBag(SourceFile("f.scm", text))
    module = parse_partial(bag.source, bag)
    assert [d.message.split(";")[0] for d in bag.items] == ["unexpected end of file"]
    assert module is not None and module.specs[0].counterfactuals[0].name.text == "c"


def test_a_clean_file_takes_the_fast_path() -> None:
    text = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")
    bag = DiagnosticBag(SourceFile("cake.scm", text))
    module = parse_partial(bag.source, bag)
    assert module is not None and not bag.items and module.comments


def test_distance_and_closest_keyword() -> None:
    assert distance("vra", "var") == 1  # a swap of neighbours is one edit
    assert distance("counterfacual", "counterfactual") == 1
    assert closest_keyword("promt", {"PROMPT", "VAR"}) == "PROMPT"
    assert closest_keyword("xyz", {"PROMPT", "VAR"}) is None
    assert closest_keyword("var", {"VAR"}) is None  # spelt right: not a misspelling
    assert closest_keyword("W", {"DO", "ID"}) is None  # one letter is no keyword's typo


def test_misspelt_placeholder_gets_a_did_you_mean_and_nothing_else() -> None:
    parsed = check(SourceFile.read(INVALID / "undefined-variable-case.scm"), Config())
    [d] = parsed.diagnostics
    assert d.code.name == "undefined-variable" and d.help == "did you mean `C`?"


@pytest.mark.parametrize(
    ("text", "where", "inserted"),
    [
        ('scm s {\n  var W = "w"\n  counterfactual man do(W = "x") }\n  var X = "x"\n'
         "  W -> X\n}\n", (3, 22), "{"),
        ('scm s {\n  var W = "w"\n  counterfactual man { do(W = "x" }\n  var X = "x"\n'
         "  W -> X\n}\n", (3, 35), ")"),
        ('scm s {\n  var W "w"\n  var X = "x"\n  W -> X\n}\n', (2, 9), "="),
        ('scm s {\n  var W = "w"\n  var X = "x"\n  W -> X\n  counterfactual c {\n'
         '    do(W = "x")\n    edit { cross_replace [0.1, 0.5 }\n  }\n}\n', (7, 36), "]"),
    ],
)
def test_a_missing_punctuation_token_is_read_as_if_there(
        text: str, where: tuple[int, int], inserted: str) -> None:
    [(line, column, _, help_text)] = errors(text)
    assert (line, column) == where
    assert help_text is not None and help_text.startswith(f"insert `{inserted}` before")
    bag = DiagnosticBag(SourceFile("f.scm", text))
    module = parse_partial(bag.source, bag)
    assert module is not None  # nothing after the mistake is lost
    [spec] = module.specs
    assert [v.name.text for v in spec.variables] == ["W", "X"] and len(spec.edges) == 1


# --- several errors in one statement, block or list ---------------------------------------------


def syntax_errors(text: str) -> list[tuple[str, int, int]]:
    """(code, line, column) of every diagnostic, in order."""
    parsed = check(SourceFile("f.scm", text), Config())
    return [(d.code.name, d.span.line, d.span.column) for d in parsed.diagnostics]


def test_the_three_mistakes_users_reported_are_three_diagnostics() -> None:
    # A misspelt keyword, a `var` with no name, an edge with no target: the edge's line ends
    # early, so the parser reads the next line's `W` as its target; the error is still reported
    # at the end of the short line, and the next line is read as the edge it is.
    text = ('scm cake {\n'
            '  promt "A {{ W }} is cutting a {{ C }}."\n'
            '  var = "x"\n'
            '  var W = "woman"\n'
            '  var C = "cake"\n'
            '  W ->\n'
            '  W -> C\n'
            '  counterfactual man { do(W = "man") }\n'
            '}\n')
    assert syntax_errors(text) == [
        ("syntax-error", 2, 3), ("syntax-error", 3, 7), ("syntax-error", 6, 5)]
    messages = [m for *_, m, _ in errors(text)]
    assert messages[2] == "expected a name, found the end of the line"
    bag = DiagnosticBag(SourceFile("f.scm", text))
    module = parse_partial(bag.source, bag)
    assert module is not None
    [spec] = module.specs
    assert [(e.source.text, e.target.text) for e in spec.edges] == [("W", "C")]
    assert [v.name.text for v in spec.variables] == ["W", "C"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param('scm s {\n  var W = "w"\n  counterfactual c {\n    do(W = )\n'
                     '    set W = pie\n  }\n}\n', [(4, 12), (5, 13)], id="counterfactual-lines"),
        pytest.param('scm s {\n  var W = "w"\n  counterfactual c { do(W = ) set W = pie }\n}\n',
                     [(3, 29), (3, 39)], id="counterfactual-one-line"),
        pytest.param('scm s {\n  var W = "w"\n  counterfactual c {\n    do(W = "m")\n'
                     '    edit {\n      cross_replace x\n      self_replace y\n    }\n  }\n}\n',
                     [(6, 21), (7, 20)], id="edit-lines"),
        pytest.param('scm s {\n  var W = "w"\n  counterfactual c {\n    do(W = "m")\n'
                     '    edit { cross_replace x self_replace y }\n  }\n}\n',
                     [(5, 26), (5, 41)], id="edit-one-line"),
        pytest.param('scm s {\n  var W = "w"\n  counterfactual c {\n    do(W = "m")\n'
                     '    edit {\n      blend "a" ->\n      threshold "t"\n    }\n  }\n}\n',
                     [(7, 7), (7, 17)], id="edit-blend-then-threshold"),
        pytest.param('scm s {\n  var W = "w"\n  counterfacual c { do(W = ) }\n}\n',
                     [(3, 3), (3, 28)], id="misspelt-then-error"),
        pytest.param('scm s {\n  var W = "w"\n  counterfactual c {\n    do(W = "m")\n'
                     '    edit refin { cross_replace x }\n  }\n}\n',
                     [(5, 10), (5, 32)], id="misspelt-edit-type-then-error"),
        pytest.param('scm s {\n  var W = "w"\n  counterfactual c { od(W = ) set W = y }\n}\n',
                     [(3, 22), (3, 29), (3, 39)], id="three-in-one-block"),
        pytest.param('scm s {\n  var W = w\n  var C = c\n  var K = k\n}\n',
                     [(2, 11), (3, 11), (4, 11)], id="consecutive-lines"),
        pytest.param('scm s {\n  var W = "w"\n  W ->\n  var X = x\n}\n', [(3, 5), (4, 11)],
                     id="edge-cut-short-then-error"),
        pytest.param('scm s {\n  var W:\n  var X = x\n}\n', [(2, 8), (3, 11)],
                     id="kind-cut-short-then-error"),
        pytest.param('scm s {\n  var W = "w"\n  W ->\n  var = "x"\n}\n', [(3, 5), (4, 7)],
                     id="edge-cut-short-then-nameless-var"),
    ],
)
def test_every_mistake_in_one_statement_or_block(text: str, where: list[tuple[int, int]]) -> None:
    assert syntax_errors(text) == [("syntax-error", line, column) for line, column in where]


@pytest.mark.parametrize(
    ("text", "where", "kept"),
    [
        # The broken elements are dropped; the others are kept, and checked.
        ('scm s {\n  var W = "w"\n  counterfactual c { do(W = , C = "x", K "y") }\n}\n',
         [(3, 29), (3, 42)], ["C", "K"]),
        ('scm s {\n  var W = "w"\n  counterfactual c { do(W = "a", C = , K = "b", Q = ) }\n}\n',
         [(3, 38), (3, 53)], ["W", "K"]),
        ('scm s {\n  var W = "w"\n  counterfactuals g {\n    do(W in ["a", b, "c"], C = )\n'
         '    set K = z\n  }\n}\n', [(4, 19), (4, 32), (5, 13)], ["W"]),
    ],
)
def test_every_mistake_in_one_do_list(text: str, where: list[tuple[int, int]],
                                      kept: list[str]) -> None:
    assert syntax_errors(text) == [("syntax-error", line, column) for line, column in where]
    bag = DiagnosticBag(SourceFile("f.scm", text))
    module = parse_partial(bag.source, bag)
    assert module is not None
    [block] = module.specs[0].blocks
    written = block.grid if isinstance(block, ast.CounterfactualSet) else block.interventions
    assert [a.target.text for a in written] == kept


def test_a_value_list_keeps_its_good_values() -> None:
    text = 'scm s {\n  var W = "w"\n  counterfactuals g { do(W in ["a", b, "c"]) }\n}\n'
    bag = DiagnosticBag(SourceFile("f.scm", text))
    module = parse_partial(bag.source, bag)
    assert module is not None and len(bag.items) == 1
    [block] = module.specs[0].blocks
    assert isinstance(block, ast.CounterfactualSet)
    [choice] = block.grid
    assert isinstance(choice, ast.Choice)
    assert [v.value for v in choice.values if isinstance(v, ast.Text)] == ["a", "c"]


@pytest.mark.parametrize(
    "text",
    [
        # One mistake each, however the parse goes on after it: one diagnostic.
        'scm s {\n  var W = "w"\n  counterfactual c { do(R ["a", "b", "c"]) }\n}\n',
        'scm s {\n  var W = "w"\n  counterfactual c { do(W , none) }\n}\n',
        'scm s {\n  var W = "w"\n  counterfactual c { edit { cross_replace [, 0.5] } }\n}\n',
        'scm s {\n  var W = "w"\n  counterfactual c { edit { cross_replace uniform(x, 1) } }\n}\n',
        'scm s {\n  var W = "w"\n  counterfactual c = do(W = "m")\n    set W = none\n'
        '    prompt "p"\n    edit refine { cross_replace 0.8 }\n  }\n}\n',
        'scm s {\n  var W = "w"\n  counterfactual c {\n    do(W = "m")\n  } W = none\n'
        '    prompt "p"\n    edit refine { cross_replace 0.8 }\n  }\n}\n',
        'scm s {\n  var W = "w"\n  counterfactual c var do(W = "m") }\n}\n',
        'scm s {\n  var W = var "d"\n}\n',
    ],
)
def test_one_mistake_one_diagnostic_after_any_way_on(text: str) -> None:
    assert len(syntax_errors(text)) == 1, errors(text)
