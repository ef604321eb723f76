"""Syntax-error recovery: every syntax error in a file, each once, at its own position, with a
did-you-mean for a misspelt keyword, and no follow-on errors from one mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lang.parser import parse, parse_partial
from cfspec.lang.recovery import MAX_ERRORS, closest_keyword, distance
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
