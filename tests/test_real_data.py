"""Right on data nobody here wrote: the COCO-Counterfactuals and SocialCounterfactuals slices in
../shared/data/real, and the failures found by running cfspec on them as a new user would.

Each test names the behaviour it guards; the ones marked "was:" failed before the fix.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.compile.stage import compile_paths
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.source import SourceFile
from cfspec.importers import ImportOptions, detect, import_source
from cfspec.lang.config import Config
from cfspec.lang.prompt import close_gaps, parse_template, render
from cfspec.lang.words import normalize
from cfspec.lint import check

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "real"
COCO = REAL / "coco_counterfactuals_captions_1-5000.jsonl"
SOCIAL = REAL / "social_counterfactuals_race_gender_1-60.jsonl"
SUGARCREPE = REAL / "sugarcrepe_1-100"
needs_real = pytest.mark.skipif(not COCO.is_file(), reason="../shared/data/real is not here")

sys.path.insert(0, str(ROOT / "benchmarks"))
from real_data import measure, single_run, single_swap, sugarcrepe_rows  # noqa: E402

runner = CliRunner()


def coco_line(pair_id: str, c0: str, c1: str) -> str:
    return json.dumps({"coco-counterfactual-index": pair_id, "original_caption": c0,
                       "counterfactual_caption": c1})


def imported(text: str, name: str = "pairs.jsonl", fix: bool = False) -> list:
    return import_source(SourceFile(name, text), options=ImportOptions(fix=fix))


def names(diagnostics: list) -> list[str]:
    return [d.code.name for d in diagnostics]


def errors(diagnostics: list) -> set[str]:
    return {d.code.name for d in diagnostics if d.level is Severity.ERROR}


# --- the slices ---------------------------------------------------------------------------------


@needs_real
def test_a_sample_of_coco_counterfactuals_imports_and_compiles_exactly(tmp_path: Path) -> None:
    """Every 10th line of the published caption file (500 pairs): no crash, every single-word
    swap imported as exactly that swap, every id kept. benchmarks/real_data.py runs it all."""
    lines = COCO.read_text(encoding="utf-8").splitlines(keepends=True)[::10]
    sample = tmp_path / "sample.jsonl"
    sample.write_text("".join(lines), encoding="utf-8")
    result = measure(sample)
    assert result.crashes == []
    assert result.items == len(lines) and result.ids_kept == result.ids_total == len(lines)
    assert result.swaps > 0.95 * len(lines)
    assert result.swaps_wrong == [], result.swaps_wrong[:5]
    assert result.pairs >= result.swaps


@needs_real
def test_social_counterfactuals_import_every_output() -> None:
    """was: only `output_1` was imported, with an `extra-counterfactuals` warning; now each row
    is one spec with a counterfactual per output (tests/test_import_sets.py has the rest)."""
    items = import_source(SourceFile(str(SOCIAL), SOCIAL.read_text(encoding="utf-8")))
    assert len(items) == 60
    assert [i.item_id for i in items[:2]] == ["race_gender_barber",
                                              "a_photo_of_race_gender_barber"]
    for item in items:
        assert item.verdict == "clean"
        assert names(item.diagnostics) == ["empty-graph"]
        assert list(item.interventions.values()) == ["female"]
        assert len(item.written) == 11


@needs_real
@pytest.mark.parametrize("category", ["add_att", "add_obj", "replace_att", "replace_obj",
                                      "replace_rel", "swap_att", "swap_obj"])
def test_sugarcrepe_slice(category: str) -> None:
    """Issue 23, on the first 100 pairs of each SugarCrepe file (read through the benchmark's
    converter until import reads SugarCrepe's own shape): no crash, no internal error; every
    pair whose captions differ in one contiguous run (case and punctuation aside) imports as
    one intervention and compiles to exactly the two captions (was: 7% were not compiled,
    multi-word phrases split into `too-many-interventions`); a swap shows two interventions,
    said as a swap."""
    result = measure(SUGARCREPE / f"{category}.json")
    assert result.items == 100 and result.crashes == [] and result.internal_errors == 0
    assert result.single_run_wrong == [], result.single_run_wrong[:5]
    if category.startswith(("add", "replace")):
        assert result.single_run >= 70
    else:  # swaps are two interventions, and the spec says which two things changed places
        assert result.interventions[2] >= 90 and result.swaps_noted >= 90
        assert result.diagnostics["too-many-interventions (error)"] >= 99


@needs_real
def test_sugarcrepe_agreement_compiles_with_one_intervention() -> None:
    """`A little boy ... his blanket` -> `A little girl ... her blanket`, and the like: the
    possessive is a consequence (`set`), the pair compiles to exactly the two captions (was:
    two interventions)."""
    rows = json.loads((SUGARCREPE / "replace_obj.json").read_text(encoding="utf-8"))
    agreeing = {k: r for k, r in rows.items() if any(
        p in r["caption"].split() and q in r["negative_caption"].split()
        for p, q in (("his", "her"), ("her", "his")))}
    assert len(agreeing) >= 5
    text = sugarcrepe_rows(json.dumps(agreeing), "replace_obj")
    assert text is not None
    for item, (key, row) in zip(imported(text), agreeing.items(), strict=True):
        assert item.verdict == "clean" and len(item.interventions) == 1, (key, item.scm)
        assert set(item.sets.values()) <= {"his", "her"} and item.sets, (key, item.scm)
        parsed = check(SourceFile("x.scm", item.scm), Config())
        (cm,) = parsed.models[0].counterfactuals
        assert cm.prompt_1 is not None
        assert cm.prompt_1.text.strip() == row["negative_caption"].strip()


def test_single_run_definition() -> None:
    assert single_run("A stop sign here.", "a traffic light here")
    assert single_run("A dog.", "A big dog.") and single_run("A big dog.", "A dog.")
    assert not single_run("A dog.", "a dog")  # nothing changed
    assert not single_run("A cat on a couch.", "A dog in a kitchen.")  # `a` between
    assert not single_run("smiling and", "a child is smiling")  # a shared word: ambiguous
    assert sugarcrepe_rows('{"0": {"caption": "a", "negative_caption": "b"}}', "x") == \
        '{"id": "x_0", "caption_0": "a", "caption_1": "b"}\n'
    assert sugarcrepe_rows('[1]', "x") is None


def test_published_keys_are_detected_as_caption_pairs() -> None:
    """was: `original_caption`/`counterfactual_caption` went to the LLM reader (syntax-error
    `no SCM` on every line)."""
    assert detect(coco_line("1_0", "A dog.", "A cat.")) == "coco-cf"
    assert detect(json.dumps({"caption": "a man", "output_1": "a woman"})) == "coco-cf"
    assert detect(json.dumps({"original_prompt": "a", "SCM": []})) == "llm-json"


# --- ids ----------------------------------------------------------------------------------------


def test_dataset_ids_are_kept_and_pair_ids_begin_with_them(tmp_path: Path) -> None:
    """was: `coco-counterfactual-index` was dropped and specs were `captions_1`, ..."""
    items = imported(coco_line("158956_0", "A woman cuts a cake.", "A baker cuts a cake."))
    assert items[0].item_id == "158956_0"
    (tmp_path / "a.scm").write_text(items[0].scm, encoding="utf-8")
    result = compile_paths([str(tmp_path / "a.scm")], Config(), tmp_path / "out")
    assert [p["id"] for p in result.pairs] == ["158956_0__baker"]


@pytest.mark.parametrize("raw, expected, noted", [
    ('"id": 1', "answers_1", True),  # was: written as 1.scm
    ('"id": "../../x"', "x", True),
    ('"pair_id": "a_1"', "a_1", False),
    ('"image_id": 42', "answers_42", True),
])
def test_id_policy(raw: str, expected: str, noted: bool) -> None:
    first_item = "{" + raw + ', "caption_0": "A dog runs.", "caption_1": "A cat runs."}'
    text = f'[{first_item}, {{"caption_0": "A red car.", "caption_1": "A blue car."}}]'
    first, second = imported(text, "answers.json")
    assert first.item_id == expected
    assert ("written as" in first.scm) is noted
    assert second.item_id == "answers_line1"  # no id: the file's stem and the item's line


# --- alignment ----------------------------------------------------------------------------------


@pytest.mark.parametrize("c0, c1, old, new", [
    # was: the variable swallowed the unchanged words after it
    ("a room with a couch and a tv in it", "a room with a couch and a table in it", "tv",
     "table"),
    ("a dog sits on a step perking its ears up", "a dog sits on a step perking its head up",
     "ears", "head"),
    # was: a word repeated elsewhere split the swap into an insertion and a deletion
    ("a tennis player stretching to hit a tennis ball ",
     "a tennis ball stretching to hit a tennis ball", "player", "ball"),
    ("This is a man fixing his kite with a woman on his left and a man to his back right.",
     "This is a boy fixing his kite with a woman on his left and a man to his back right.",
     "man", "boy"),
    ("A man on a laptop in a coffee shop.", "A laptop on a laptop in a coffee shop.", "man",
     "laptop"),
])
def test_single_word_swaps_are_that_swap(c0: str, c1: str, old: str, new: str) -> None:
    (item,) = imported(coco_line("x_0", c0, c1))
    assert item.verdict == "clean", [d.message for d in item.diagnostics]
    assert item.edit == "replace" and item.sets == {}
    assert list(item.interventions.values()) == [new]
    parsed = check(SourceFile("x.scm", item.scm), Config())
    (name,) = parsed.models[0].counterfactuals[0].interventions
    assert parsed.models[0].words()[name] == old


def test_separate_changes_are_separate_interventions_each_labelled() -> None:
    """was: `cat on a couch` -> `dog in a kitchen` became one intervention. A contiguous run
    of changed words is one change (`cat on` -> `dog in`); the unchanged `a` parts it from the
    next (was, before issue 23: three, one per substituted word)."""
    (item,) = imported(coco_line("x_0", "A cat on a couch.", "A dog in a kitchen."))
    assert sorted(item.interventions.values()) == ["dog in", "kitchen"]
    (too_many,) = [d for d in item.diagnostics if d.code.name == "too-many-interventions"]
    labelled = {too_many.span.column, *(lb.span.column for lb in too_many.labels)}
    line = coco_line("x_0", "A cat on a couch.", "A dog in a kitchen.")
    columns = {line.index(w, line.index("counterfactual_caption")) + 1
               for w in ("dog in", "kitchen")}
    assert columns <= labelled


def test_an_intervention_and_its_descendant_keep_their_neighbours() -> None:
    answer = json.dumps({
        "original_prompt": "A woman is cutting a cake with a knife.",
        "counterfactual_prompt": "A man is slicing a cake with a knife.",
        "SCM": ["W → A: The woman causes the cutting.", "K → A: The knife is the tool.",
                "C → A: The cake is what is cut."],
        "SCM_aug": ["M → A: The man causes the slicing.", "K → A: The knife is the tool.",
                    "C → A: The cake is what is cut."],
    })
    (item,) = imported(answer, "answer.json")
    assert item.verdict == "clean", [d.message for d in item.diagnostics]
    assert item.interventions == {"W": "man"} and item.sets == {"A": "slicing"}


def test_single_swap_definition() -> None:
    assert single_swap("a dog  runs .", "a cat runs.") == ("dog", "cat")
    assert single_swap("a dog runs", "a big dog runs") is None
    assert single_swap("a dog runs", "a cat walks") is None


# --- caption artefacts --------------------------------------------------------------------------


PARKING = coco_line("162366_3", "They'll probably tow your car if you don't pay for parking.",
                    "They 'll probably tow your car if you don't pay for gas.")


def test_artefacts_are_a_warning_not_an_intervention() -> None:
    """was: `They'll` -> `They 'll` was a second intervention (too-many-interventions)."""
    (item,) = imported(PARKING)
    assert errors(item.diagnostics) == set()
    assert "caption-artefact" in names(item.diagnostics)
    assert list(item.interventions.values()) == ["gas"]
    assert "They 'll" in item.scm  # the caption is kept as written, and lints the same way
    relinted = check(SourceFile("x.scm", item.scm), Config())
    assert errors(relinted.diagnostics) == set()
    assert "caption-artefact" in names(relinted.diagnostics)


def test_fix_writes_the_counterfactual_the_way_the_original_is_written() -> None:
    (item,) = imported(PARKING, fix=True)
    assert "caption-artefact" not in names(item.diagnostics)
    assert "They 'll" not in item.scm and item.edit == "replace"
    relinted = check(SourceFile("x.scm", item.scm), Config())
    assert relinted.diagnostics == [] or names(relinted.diagnostics) == ["empty-graph"]
    assert any("the way the original is written" in f for f in item.fixes)


def test_punctuation_replaced_by_a_word_is_an_addition() -> None:
    """was: `mountain..` -> `mountain goats` reported `goats` as non-minimal; then (before
    issue 23) it extended `mountain`. Now the added word is an intervention on a variable the
    factual does not show, and the dropped `..` is writing only."""
    (item,) = imported(coco_line(
        "125072_0", "Cattle grazing on grass near a lake surrounded by mountain..",
        "Cattle grazing on grass near a lake surrounded by mountain goats"))
    assert errors(item.diagnostics) == set()
    assert item.interventions == {"Goats": "goats"}
    assert "var Goats = none" in item.scm and "mountain {{ Goats }}.." in item.scm


# --- rendering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("template, values, expected", [
    # A caption's own spacing is its own (was: a second renderer collapsed it).
    ("a teddy bear next to  a {{ T }} toy", {"T": "block"}, "a teddy bear next to  a block toy"),
    ("A cat walking up .", {}, "A cat walking up ."),
    ("A {{ X }} cat sits.", {"X": None}, "A cat sits."),
    ("{{ X }} cat sits.", {"X": None}, "cat sits."),
    ("A cat sits on {{ X }}.", {"X": None}, "A cat sits on."),
    ("A cat  {{ X }}  sits", {"X": None}, "A cat   sits"),  # one space goes with it
    ("A {{ X | a }} cat", {"X": None}, "A cat"),
    # was: Jinja dropped a caption's trailing newline -> CompileError (SugarCrepe)
    ("a man with a {{ X }}\n", {"X": "wiimote"}, "a man with a wiimote\n"),
    ("A {{ X }} white umbrella.", {"X": None}, "A white umbrella."),  # `var X = none`
])
def test_the_renderer_keeps_the_caption_as_written(template: str, values: dict,
                                                   expected: str) -> None:
    frame, problems = parse_template(template)
    assert problems == []
    assert render(frame, values).text == expected


def test_close_gaps_maps_offsets() -> None:
    text, where = close_gaps("a \ue000 b")
    assert text == "a b" and where[4] == 2 and where[-1] == 3


def test_an_internal_failure_is_a_diagnostic_and_the_other_specs_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cfspec.compile import pairs as compile_module

    good, bad = tmp_path / "good.scm", tmp_path / "bad.scm"
    good.write_text('scm good {\n  prompt "A {{ W }} runs."\n  var W = "dog"\n'
                    '  counterfactual cat { do(W = "cat") }\n}\n', encoding="utf-8")
    bad.write_text(good.read_text().replace("good", "bad"), encoding="utf-8")
    real = compile_module.compile_spec

    def broken(model, source_name, tokenizer=None, image=None):  # type: ignore[no-untyped-def]
        if model.spec.name.text == "bad":
            raise RuntimeError("a bug in cfspec")
        return real(model, source_name, tokenizer, image)

    monkeypatch.setattr(compile_module, "compile_spec", broken)
    result = compile_paths([str(good), str(bad)], Config(), tmp_path / "out", keep_going=True)
    (internal,) = [d for d in result.diagnostics if d.code.name == "internal-error"]
    assert internal.file == str(bad) and (internal.span.line, internal.span.column) == (1, 5)
    assert "RuntimeError: a bug in cfspec" in internal.message
    assert [p["id"] for p in result.pairs] == ["good__cat"]


# --- plurals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("singular, plural", [
    ("horse", "horses"), ("house", "houses"), ("vase", "vases"), ("rose", "roses"),
    ("nurse", "nurses"), ("bus", "buses"), ("knife", "knives"), ("leaf", "leaves"),
    ("baby", "babies"), ("man", "men"), ("woman", "women"), ("child", "children"),
    ("person", "people"), ("box", "boxes"), ("glass", "glasses"), ("potato", "potatoes"),
    ("shoe", "shoes"), ("glove", "gloves"), ("kiwi", "kiwis"), ("movie", "movies"),
    ("tooth", "teeth"), ("fireman", "firemen"), ("note", "notes"), ("lens", "lenses"),
])
def test_a_noun_and_its_plural_match(singular: str, plural: str) -> None:
    assert normalize(singular) == normalize(plural)


@needs_real
def test_plural_matching_agrees_with_inflect_on_the_datasets_nouns() -> None:
    """An outside oracle: for the singular nouns COCO-CF swaps, `inflect`'s plural gets the
    same key. Agreement must be near total (inflect itself errs on a few)."""
    inflect = pytest.importorskip("inflect")
    engine = inflect.engine()
    words: set[str] = set()
    for line in COCO.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        swap = single_swap(row["original_caption"], row["counterfactual_caption"])
        words |= {w.lower() for w in swap or () if w.isalpha() and len(w) > 2}
    singular = sorted(w for w in words if not engine.singular_noun(w))
    assert len(singular) > 1000
    missed = [w for w in singular if normalize(w) != normalize(engine.plural_noun(w))]
    assert len(missed) <= 0.005 * len(singular), missed


def test_literal_prompt_with_a_plural_binds(tmp_path: Path) -> None:
    """was: `two horses` with `var H = "horse"` gave span-not-in-prompt and a no-op."""
    parsed = check(SourceFile("h.scm", 'scm h {\n  prompt "two horses in a field"\n'
                              '  var H = "horse"\n  var F = "field"\n  H -> F\n'
                              '  counterfactual cows { do(H = "cows") }\n}\n'), Config())
    assert parsed.diagnostics == []
    assert parsed.models[0].counterfactuals[0].prompt_1.text == "two cows in a field"


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value, hint", [
    ("--select", "cylce", "did you mean `cycle`?"),
    ("--select", "SCM9", "matches no diagnostic code"),
    ("--ignore", "dupliate-edge", "did you mean `duplicate-edge`?"),
])
def test_a_selector_that_matches_nothing_is_a_usage_error(flag: str, value: str,
                                                          hint: str) -> None:
    """was: `--select cylce` printed `All checks passed` and exited 0."""
    result = runner.invoke(app, ["lint", "specs/invalid/cycle.scm", flag, value])
    assert result.exit_code == 2 and hint in result.output


def test_a_config_selector_that_matches_nothing_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.cfspec]\nignore = ["cylce"]\n')
    from cfspec.lang.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="did you mean `cycle`"):
        load_config(tmp_path)


def test_checking_nothing_is_a_usage_error(tmp_path: Path) -> None:
    """was: `cfspec lint specs/invalid/` said `All checks passed. (0 files checked)`, exit 0."""
    result = runner.invoke(app, ["lint", "specs/invalid/"])
    assert result.exit_code == 2 and "excluded by `exclude`" in result.output
    empty = runner.invoke(app, ["lint", str(tmp_path)])
    assert empty.exit_code == 2 and "no .scm file found" in empty.output


def test_graph_of_a_cyclic_spec_exits_1_and_a_bad_output_path_is_said(tmp_path: Path) -> None:
    cyclic = runner.invoke(app, ["graph", "specs/invalid/cycle.scm"])
    assert cyclic.exit_code == 1 and "digraph" in cyclic.output and "[cycle]" in cyclic.output
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = runner.invoke(app, ["graph", "specs/cake.scm", "-o", str(blocker / "sub.dot")])
    assert bad.exit_code == 2 and "is a file, not a folder" in bad.output


def test_prompt_asks_for_what_it_says() -> None:
    one = runner.invoke(app, ["prompt", "A dog."]).output
    three = runner.invoke(app, ["prompt", "A dog.", "--counterfactuals", "3"]).output
    assert "counterfactual(s)" not in one + three
    assert "and\none counterfactual." in one and "exactly\n3 counterfactuals" in three
    assert runner.invoke(app, ["prompt", "A dog.", "--shape", "json",
                               "--counterfactuals", "2"]).exit_code == 2


def test_help_has_no_type_placeholders_or_ragged_text() -> None:
    import subprocess

    commands = ["", "lint", "fmt", "compile", "graph", "prompt", "import", "run", "generate",
                "evaluate", "filter", "export", "report", "codes", "explain"]
    for command in commands:
        args = [sys.executable, "-m", "cfspec", *([command] if command else []), "--help"]
        shown = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                               env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"}).stdout
        assert shown.startswith("Usage: cfspec"), (command, shown[:200])
        for bad in ("<bool>", "<str>", "<int", "<list", "<path>", "<float>", "{PATHS"):
            assert bad not in shown, (command, bad)
    import typer

    from cfspec.cli.app import tidy_help

    root = tidy_help(typer.main.get_command(app))
    for command in [root, *root.commands.values()]:
        texts = [command.help or "", *(p.help or "" for p in command.params
                                       if p.param_type_name == "option")]
        for text in texts:  # reflowed: no hard-wrapped lines or doubled spaces
            assert "\n" not in text and "  " not in text, (command.name, text)


def test_import_of_a_folder_skips_its_readme(tmp_path: Path) -> None:
    """was: README.md was read as an LLM answer."""
    (tmp_path / "README.md").write_text("# My answers\nSee the files.\n")
    (tmp_path / "pairs.jsonl").write_text(coco_line("a_0", "A dog runs.", "A cat runs.") + "\n")
    result = runner.invoke(app, ["import", str(tmp_path), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_0.scm"]


def test_import_never_writes_through_a_link_in_its_folder(tmp_path: Path) -> None:
    """was: ValueError traceback when the target .scm was a symlink."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere.scm"
    out.mkdir()
    elsewhere.write_text("keep me")
    (out / "a_0.scm").symlink_to(elsewhere)
    source = tmp_path / "pairs.jsonl"
    source.write_text(coco_line("a_0", "A dog runs.", "A cat runs.") + "\n")
    result = runner.invoke(app, ["import", str(source), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert elsewhere.read_text() == "keep me"
    assert not (out / "a_0.scm").is_symlink() and "scm " in (out / "a_0.scm").read_text()


# --- linear time --------------------------------------------------------------------------------


def _answer(edges: list[str]) -> str:
    return json.dumps({"original_prompt": "A woman is cutting a cake with a knife.",
                       "counterfactual_prompt": "A man is cutting a cake with a knife.",
                       "SCM": edges, "SCM_aug": edges})


def _cycle(n: int) -> str:
    return _answer([f"V{i} → V{(i + 1) % n}: x" for i in range(n)])


def _two_cycles(n: int) -> str:
    return _answer([e for i in range(n // 2) for e in (f"A{i} → B{i}: x", f"B{i} → A{i}: y")])


def _long_edge(n: int) -> str:
    return _answer(["W → " + " ".join(f"w{i}" for i in range(n)) + ": x"])


def _cpu(text: str) -> float:
    start = time.process_time()
    import_source(SourceFile("a.json", text))
    return time.process_time() - start


@pytest.mark.parametrize("make, small", [(_cycle, 250), (_two_cycles, 250), (_long_edge, 4000)],
                         ids=["one-long-cycle", "many-two-cycles", "one-long-edge"])
def test_import_time_is_linear(make, small: int) -> None:  # type: ignore[no-untyped-def]
    """Importing 4x the input takes at most 2 x 4 = 8x the CPU time (was: quadratic). Each
    size is timed 3 times and the least kept: a collector pause or a busy neighbour only ever
    adds time, so the minimum is the measurement (the bound stays 8x)."""
    small_text, large_text = make(small), make(4 * small)
    t_small = max(min(_cpu(small_text) for _ in range(3)), 0.02)
    t_large = min(_cpu(large_text) for _ in range(3))
    assert t_large / t_small < 8, (t_small, t_large)


# What only the import sees in an answer: the row holds more counterfactuals than one spec, the
# answer states its graph more than once, or its text does not parse. The written .scm carries
# these as comments, so lint on it cannot report them again.
ANSWER_ONLY = {"extra-counterfactuals", "multiple-graphs", "syntax-error",
               "unexplained-graph-change"}


@needs_real
@pytest.mark.parametrize("path, rows", [(SOCIAL, 60), (COCO, 300)],
                         ids=["social-counterfactuals", "coco-counterfactuals"])
def test_import_and_lint_agree_on_real_data(path: Path, rows: int) -> None:
    """Import judges an answer with lint's own checks: on data nobody here wrote, every code it
    reports about the spec is the code lint reports on the .scm it writes, and no other."""
    text = "".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:rows])
    items = import_source(SourceFile(path.name, text))
    assert len(items) == rows
    for item in items:
        assert item.scm is not None
        own = Counter(d.code.name for d in item.diagnostics)
        again = Counter(d.code.name for d in check(SourceFile("x.scm", item.scm),
                                                    Config()).diagnostics)
        for name in ANSWER_ONLY:
            own.pop(name, None)
            again.pop(name, None)
        assert own == again, (item.item_id, item.scm)


def test_a_variable_on_an_edge_to_an_undefined_name_is_not_unused() -> None:
    """`H -> K` with K undeclared: K is the error; H takes part in an edge (found on the
    reference free-text answer, where import and lint disagreed about it)."""
    source = SourceFile("x.scm", 'scm s {\n  var H = "human"\n  var C = "cut"\n'
                        '  H -> K\n  K -> C\n  H -> C\n}\n')
    names = [d.code.name for d in check(source, Config()).diagnostics]
    assert "unused-variable" not in names and names.count("undefined-variable") == 2
    lonely = SourceFile("y.scm", 'scm s {\n  var H = "human"\n  var C = "cut"\n'
                        '  var L = "lamp"\n  H -> C\n}\n')
    [unused] = [d for d in check(lonely, Config()).diagnostics
                if d.code.name == "unused-variable"]
    assert (unused.span.line, unused.span.column) == (4, 7)
