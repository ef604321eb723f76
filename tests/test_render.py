"""One prompt renderer (`lang.prompt.render`): what it keeps, what it takes out, and that no
prompt a user can write, or import, makes the compiler fail (`internal-error`).

The strategies build templates from the outside, piece by piece, so the expected text is known
without asking the renderer: each placeholder becomes its words, every other character stays.
Jinja is the outside oracle for what a template means: the prompt language is a subset of its.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfspec.compile.stage import compile_paths
from cfspec.diagnostics.source import SourceFile
from cfspec.fmt import quote
from cfspec.importers import ImportOptions, import_source
from cfspec.lang.config import Config
from cfspec.lang.prompt import FILTERS, REMOVED, parse_template, render
from cfspec.lang.words import split_words

# Every way a caption separates words that users and datasets have sent, and more.
SEPARATORS = (" ", "  ", "\t", "\n", "\r\n", "\r", "\u2028", "\u2029", "\x85", "\xa0",
              "\u3000", "\u2009", "\x0b", "\x0c", " \n", "\n\n")
NAMES = ("A", "B", "Kx")
WORDS = ("horse", "apple", "old man", "Ice", "x-ray", "they'll", "état", "猫", "42")

separator = st.sampled_from(SEPARATORS)
ends = st.lists(separator, max_size=2).map("".join)
word = st.sampled_from(("a", "the", "cat", "sits", "on", ".", ",", "!", "(big)", "Über"))


@st.composite
def literal(draw: st.DrawFn) -> str:
    """Words and punctuation with any whitespace between them, and at either end."""
    parts = draw(st.lists(word, max_size=4))
    seps = draw(st.lists(separator, min_size=len(parts), max_size=len(parts)))
    return draw(ends) + "".join(p + s for p, s in zip(parts, seps, strict=True))


@st.composite
def placeholder(draw: st.DrawFn) -> tuple[str, str, tuple[str, ...]]:
    """`{{ NAME | filter }}` with any whitespace inside the braces."""
    name = draw(st.sampled_from(NAMES))
    filters = tuple(draw(st.lists(st.sampled_from(sorted(FILTERS)), max_size=2)))
    pad = st.sampled_from(("", " ", "  ", "\t", "\n", "\u2028", "\xa0", "\u3000"))
    text = "{{" + draw(pad) + name + draw(pad)
    for f in filters:
        text += "|" + draw(pad) + f + draw(pad)
    return text + "}}", name, filters


@st.composite
def template(draw: st.DrawFn) -> tuple[list[str | tuple[str, str, tuple[str, ...]]], str]:
    pieces: list[str | tuple[str, str, tuple[str, ...]]] = [draw(literal())]
    for _ in range(draw(st.integers(1, 3))):
        pieces += [draw(placeholder()), draw(literal())]
    text = "".join(p if isinstance(p, str) else p[0] for p in pieces)
    return pieces, text


values_strategy = st.fixed_dictionaries(
    {n: st.one_of(st.none(), st.builds(lambda e, w, f: e + w + f, ends, st.sampled_from(WORDS),
                                       ends)) for n in NAMES})


def expected_text(pieces: list, values: dict[str, str | None]) -> str:
    """The template with each placeholder replaced by its filtered words; removed ones empty."""
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        _, name, filters = piece
        words = values[name]
        if words is None:
            continue
        for f in filters:
            words = FILTERS[f](words)
        out.append(words)
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(template(), values_strategy)
def test_the_renderer_changes_nothing_but_the_placeholders(drawn: tuple, values: dict) -> None:
    pieces, text = drawn
    frame, problems = parse_template(text)
    assert problems == []
    kept = {n: (v if v is not None else "") for n, v in values.items()}
    bound = render(frame, kept)
    assert bound.text == expected_text(pieces, kept)
    # Every word is found where it stands, and a word wholly inside a slot is that slot's.
    assert [w.text for w in bound.words] == [w for w, _, _ in split_words(bound.text)]
    assert len(bound.slots or ()) == len(frame.slots)


@settings(max_examples=300, deadline=None)
@given(template(), values_strategy)
def test_a_removed_variable_takes_at_most_one_whitespace_character(drawn: tuple,
                                                                   values: dict) -> None:
    pieces, text = drawn
    frame, _ = parse_template(text)
    bound = render(frame, values)
    full = expected_text(pieces, values)
    removed = sum(1 for p in pieces if not isinstance(p, str) and values[p[1]] is None)
    assert REMOVED not in bound.text
    assert re.sub(r"\s", "", bound.text) == re.sub(r"\s", "", full)
    assert 0 <= len(full) - len(bound.text) <= 2 * removed  # `\r\n` is one line break


@pytest.mark.parametrize("template, expected", [
    ("A cat {{ X }}.", "A cat."),
    ("A cat\n{{ X }}\nsits", "A cat\nsits"),
    ("A cat\r\n{{ X }}\r\nsits", "A cat\r\nsits"),  # a line break is one, never half
    ("{{ X }}\r\ncat", "cat"),
    ("{{ X }}\tcat", "cat"),
    ("cat\u3000{{ X }}.", "cat."),
    ("cat\u2028{{ X }}\u2028sits\n", "cat\u2028sits\n"),
    ("{{ X }} {{ X }} cat", "cat"),
    ("cat {{ X }}", "cat"),
])
def test_a_removed_variable_takes_one_whitespace_character_of_any_kind(template: str,
                                                                      expected: str) -> None:
    frame, _ = parse_template(template)
    assert render(frame, {"X": None}).text == expected


def _jinja_env():  # type: ignore[no-untyped-def]
    jinja2 = pytest.importorskip("jinja2")
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                               keep_trailing_newline=True)
    env.filters = dict(FILTERS)
    env.globals = {}
    return env


@settings(max_examples=300, deadline=None)
@given(template(), values_strategy)
def test_a_template_means_what_it_means_in_jinja(drawn: tuple, values: dict) -> None:
    """The oracle, outside cfspec: Jinja reads the same placeholders and, where it keeps the
    text as written (no `\\r`, which its lexer turns into `\\n`, and its trailing newline
    kept), writes the same prompt."""
    from jinja2 import nodes

    pieces, text = drawn
    env = _jinja_env()
    frame, _ = parse_template(text)
    tree = env.parse(text)
    read = []
    for output in tree.find_all(nodes.Output):
        for node in output.nodes:
            if isinstance(node, nodes.TemplateData):
                continue
            filters: list[str] = []
            while isinstance(node, nodes.Filter):
                filters.insert(0, node.name)
                node = node.node
            assert isinstance(node, nodes.Name)
            read.append((node.name, tuple(filters)))
    assert read == [(s.variable, s.filters) for s in frame.slots]
    if "\r" not in text:
        kept = {n: (v if v is not None else "") for n, v in values.items()}
        assert env.from_string(text).render(kept) == render(frame, kept).text


# --- through the compiler -----------------------------------------------------------------------


def _spec(prompt: str, values: dict[str, str], cfs: list[tuple[str, str | None, str | None]],
          description: str | None = None) -> str:
    lines = ["scm s {", f"  prompt {quote(prompt)}"]
    lines += [f"  var {n} = {quote(v)}" for n, v in values.items()]
    lines += ["  A -> B" + (f" {quote(description)}" if description is not None else ""),
              "  B -> Kx"]
    for i, (name, new, literal_prompt) in enumerate(cfs):
        value = "none" if new is None else quote(new)
        own = f" prompt {quote(literal_prompt)}" if literal_prompt is not None else ""
        lines.append(f"  counterfactual c{i} {{ do({name} = {value}){own} }}")
    return "\n".join(lines + ["}"]) + "\n"


def _compile(tmp: Path, text: str):  # type: ignore[no-untyped-def]
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "s.scm").write_text(text, encoding="utf-8", newline="")
    return compile_paths([str(tmp / "s.scm")], Config(), tmp / "out", keep_going=True)


counterfactual = st.tuples(st.sampled_from(NAMES),
                           st.one_of(st.none(), st.sampled_from(("zebra", "an owl", " cat\n"))),
                           st.one_of(st.none(), literal()))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(template(), st.lists(counterfactual, min_size=1, max_size=3), st.booleans(),
       st.one_of(st.none(), literal()))
def test_no_prompt_a_user_can_write_is_an_internal_error(tmp_path_factory: pytest.TempPathFactory,
                                                         drawn: tuple, cfs: list,
                                                         as_literal: bool,
                                                         description: str | None) -> None:
    """Templates and literal captions with any whitespace, removed and replaced variables,
    literal counterfactual prompts, and edge descriptions with newlines: pairs.jsonl is
    written (its schema checked) and nothing is an internal error."""
    pieces, text = drawn
    values = {"A": "horse", "B": "old man", "Kx": "apple"}
    prompt = expected_text(pieces, values) if as_literal else text
    result = _compile(tmp_path_factory.mktemp("spec"), _spec(prompt, values, cfs, description))
    found = {d.code.name for d in result.diagnostics}
    assert "internal-error" not in found and "syntax-error" not in found
    for pair in result.pairs:
        # The factual prompt is the one written, every character of it.
        assert pair["prompt_0"] == expected_text(pieces, values)


@pytest.mark.parametrize("caption_0, caption_1", [
    ("two teddy bears at a table with honey\n", "two teddy bears at a table with jam\n"),
    ("A dog\r\non a  mat.\n", "A cat\r\non a  mat.\n"),
    ("\u3000A dog\u2028sits\x85here ", "\u3000A dog\u2028sleeps\x85here "),
    (" a\tbig\xa0dog\r", " a\tsmall\xa0dog\r"),
    ("A man rides a horse .\r\n", "A man rides a zebra .\r\n"),
])
def test_imported_captions_compile_to_themselves(tmp_path: Path, caption_0: str,
                                                 caption_1: str) -> None:
    """Was: 21 SugarCrepe captions ending in a newline were internal errors on compile."""
    line = json.dumps({"coco-counterfactual-index": "r1", "original_caption": caption_0,
                       "counterfactual_caption": caption_1})
    (item,) = import_source(SourceFile("pairs.jsonl", line + "\n"), "coco-cf", ImportOptions())
    result = _compile(tmp_path, item.scm)
    assert {d.code.name for d in result.diagnostics} <= {"empty-graph"}
    (pair,) = result.pairs
    assert (pair["prompt_0"], pair["prompt_1"]) == (caption_0, caption_1)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.sampled_from(("a", "cat", "sits", "on", "the", "red", "mat", ".")),
                min_size=2, max_size=7),
       st.lists(separator, min_size=8, max_size=8), ends, ends, st.integers(0, 6))
def test_any_imported_whitespace_compiles_without_internal_error(
        tmp_path_factory: pytest.TempPathFactory, words: list[str], seps: list[str],
        head: str, tail: str, at: int) -> None:
    at %= len(words)
    swapped = [*words]
    swapped[at] = "zebra"
    caption_0 = head + "".join(w + s for w, s in zip(words, seps, strict=False)).rstrip() + tail
    caption_1 = head + "".join(w + s for w, s in zip(swapped, seps, strict=False)).rstrip() + tail
    line = json.dumps({"coco-counterfactual-index": "r1", "original_caption": caption_0,
                       "counterfactual_caption": caption_1})
    (item,) = import_source(SourceFile("pairs.jsonl", line + "\n"), "coco-cf", ImportOptions())
    result = _compile(tmp_path_factory.mktemp("imp"), item.scm)
    assert "internal-error" not in {d.code.name for d in result.diagnostics}
    for pair in result.pairs:
        assert (pair["prompt_0"], pair["prompt_1"]) == (caption_0, caption_1)


def test_a_literal_caption_is_its_own_factual_prompt(tmp_path: Path) -> None:
    """Was: `Horses` found for `var H = "horse"` compiled to "two horse": the caption as
    written is the factual prompt; only a changed variable's words are substituted."""
    text = _spec("A man rides two Horses\non the BEACH.", {"A": "man", "B": "horse", "Kx": "beach"},
                 [("B", "zebras", None)])
    (pair,) = _compile(tmp_path, text).pairs
    assert pair["prompt_0"] == "A man rides two Horses\non the BEACH."
    assert pair["prompt_1"] == "A man rides two zebras\non the BEACH."
