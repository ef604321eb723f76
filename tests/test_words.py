"""One word API (`cfspec.lang.words`): lint, compile and the report find and align words alike."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cfspec.compile.stage import compile_paths
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lang.words import align, find_phrase, key_places, normalize, split_words
from cfspec.lint import check
from cfspec.stages.html_report import _prompt_pieces, highlight
from cfspec.workspace.pairs import Pair


def words(text: str) -> list[str]:
    return [w for w, _, _ in split_words(text)]


def test_a_phrase_skips_punctuation_and_answers_word_indices() -> None:
    prompt = words("a knife, fork and plate.")
    assert find_phrase(prompt, "knife fork") == [1, 3]  # the comma (2) is never named
    assert find_phrase(prompt, "Knives, forks") == [1, 3]
    assert find_phrase(prompt, "fork plate") == []  # `and` stands between them
    assert find_phrase(prompt, ",") == [] and find_phrase(prompt, "") == []
    assert find_phrase(words("a dog, a dog"), "a dog") == [0, 1]  # the first place


def test_key_places_finds_every_run_of_keys_and_skips_masked_ones() -> None:
    keys = ["a", "a", "a", None, "a", "b"]
    assert list(key_places(keys, ["a", "a"])) == [0, 1]  # overlapping places, in order
    assert list(key_places(keys, ["a", "b"])) == [4]
    assert list(key_places(keys, ["a", "a", "a", "a"])) == []  # None (a masked word) stops it
    assert list(key_places(keys, [])) == [] and list(key_places([], ["a"])) == []
    assert list(key_places(tuple(keys), ("a", "b"))) == [4]  # any sequence of keys


SEPARATORS = [" ", ", ", " ; ", ". ", " - "]
NOUNS = ["knife", "fork", "plate", "cup", "bowl", "spoon", "table"]


def _written(items: list[str], seps: list[str]) -> str:
    return items[0] + "".join(s + w for s, w in zip(seps, items[1:], strict=False))


@st.composite
def prompt_and_phrase(draw: st.DrawFn) -> tuple[str, str]:
    items = draw(st.lists(st.sampled_from(NOUNS), min_size=1, max_size=6))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(items), max_size=len(items)))
    start = draw(st.integers(0, len(items) - 1))
    size = draw(st.integers(1, 3))
    phrase_words = items[start : start + size]
    if draw(st.booleans()):  # sometimes a phrase that is not in the prompt as written
        phrase_words = draw(st.lists(st.sampled_from(NOUNS), min_size=1, max_size=3))
    phrase_seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=3, max_size=3))
    return "a cat with " + _written(items, seps) + ".", _written(phrase_words, phrase_seps)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=prompt_and_phrase())
def test_lint_and_compile_look_words_up_alike(case: tuple[str, str], tmp_path: Path) -> None:
    """Every blend/reweight word lookup: found by both at the same words, or an error in lint
    and no pair from compile."""
    prompt, phrase = case
    text = (f'scm s {{ prompt "{prompt}" var A = "cat" var B: latent = "b" B -> A\n'
            f'  counterfactual w {{ do(A = "dog") edit {{ blend "{phrase}"\n'
            f'    reweight "{phrase}" 2 }} }} }}\n')
    spec = tmp_path / "spec.scm"
    spec.write_text(text, encoding="utf-8")
    codes = [d.code.name for d in check(SourceFile(str(spec), text), Config()).diagnostics
             if d.level.value == "error"]
    assume(set(codes) <= {"edit-word-not-found"})
    result = compile_paths([str(spec)], Config(), tmp_path / "out")
    wanted = [normalize(w) for w in words(phrase) if any(ch.isalnum() for ch in w)]
    if codes:
        assert result.pairs == []
        assert [d.code.name for d in result.diagnostics if d.level.value == "error"] == codes
        return
    (pair,) = result.pairs
    edit = pair["edit"]
    tokens_0, tokens_1 = edit["alignment"]["tokens_0"], edit["alignment"]["tokens_1"]
    # Word-level tokens: token k is word k - 1 of the prompt, so the indices are find_phrase's.
    found_1 = [k + 1 for k in find_phrase(words(pair["prompt_1"]), phrase)]
    assert edit["equalizer"]["tokens"] == [found_1]
    assert [normalize(tokens_1[k]) for k in found_1] == wanted  # the words, not a comma
    found_0 = [k + 1 for k in find_phrase(words(pair["prompt_0"]), phrase)]
    assert edit["local_blend"]["tokens_0"] == found_0
    assert [normalize(tokens_0[k]) for k in found_0] == wanted
    assert edit["local_blend"]["tokens_1"] == found_1


def _marked(pieces: list[dict[str, str]]) -> list[str]:
    return [p["text"] for p in pieces if p["kind"] == "changed"]


def test_the_reports_highlight_is_compiles_alignment_on_a_swap(tmp_path: Path) -> None:
    text = ('scm s { prompt "a {{ X }} and a {{ Y }}" var X = "cat" var Y = "dog"\n'
            '  var B: latent = "b" B -> X B -> Y\n'
            '  counterfactual w { do(X = "dog", Y = "cat") } }\n')
    spec = tmp_path / "spec.scm"
    spec.write_text(text, encoding="utf-8")
    result = compile_paths([str(spec)], Config(max_interventions=2), tmp_path / "out")
    assert [d for d in result.diagnostics if d.level.value == "error"] == []
    (record,) = result.pairs
    # What the report shows of the pair, from the pair record as the report reads it.
    shown_0, shown_1 = _prompt_pieces(Pair.from_json(record))
    assert "".join(p["text"] for p in shown_0) == "a cat and a dog"
    assert _marked(shown_0) == ["cat", "dog"] and _marked(shown_1) == ["dog", "cat"]
    # ... which is compile's alignment: its changes, word by word.
    ops = [op for op in align(words("a cat and a dog"), words("a dog and a cat"))
           if op[0] != "equal"]
    assert ops == [("replace", 1, 2, 1, 2), ("replace", 4, 5, 4, 5)]
    assert _marked(highlight("a dog", [[2, 5]])) == ["dog"]


def test_word_names_are_imported_from_words() -> None:
    """`cfspec.lang.words` is the one home of the word API: no module imports its names
    through `cfspec.lang.prompt`."""
    import ast

    import cfspec.lang.words as words_module

    root = Path(__file__).resolve().parent.parent
    names = {n for n in vars(words_module) if not n.startswith("_")}
    found = []
    for folder in ("cfspec", "tests", "benchmarks"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "cfspec.lang.prompt":
                    found += [f"{path.name}: {a.name}" for a in node.names if a.name in names]
    assert found == []
