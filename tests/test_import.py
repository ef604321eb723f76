"""`cfspec import`: LLM answers and caption pairs -> .scm specs.

Every input in tests/import_cases/ has a sidecar `<file>.expect` (TOML) stating, exactly, the
diagnostics the import reports (`name@line:column`, positions in the input file, `(warning)` or
`(note)` when the severity is not the code's default) and, per item, its verdict, its do() and
set assignments, its edit type and the counterfactual's name. `graph-choice` stands for the note
that says which of several graphs in a free-text answer was used (see GRAPH_CHOICE).

tests/import_cases/reference/ holds copies of shared/data/reference/, judged by the table below.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cfspec.cli.imports import import_command
from cfspec.diagnostics.codes import BY_NAME, Severity
from cfspec.diagnostics.records import Diagnostic
from cfspec.diagnostics.source import SourceFile
from cfspec.importers import (
    GRAPH_CHOICE,
    ImportedItem,
    ImportOptions,
    detect,
    import_file,
    import_source,
    safe_id,
)
from cfspec.importers.edges import scan
from cfspec.importers.jsonpos import JStr, parse
from cfspec.lang.config import Config
from cfspec.lint import check

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "import_cases"
REFERENCE = CASES / "reference"
SHARED_REFERENCE = Path("shared/data/reference")
INPUTS = sorted(p for p in CASES.iterdir() if p.is_file() and not p.name.endswith(".expect"))

# What only the import can see: the written .scm carries these as comments, not as code, so
# `cfspec lint` on it cannot find them again. `empty-graph` is an error for an LLM answer with
# no edges but only a warning for a .scm with variables and no edges.
IMPORT_ONLY = {"syntax-error", "unexplained-graph-change", "empty-graph"}


def _show(d: Diagnostic) -> str:
    name = "graph-choice" if d.code.name == GRAPH_CHOICE and d.level is Severity.NOTE \
        else d.code.name
    default = Severity.NOTE if name == "graph-choice" else d.code.severity
    severity = "" if d.level is default else f"({d.level.value})"
    return f"{name}@{d.span.line}:{d.span.column}{severity}"


def _expect(path: Path) -> dict[str, Any]:
    return tomllib.loads((path.parent / (path.name + ".expect")).read_text(encoding="utf-8"))


def _options(expect: dict[str, Any]) -> ImportOptions:
    return ImportOptions(
        fix=bool(expect.get("fix", False)),
        prompt=expect.get("prompt"),
        counterfactual_prompt=expect.get("counterfactual_prompt"),
    )


def _none(values: dict[str, str | None]) -> dict[str, str]:
    return {k: "(none)" if v is None else v for k, v in values.items()}


def _errors(diagnostics: list[Diagnostic]) -> set[str]:
    return {d.code.name for d in diagnostics if d.level is Severity.ERROR}


# --- the cases ------------------------------------------------------------------------------


def test_there_are_enough_cases() -> None:
    assert len(INPUTS) >= 40
    missing = [p.name for p in INPUTS if not (CASES / (p.name + ".expect")).is_file()]
    assert missing == []


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_case(path: Path) -> None:
    expect = _expect(path)
    items = import_file(path, expect.get("from", "auto"), _options(expect))
    found = [_show(d) for item in items for d in item.diagnostics]
    assert found == expect["diagnostics"], "\n".join(
        f"{_show(d)}  {d.message}" for item in items for d in item.diagnostics)
    wanted = expect.get("items", {})
    assert [i.item_id for i in items] == list(wanted)
    for item in items:
        want = wanted[item.item_id]
        assert item.verdict == want["verdict"]
        if "do" in want:
            assert _none(item.interventions) == want["do"]
            assert _none(item.sets) == want["set"]
            assert item.edit == want["edit"]
            assert item.counterfactual == want["counterfactual"]
        else:
            assert item.counterfactual is None


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_written_spec_relints_with_the_same_verdict(path: Path) -> None:
    expect = _expect(path)
    for item in import_file(path, expect.get("from", "auto"), _options(expect)):
        if item.scm is None:  # nothing could be read: it does not parse, or is not text
            assert _errors(item.diagnostics) in ({"syntax-error"}, {"invalid-encoding"})
            continue
        relinted = check(SourceFile(f"{item.item_id}.scm", item.scm), Config())
        assert relinted.module is not None, item.scm
        own, again = _errors(item.diagnostics), _errors(relinted.diagnostics)
        if "syntax-error" in own:
            continue  # what the reader could not read is missing from the .scm as well
        assert again <= own, item.scm
        assert own - IMPORT_ONLY == again - IMPORT_ONLY, item.scm
        assert [d.code.name for d in relinted.diagnostics] == \
            [d.code.name for d in item.relint]


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_positions_are_inside_the_input(path: Path) -> None:
    expect = _expect(path)
    for item in import_file(path, expect.get("from", "auto"), _options(expect)):
        for d in item.diagnostics:
            _check_position(d)


def _check_position(d: Diagnostic) -> None:
    lines = d.source.line_count
    for span in (d.span, *(lb.span for lb in d.labels)):
        assert 1 <= span.line <= lines and span.column >= 1
        assert (span.end_line, span.end_column) >= (span.line, span.column)
        assert 0 <= span.start <= span.end <= len(d.source.text)
        assert d.source.position(span.start) == (span.line, span.column)


def test_spans_point_at_the_offending_text() -> None:
    items = import_file(CASES / "json_cycle2.json")
    cycle = next(d for d in items[0].diagnostics if d.code.name == "cycle")
    text = cycle.source.text
    assert text[cycle.span.start:cycle.span.end] == "So → P"
    assert [text[lb.span.start:lb.span.end] for lb in cycle.labels] == ["P → So"]
    assert cycle.message == "cycle So -> P -> So in SCM"
    items = import_file(CASES / "json_two_interventions.json")
    (too_many,) = items[0].diagnostics
    assert too_many.source.text[too_many.span.start:too_many.span.end] == "pie"
    items = import_file(CASES / "text_undefined.txt")
    names = [d.source.text[d.span.start:d.span.end] for d in items[0].diagnostics]
    assert names == ["Ri", "Ri", "Sp"]


def test_escaped_json_strings_keep_exact_positions() -> None:
    text = '{"original_prompt": "A \\"big\\" dog runs.", "counterfactual_prompt": ' \
        '"A \\"huge\\" dog runs.", "SCM": ["D \\u2192 R: the dog runs", "D \\u2192 D: loop"]}'
    (item,) = import_source(SourceFile("escaped.json", text), "llm-json")
    loop = next(d for d in item.diagnostics if d.code.name == "self-loop")
    assert text[loop.span.start:loop.span.end] == "D \\u2192 D"
    rewritten = next(d for d in item.diagnostics if d.code.name == "non-minimal-change")
    assert rewritten.message == "the counterfactual prompt changes 'big huge', which no " \
        "intervention explains"
    assert text[rewritten.span.start:rewritten.span.end] == "huge"
    assert [text[lb.span.start:lb.span.end] for lb in rewritten.labels] == ["big"]


def test_cycle_lists_the_smallest_edge_sets_and_fix_keeps_the_cycle(tmp_path: Path) -> None:
    for fix in (False, True):
        items = import_file(CASES / "json_cycle3.json", options=ImportOptions(fix=fix))
        (cycle,) = items[0].diagnostics
        assert cycle.message == "cycle F -> T -> M -> F in SCM"
        assert len(cycle.labels) == 2
        removals = [n for n in cycle.notes if n.startswith("removing")]
        assert removals == [
            "removing `F -> T` (line 5) makes it acyclic",
            "removing `T -> M` (line 6) makes it acyclic",
            "removing `M -> F` (line 7) makes it acyclic",
        ]
        assert "M -> F" in items[0].scm  # type: ignore[operator]


def test_fix_repairs_only_what_is_safe() -> None:
    (plain,) = import_file(CASES / "json_duplicate_edge.json")
    (fixed,) = import_file(CASES / "json_duplicate_edge_fix.json",
                           options=ImportOptions(fix=True))
    assert plain.scm is not None and fixed.scm is not None
    edge = 'B -> R "The book is what she reads."'
    assert plain.scm.count(edge) == 2 and fixed.scm.count(edge) == 1
    assert fixed.fixes == ["SCM: removed the repeated edge B -> R (line 8)"]
    assert "# fixed: SCM: removed the repeated edge B -> R (line 8)" in fixed.scm
    (arrows,) = import_file(CASES / "json_sloppy_arrow_fix.json",
                            options=ImportOptions(fix=True))
    assert len(arrows.fixes) == 4 and arrows.diagnostics == []


def test_whitespace_fix_lets_substitution_render_the_counterfactual() -> None:
    text = json.dumps({
        "original_prompt": "A  woman   rides a horse. ",
        "counterfactual_prompt": "A man rides a horse.",
        "SCM": ["W -> R: the woman rides", "H -> R: the horse is ridden"],
        "SCM_aug": ["M -> R: the man rides", "H -> R: the horse is ridden"],
    })
    (plain,) = import_source(SourceFile("ws.json", text), "llm-json")
    (fixed,) = import_source(SourceFile("ws.json", text), "llm-json", ImportOptions(fix=True))
    assert plain.verdict == fixed.verdict == "clean"
    assert 'prompt "A man rides a horse."' in plain.scm  # type: ignore[operator]
    assert 'prompt "A {{ W }} {{ R }} a {{ H }}."' in fixed.scm  # type: ignore[operator]
    assert 'prompt "A man' not in fixed.scm  # type: ignore[operator]


def test_surgery_is_explained_and_noted() -> None:
    (item,) = import_file(CASES / "json_surgery.json")
    assert item.diagnostics == [] and item.interventions == {"W": "calm"}
    assert "# do()-surgery: SCM_aug cuts `B -> W` into the intervened `W` (line 5)." \
        in (item.scm or "")


def test_written_header_lists_the_problems_and_cannot_inject_code() -> None:
    (item,) = import_file(CASES / "json_cycle2.json")
    assert item.scm is not None
    head = item.scm.split("scm json_cycle2", 1)[0]
    assert "# error[cycle] at 6:6: cycle So -> P -> So in SCM" in head
    hostile = json.dumps({
        "id": "evil", "original_prompt": "A cat.\n} scm pwn {", "counterfactual_prompt": "A dog.",
        "SCM": ["C -> X: \n# \"}\nscm pwn2 {"],
    })
    (evil,) = import_source(SourceFile("evil.json", hostile), "llm-json")
    parsed = check(SourceFile("evil.scm", evil.scm or ""), Config())
    assert parsed.module is not None and len(parsed.module.specs) == 1


# --- the reference answers -----------------------------------------------------------------

# id -> (variable, factual words, counterfactual words or None, edit type)
COCO = {
    "158956_0": ("Woman", "woman", "baker", "replace"),
    "164602_4": ("Mirror", "with a camera in a bathroom mirror", None, "refine"),
    "60823_0": ("Cows", "cows", "people", "replace"),
    "279714_2": ("Window", "window", "box", "replace"),
    "375763_0": ("Flock", "flock", "pair", "replace"),
    "490171_3": ("Surfboard", "surfboard", "horse", "replace"),
    "474021_0": ("Gathering", "gathering", "party", "replace"),
    "183437_3": ("People", "people", "children", "replace"),
    "42296_0": ("Water", "water", "ice", "replace"),
    "414638_0": ("Plate", "plate", "board", "replace"),
    "430961_2": ("Baseball", "baseball", "football", "replace"),
    "119452_0": ("Banana", "banana", "apple", "replace"),
}


def test_reference_copies_match_shared() -> None:
    for base in (ROOT / SHARED_REFERENCE, ROOT.parent / SHARED_REFERENCE):
        if base.is_dir():
            for path in sorted(base.iterdir()):
                assert (REFERENCE / path.name).read_bytes() == path.read_bytes(), path.name
            return
    pytest.skip(f"{SHARED_REFERENCE} is not available")


def test_reference_cake_is_clean_with_do_w_man() -> None:
    (item,) = import_file(REFERENCE / "llm_cake_man.json")
    assert item.diagnostics == []
    assert item.verdict == "clean"
    assert item.interventions == {"W": "man"} and item.sets == {}
    assert item.counterfactual == "man" and item.edit == "replace"
    assert item.scm is not None
    assert 'prompt "A {{ W }} is {{ A }} into a {{ C }} with a large {{ K }}."' in item.scm
    assert 'do(W = "man")' in item.scm
    assert item.relint == []


def test_reference_plate_json_is_a_cycle() -> None:
    (item,) = import_file(REFERENCE / "llm_plate_fork.json")
    assert item.verdict == "cycle"
    assert [_show(d) for d in item.diagnostics] == [
        "span-not-in-prompt@7:6", "span-not-in-prompt@7:10", "span-not-in-prompt@8:10",
        "cycle@11:6", "span-not-in-prompt@13:6",
    ]
    cycle = next(d for d in item.diagnostics if d.code.name == "cycle")
    assert cycle.message == "cycle F -> P -> F in SCM"
    assert "removing `F -> P` (line 11) makes it acyclic" in cycle.notes
    assert "removing `P -> F` (line 12) makes it acyclic" in cycle.notes
    # K (knife) is replaced by Fr (fork); the caption never named the knife, so the appended
    # clause is the fork's.
    assert item.interventions == {"K": "using a fork to cut"}
    assert item.counterfactual == "fork" and item.edit == "refine"
    assert _errors(item.relint) == {"cycle"}


def test_reference_plate_freetext_is_a_cycle_with_undeclared_variables() -> None:
    prompt = "A white plate with a sliced up piece of food on top of it."
    (item,) = import_file(REFERENCE / "llm_plate_freetext.txt",
                          options=ImportOptions(prompt=prompt))
    assert [_show(d) for d in item.diagnostics] == [
        "no-counterfactuals@1:1", "span-not-in-prompt@8:3", "span-not-in-prompt@9:3",
        "graph-choice@21:4", "undefined-variable@21:18", "undefined-variable@22:4",
        "cycle@25:4", "undefined-variable@27:4",
    ]
    assert item.verdict == "undefined-variable, cycle"
    # Without --prompt the answer has no prompt at all: that is an error too.
    (bare,) = import_file(REFERENCE / "llm_plate_freetext.txt")
    assert bare.errors == ["missing-prompt", "undefined-variable", "cycle"]


def test_reference_caption_pairs() -> None:
    items = import_file(REFERENCE / "coco_counterfactual_pairs.jsonl")
    assert [i.item_id for i in items] == list(COCO)
    for item in items:
        name, old, new, edit = COCO[item.item_id]
        assert item.verdict == "clean", item.item_id
        assert [_show(d) for d in item.diagnostics] == \
            [f"empty-graph@{list(COCO).index(item.item_id) + 1}:1(warning)"]
        assert item.interventions == {name: new}, item.item_id
        assert item.edit == edit, item.item_id
        assert f'var {name} = "{old}"' in (item.scm or ""), item.scm


# --- the command ---------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command(name="import")(import_command)

    @app.callback()
    def _root() -> None:
        """cfspec."""

    return app


def _run(*args: str) -> Any:
    return CliRunner().invoke(_app(), ["import", *args])


def test_command_writes_every_item_and_exits_by_errors(tmp_path: Path) -> None:
    out = tmp_path / "out"
    clean = _run(str(REFERENCE / "llm_cake_man.json"), "-o", str(out))
    assert clean.exit_code == 0, clean.output
    # The answer's `"id": 1` is a bare number: it names nothing across files, so the file's
    # stem goes in front of it.
    assert (out / "llm_cake_man_1.scm").is_file()
    failed = _run(str(REFERENCE / "llm_plate_fork.json"), "-o", str(out))
    assert failed.exit_code == 1
    written = (out / "llm_plate_fork.scm").read_text(encoding="utf-8")
    assert "# error[cycle] at 11:6" in written
    relinted = check(SourceFile("llm_plate_fork.scm", written), Config())
    assert _errors(relinted.diagnostics) == {"cycle"}


def test_command_json_format_and_summary(tmp_path: Path) -> None:
    files = [str(REFERENCE / n) for n in ("coco_counterfactual_pairs.jsonl",
                                          "llm_plate_fork.json")]
    result = _run(*files, "-o", str(tmp_path), "--format", "json")
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert {r["name"] for r in records} == {"empty-graph", "span-not-in-prompt", "cycle"}
    cycle = next(r for r in records if r["name"] == "cycle")
    assert (cycle["file"], cycle["line"], cycle["column"]) == (files[1], 11, 6)
    assert cycle["code"] == BY_NAME["cycle"].code and cycle["severity"] == "error"
    text = _run(*files, "-o", str(tmp_path))
    assert "12 of 13 items clean (2 files read); wrote 13 .scm files" in text.stderr
    assert "llm_plate_fork  cycle" in text.stderr
    assert "empty-graph" in text.stderr and "span-not-in-prompt" in text.stderr
    quiet = _run(*files, "-o", str(tmp_path), "--quiet")
    assert quiet.stderr == ""


def test_command_usage_errors(tmp_path: Path) -> None:
    answer = str(REFERENCE / "llm_cake_man.json")
    assert _run(answer, "-o", str(tmp_path), "--from", "yaml").exit_code == 2
    assert _run(answer, "-o", str(tmp_path), "--format", "xml").exit_code == 2
    assert _run(str(tmp_path / "missing.json"), "-o", str(tmp_path)).exit_code == 2
    assert _run(answer).exit_code == 2  # no -o


def test_command_forced_shape_and_prompts(tmp_path: Path) -> None:
    result = _run(str(CASES / "text_no_prompts.txt"), "-o", str(tmp_path), "--from",
                  "llm-text", "--prompt", "People walk with umbrellas in the rain.",
                  "--counterfactual-prompt", "People walk with umbrellas in the snow.")
    assert result.exit_code == 0, result.output
    written = (tmp_path / "text_no_prompts.scm").read_text(encoding="utf-8")
    assert 'do(R = "snow")' in written


def test_nothing_is_written_outside_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    for name in ("json_hostile_id.json", "coco_hostile_ids.jsonl"):
        result = _run(str(CASES / name), "-o", str(out))
        assert result.exit_code == 0, result.output
    inside = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                    if p.is_file())
    assert inside == [
        "deep/out/coco_hostile_ids_line3.scm", "deep/out/escape.scm", "deep/out/etc_passwd.scm",
        "deep/out/x.scm",
    ]


def test_same_ids_get_distinct_files(tmp_path: Path) -> None:
    for _ in range(2):
        assert _run(str(REFERENCE / "llm_cake_man.json"), str(REFERENCE / "llm_cake_man.json"),
                    "-o", str(tmp_path)).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llm_cake_man_1-2.scm",
                                                          "llm_cake_man_1.scm"]


@pytest.mark.parametrize("raw, safe", [
    ("../../x", "x"), ("/etc/passwd", "etc_passwd"), ("..", "item"), ("", "item"),
    ("158956_0", "158956_0"), ("a b/c", "a_b_c"), ("x" * 300, "x" * 100), (".hidden", "hidden"),
    ("con\x00trol", "con_trol"), ("é", "item"),
])
def test_safe_id(raw: str, safe: str) -> None:
    assert safe_id(raw) == safe


# --- pieces --------------------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    "W → A: why", "W -> A: why", "W => A: why", "W ⇒ A: why", "W --> A: why",
    "$W \\rightarrow A$: why", "$W \\to A$ (why)", "W ⟶ A (why)", "A <- W: why",
    "**W** → **A**: why", "`W -> A`: why", "$\\text{W} \\Rightarrow \\text{A}$: why",
])
def test_every_arrow_form(line: str) -> None:
    found = scan(line)
    assert [(e.source, e.target, e.description) for e in found.edges] == [("W", "A", "why")]
    assert found.broken == ()


def test_edge_scan_details() -> None:
    assert [(e.source, e.target) for e in scan("A -> B -> C").edges] == [("A", "B"), ("B", "C")]
    assert [(e.source, e.target) for e in scan("A <-> B").edges] == [("A", "B"), ("B", "A")]
    assert [e.kind for e in scan("A - > B").edges] == ["sloppy"]
    assert [(e.source, e.target) for e in scan("Cutting action => Sliced food: x").edges] == \
        [("Cutting action", "Sliced food")]
    assert [(e.source, e.target) for e in scan("W -> A because she cuts").edges] == [("W", "A")]
    one = scan("K → A: The knife → cutting", chain_only=True)
    assert [(e.source, e.target, e.description) for e in one.edges] == \
        [("K", "A", "The knife → cutting")]
    assert scan("F \\rightarrow").broken


def test_detect() -> None:
    for name, shape in (("llm_cake_man.json", "llm-json"), ("llm_plate_fork.json", "llm-json"),
                        ("llm_plate_freetext.txt", "llm-text"),
                        ("coco_counterfactual_pairs.jsonl", "coco-cf")):
        assert detect((REFERENCE / name).read_text(encoding="utf-8")) == shape
    assert detect((CASES / "fenced_answer.md").read_text(encoding="utf-8")) == "llm-json"


def test_json_positions() -> None:
    text = '{"a": ["x \\u2192 y", 1.5e3, null, true]}'
    parsed = parse(text)
    assert parsed.errors == []
    (obj,) = parsed.values
    found = obj.get("A")  # type: ignore[union-attr]
    assert found is not None
    s = found[1].items[0]  # type: ignore[union-attr]
    assert isinstance(s, JStr) and s.value == "x → y"
    assert text[s.at(2)] == "\\" and text[s.at(4):s.at(5)] == "y"
    truncated = parse('{"a": [1, 2')
    assert truncated.errors[0].message.startswith("unexpected end of input")


# --- never a traceback ---------------------------------------------------------------------

_SHAPES = ("auto", "llm-json", "llm-text", "coco-cf")
_KEYS = ["original_prompt", "counterfactual_prompt", "SCM", "SCM_aug", "id", "caption_0",
         "caption_1", "edges", "from", "to"]
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.sampled_from(["W -> A: x", "A → B", "$A \\rightarrow B$", "A <-> A", "- > B",
                       "A man.", "A woman.", ""]) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5), inner, max_size=6),
    max_leaves=25,
)
_TEXTISH = st.lists(
    st.sampled_from(["Variables:", "- W: Woman (a)", "- A: Action", "W -> A: x", "A → W",
                     "$W \\rightarrow$", "Original prompt: A woman cuts.",
                     "Counterfactual prompt: A man cuts.", "SCM DAG:", "", "{", "```json",
                     "```", "- K = Knife", "Edges (cause → effect):"]) | st.text(max_size=30),
    max_size=12,
).map("\n".join)


def _assert_sane(items: list[ImportedItem]) -> None:
    assert items
    for item in items:
        assert item.scm is not None or item.diagnostics
        for d in item.diagnostics:
            _check_position(d)
        if item.scm is not None:
            assert check(SourceFile("x.scm", item.scm), Config()).module is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=300), shape=st.sampled_from(_SHAPES))
def test_fuzz_any_text(text: str, shape: str) -> None:
    _assert_sane(import_source(SourceFile("fuzz.txt", text), shape))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_JSONISH, cut=st.integers(min_value=0, max_value=400), lines=st.booleans(),
       shape=st.sampled_from(_SHAPES))
def test_fuzz_json_like(value: object, cut: int, lines: bool, shape: str) -> None:
    text = json.dumps(value, ensure_ascii=bool(cut % 2), indent=None if lines else 2)
    if lines and isinstance(value, list):
        text = "\n".join(json.dumps(v) for v in value)
    if cut < len(text) and cut % 3 == 0:
        text = text[:cut]  # truncated
    _assert_sane(import_source(SourceFile("fuzz.json", text), shape))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXTISH, shape=st.sampled_from(_SHAPES))
def test_fuzz_text_answers(text: str, shape: str) -> None:
    _assert_sane(import_source(SourceFile("fuzz.txt", text), shape))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_fuzz_bytes(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    items = import_file(path)
    _assert_sane(items)
    if not data.strip():
        assert [_show(d) for d in items[0].diagnostics] == ["syntax-error@1:1"]


# --- caption pairs: one change per run, agreement, additions, swaps (issue 23) -----------------


def _pair(c0: str, c1: str, fix: bool = False) -> tuple[ImportedItem, list[dict[str, Any]]]:
    """Import one caption pair and compile what it wrote (nothing when it has errors)."""
    from cfspec.compile.pairs import compile_spec

    line = json.dumps({"id": "p_0", "caption_0": c0, "caption_1": c1})
    (item,) = import_source(SourceFile("pairs.jsonl", line), options=ImportOptions(fix=fix))
    assert item.scm is not None
    parsed = check(SourceFile("p_0.scm", item.scm), Config())
    if any(d.level is Severity.ERROR for d in parsed.diagnostics):
        return item, []
    return item, compile_spec(parsed.models[0], "p_0.scm")


def _exact(item: ImportedItem, pairs: list[dict[str, Any]], c0: str, c1: str) -> None:
    assert item.verdict == "clean", [d.message for d in item.diagnostics]
    assert [(p["prompt_0"], p["prompt_1"]) for p in pairs] == [(c0, c1)], item.scm
    assert len(item.interventions) == 1, item.scm


@pytest.mark.parametrize("old, new", [
    ("stop sign", "traffic light"), ("baseball player", "football goalkeeper"),
    ("next to", "far from"), ("sitting on", "looking at"), ("nearly empty", "completely full"),
    ("standing in", "running across"),
])
def test_a_multi_word_phrase_is_one_intervention(old: str, new: str) -> None:
    """was: `too-many-interventions`, one intervention per substituted word."""
    c0, c1 = f"A cat {old} the old box.", f"A cat {new} the old box."
    item, pairs = _pair(c0, c1)
    _exact(item, pairs, c0, c1)
    assert list(item.interventions.values()) == [new] and item.edit == "replace"
    assert f'= "{old}"' in item.scm


def test_unchanged_words_between_changes_part_them() -> None:
    item, _ = _pair("A black dog sits near a red car.", "A white cat sits near a blue car.")
    assert list(item.interventions.values()) == ["white cat", "blue"]
    assert item.verdict == "too-many-interventions"
    # Punctuation does not part words: `red, white` -> `blue, green` is one change.
    item, _ = _pair("A red, white flag.", "A blue, green flag.")
    assert list(item.interventions.values()) == ["blue, green"]


def test_recasing_and_repunctuation_are_artefacts_not_interventions() -> None:
    """was: the re-cased `a`, the added `.` and the changed words were three changes."""
    c0 = "a bunch of people gathered inside of a building"
    c1 = "A bunch of people scattered outside of a building."
    item, pairs = _pair(c0, c1)
    _exact(item, pairs, c0, c1)
    assert list(item.interventions.values()) == ["scattered outside"]
    (artefact,) = [d for d in item.diagnostics if d.code.name == "caption-artefact"]
    assert artefact.level is Severity.WARNING
    assert [artefact.label, *(lb.message for lb in artefact.labels)] == ["case", "writing"]
    fixed, pairs = _pair(c0, c1, fix=True)  # written the original's way, one template
    assert "caption-artefact" not in {d.code.name for d in fixed.diagnostics}
    assert pairs[0]["prompt_1"] == "a bunch of people scattered outside of a building"


@pytest.mark.parametrize("c0, c1, do, sets", [
    # possessive
    ("A girl pins a flower on the lapel of her date", "A boy pins a flower on the lapel of his "
     "date", {"Girl": "boy"}, {"Her": "his"}),
    ("a male tennis player is holding his racket", "a female tennis player is holding her "
     "racket", {"Male": "female"}, {"His": "her"}),
    # subject and object pronouns, reflexive
    ("A woman waves while the man types as she smiles", "A woman waves while the girl types as "
     "he smiles", None, None),
    ("The man types while a dog watches him", "The woman types while a dog watches her",
     {"Man": "woman"}, {"Him": "her"}),
    ("A boy looks at himself in a mirror", "A girl looks at herself in a mirror",
     {"Boy": "girl"}, {"Himself": "herself"}),
    # verb number, irregular and regular
    ("A dog on the porch is sleeping", "Two dogs on the porch are sleeping",
     {"Dog": "Two dogs"}, {"Is": "are"}),
    ("A horse near the old barn stands", "Three horses near the old barn stand",
     {"Horse": "Three horses"}, {"Stands": "stand"}),
    # noun number, with an article that goes with it
    ("One man with a ball and a red hat", "Two men with balls and a red hat",
     {"Man": "Two men"}, {"Ball": "balls"}),
    ("One red ball", "Two red balls", {"One": "Two"}, {"Ball": "balls"}),
    # a compound subject made by an addition
    ("A man on skis is going down a slope.", "A man and a child on skis are going down a slope.",
     {"Child": "and a child"}, {"Is": "are"}),
])
def test_agreement_is_a_consequence_of_the_noun(c0: str, c1: str, do: dict[str, str] | None,
                                                sets: dict[str, str] | None) -> None:
    """was: each agreeing word was one more intervention (`too-many-interventions`)."""
    item, pairs = _pair(c0, c1)
    if do is None:  # `the man` -> `the girl`, `she` -> `he`: `he` contradicts `girl`
        assert item.verdict == "too-many-interventions" and not item.sets
        return
    _exact(item, pairs, c0, c1)
    assert (item.interventions, item.sets) == (do, sets)
    for name in sets:
        assert f"{next(iter(do))} -> {name} \"agreement: follows" in item.scm
    assert "empty-graph" not in {d.code.name for d in item.diagnostics}  # the edges are a graph
    assert any("agrees with" in line and "not as an intervention" in " ".join(
        item.scm.splitlines()) for line in item.scm.splitlines())


@pytest.mark.parametrize("c0, c1, name, value, template", [
    ("A white umbrella that has been blown up.", "A polka-dot white umbrella that has been "
     "blown up.", "Polka_dot", "polka-dot", "A {{ Polka_dot }} white umbrella that"),
    ("cars are stopped at a light", "Congested cars are stopped at a light", "Congested",
     "Congested", "{{ Congested }} cars are"),
    ("A dog runs along the beach.", "A dog runs along the beach at sunset.", "Sunset",
     "at sunset", "the beach {{ Sunset }}."),
])
def test_an_addition_is_a_variable_the_factual_does_not_show(c0: str, c1: str, name: str,
                                                             value: str, template: str) -> None:
    """was: the added words extended the word next to them (`do(Umbrella = "polka-dot white
    umbrella")`)."""
    item, pairs = _pair(c0, c1)
    assert item.interventions == {name: value} and item.edit == "refine"
    assert f"var {name} = none" in item.scm and template in item.scm
    assert [(p["prompt_0"], p["prompt_1"]) for p in pairs] == [(c0, c1)]
    assert pairs[0]["intervention"] == [{"variable": name, "from": None, "to": value}]


def test_a_deletion_is_still_do_none() -> None:
    c0, c1 = "A small dog runs along the beach.", "A dog runs along the beach."
    item, pairs = _pair(c0, c1)
    _exact(item, pairs, c0, c1)
    assert item.interventions == {"Small": None}


@pytest.mark.parametrize("c0, c1, swapped", [
    ("A woman prepares a pizza while a man watches.", "A man prepares a pizza while a woman "
     "watches.", "swap of `woman` and `man`"),
    ("A man on a horse waves at two men.", "Two men on a horse wave at a man.",
     "swap of `A man` and `two men`"),
    ("A dog sitting behind a pair of black shoes.", "A pair of black shoes sitting behind a dog.",
     "swap of `dog` and `pair of black shoes`"),
])
def test_a_swap_is_two_interventions_said_as_a_swap(c0: str, c1: str, swapped: str) -> None:
    item, pairs = _pair(c0, c1)
    assert item.verdict == "too-many-interventions" and pairs == []
    assert len(item.interventions) == 2
    (do_line,) = [line for line in item.scm.splitlines() if line.strip().startswith("do(")]
    assert do_line.endswith(f"# {swapped}")
    relinted = check(SourceFile("p.scm", item.scm), Config())
    assert [d.code.name for d in relinted.diagnostics if d.level is Severity.ERROR] == \
        ["too-many-interventions"]
    raised = check(SourceFile("p.scm", item.scm), Config(max_interventions=2))
    assert not [d for d in raised.diagnostics if d.level is Severity.ERROR]


_WORDS = st.sampled_from("a an the A The two dog dogs cat man woman girl boy his her their is "
                         "are runs run red blue big sits on near , . stop sign".split())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w0=st.lists(_WORDS, min_size=1, max_size=9), w1=st.lists(_WORDS, min_size=1, max_size=9))
def test_fuzz_caption_pairs_compile_to_their_captions(w0: list[str], w1: list[str]) -> None:
    """Whatever two captions are, a written spec that lints without errors compiles to exactly
    them (surrounding whitespace aside)."""
    c0, c1 = " ".join(w0), " ".join(w1)
    item, pairs = _pair(c0, c1)
    if pairs:
        assert [(p["prompt_0"].strip(), p["prompt_1"].strip()) for p in pairs] == [(c0, c1)]
