"""The compiler: pairs.jsonl content (golden), invariants (property), and hostile input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.compile.stage import compile_paths
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lang.prompt import parse_template
from cfspec.lang.words import split_words
from cfspec.lint import check
from cfspec.workspace.pairs import PAIRS_FILE, read_pairs, schema_errors

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
runner = CliRunner()


def compile_text(tmp_path: Path, text: str, **kwargs: object):  # type: ignore[no-untyped-def]
    spec = tmp_path / "spec.scm"
    spec.write_text(text, encoding="utf-8")
    return compile_paths([str(spec)], Config(), tmp_path / "out", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.scm")))
def test_golden_pairs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      update_golden: bool) -> None:
    monkeypatch.chdir(ROOT)  # the `spec` field records the path as given
    result = compile_paths([f"tests/golden/{name}.scm"], Config(), tmp_path)
    assert result.diagnostics == []
    produced = (tmp_path / PAIRS_FILE).read_text(encoding="utf-8")
    expected_file = GOLDEN / f"{name}.jsonl"
    if update_golden:
        expected_file.write_text(produced, encoding="utf-8")
    assert produced == expected_file.read_text(encoding="utf-8")


def _pairs(result) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {p["id"]: p for p in result.pairs}


def test_every_bundled_spec_compiles(tmp_path: Path) -> None:
    result = compile_paths([str(ROOT / "specs")], Config(exclude=("invalid",)), tmp_path)
    # specs/invalid is excluded by the project's [tool.cfspec]; here we exclude it by name
    assert [d for d in result.diagnostics if d.level.value == "error"] == []
    assert len(result.pairs) >= 13
    pairs, problems = read_pairs(tmp_path / PAIRS_FILE)
    assert problems == [] and len(pairs) == len(result.pairs)
    # The typed records the later stages read hold every field compile wrote, key for key.
    assert [json.dumps(p.to_json()) for p in pairs] == [json.dumps(p) for p in result.pairs]


def test_edit_types_follow_the_changed_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.chdir(ROOT)
    result = compile_paths(["tests/golden"], Config(), tmp_path)
    pairs = _pairs(result)
    assert pairs["golden_replace__man"]["edit"]["type"] == "replace"
    assert pairs["golden_refine__insert"]["edit"]["type"] == "refine"
    assert pairs["golden_refine__delete"]["edit"]["type"] == "refine"
    assert pairs["golden_reweight__emphasis"]["edit"]["type"] == "reweight"
    # The deletion removes the whole phrase and leaves no stray space before the full stop.
    assert pairs["golden_refine__delete"]["prompt_1"] == "A man and woman taking a selfie photo."
    # Punctuation never sticks to blend words: "burger." in the spec, "burger," in the prompt.
    blend = pairs["golden_punct__salad"]["edit"]["local_blend"]
    assert blend["words_0"] == ["burger"] and blend["words_1"] == ["salad"]
    # A descendant's stated words reach the prompt; surgery cuts the edge into the target.
    horse = pairs["golden_reweight__horse"]
    assert horse["prompt_1"].endswith("on a horse with a foal.")
    assert horse["descendant_changes"] == [{"variable": "D", "from": "dog", "to": "foal"}]
    assert "R → B" in horse["scm"] and not any(e.startswith("R") for e in horse["scm_aug"])
    assert "B=horse → D" in horse["scm_aug"]


def test_recompiling_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    compile_paths([str(ROOT / "specs" / "cake.scm")], Config(), a)
    compile_paths([str(ROOT / "specs" / "cake.scm")], Config(), b)
    assert (a / PAIRS_FILE).read_bytes() == (b / PAIRS_FILE).read_bytes()


def test_clip_tokens_spread_weight_over_a_split_word(tmp_path: Path) -> None:
    from test_tokens import write_tokenizer

    tok = write_tokenizer(tmp_path / "clip")
    spec = tmp_path / "s.scm"
    spec.write_text(
        'scm s { prompt "the {{ A }} sat" var A = "cat" var B: latent = "b" B -> A\n'
        '  counterfactual d { do(A = "dog") edit replace {} }\n'
        '  counterfactual z { do(A = "zzq") edit replace {} } }', encoding="utf-8")
    result = compile_paths([str(spec)], Config(), tmp_path / "out", tokenizer=str(tok))
    assert [d.code.name for d in result.diagnostics] == []
    pairs = _pairs(result)
    align = pairs["s__d"]["edit"]["alignment"]
    assert align["source"] == "clip"
    assert align["tokens_0"][2] == "cat</w>" and align["tokens_1"][2] == "dog</w>"
    # "zzq" has no merges, so it is three pieces where "cat" is one: the weight is spread.
    z = pairs["s__z"]["edit"]["alignment"]
    assert z["tokens_1"][2:5] == ["z", "z", "q</w>"]
    spread = [m for m in z["token_map"] if m[0] == 2]
    assert [m[1] for m in spread] == [2, 3, 4]
    assert all(m[2] == pytest.approx(1 / 3, abs=1e-5) for m in spread)
    # The words after the change keep their own tokens, shifted by the two extra pieces.
    assert [3, 5, 1.0] in z["token_map"] and [4, 6, 1.0] in z["token_map"]


def test_clip_tokens_are_the_whole_prompts(tmp_path: Path) -> None:
    # With a tokenizer, the prompt is tokenized whole, as CLIP does: `".` and `!!` are one
    # token each (tests/golden_p2p/clip_subset is the real CLIP vocabulary's, cut to these
    # prompts), and a token over two words belongs to both.
    tok = ROOT / "tests" / "golden_p2p" / "clip_subset"
    golden = json.loads((ROOT / "tests" / "golden_p2p" / "published_alignment.json")
                        .read_text("utf-8"))["ids"]
    spec = tmp_path / "s.scm"
    spec.write_text(
        'scm s { prompt "a {{ A }} said \\"stop\\". on the porch!!" var A = "man"\n'
        '  var B: latent = "b" B -> A\n'
        '  counterfactual w { do(A = "woman") edit { blend "man" "porch" -> "woman" "porch" } } }',
        encoding="utf-8")
    result = compile_paths([str(spec)], Config(), tmp_path / "out", tokenizer=str(tok))
    assert [d.code.name for d in result.diagnostics] == []
    pair = _pairs(result)["s__w"]
    align = pair["edit"]["alignment"]
    vocab = json.loads((tok / "vocab.json").read_text("utf-8"))
    assert [vocab[t] for t in align["tokens_0"]] == golden[pair["prompt_0"]]
    assert '".</w>' in align["tokens_0"] and align["tokens_0"][-2] == "!!</w>"
    porch = align["tokens_0"].index("porch</w>")
    assert pair["edit"]["local_blend"]["tokens_0"] == [2, porch]
    assert [porch, porch, 1.0] in align["token_map"]


def test_blend_start_is_an_edit_setting(tmp_path: Path) -> None:
    text = ('scm s { prompt "a {{ A }} on a table" var A = "dog" var B: latent = "b" B -> A\n'
            '  counterfactual c { do(A = "cat") edit { blend_start 0.1 } }\n'
            '  counterfactual d { do(A = "cow") } }')
    result = compile_text(tmp_path, text)
    assert [d.code.name for d in result.diagnostics] == []
    pairs = _pairs(result)
    assert pairs["s__c"]["edit"]["local_blend"]["start"] == 0.1
    assert "start" not in pairs["s__d"]["edit"]["local_blend"]  # the run's --blend-start
    bad = compile_text(tmp_path, text.replace("blend_start 0.1", "blend_start 10"))
    assert [d.code.name for d in bad.diagnostics] == ["invalid-edit-setting"]
    twice = compile_text(tmp_path, text.replace("blend_start 0.1", "blend_start 0.1 blend_start 0"))
    assert [d.code.name for d in twice.diagnostics] == ["duplicate-setting"]


def test_per_word_windows_alone_say_the_default_is_cfspecs(tmp_path: Path) -> None:
    text = ('scm s { prompt "a {{ A }} on a table" var A = "dog" var B: latent = "b" B -> A\n'
            '  counterfactual c { do(A = "cat") edit { cross_replace "cat" [0.0, 0.3] } }\n'
            '  counterfactual d { do(A = "cow") edit { cross_replace "cow" [0.0, 0.3] '
            'cross_replace 0.8 } } }')
    pairs = _pairs(compile_text(tmp_path, text))
    assert pairs["s__c"]["edit"]["cross_replace_steps"]["default_set"] is False
    assert "default_set" not in pairs["s__d"]["edit"]["cross_replace_steps"]


# --- property: one intervention changes exactly its span -----------------------------------

COMMON = ["a", "the", "on", "with", "red", "big", "dog", "table", "is", "near", "old"]
NEW = ["zebra", "violin", "orange", "kite", "umbrella", "lamp"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.lists(st.sampled_from(COMMON), min_size=1, max_size=6),
    old=st.lists(st.sampled_from(COMMON), min_size=1, max_size=3),
    new=st.lists(st.sampled_from(NEW), min_size=1, max_size=3),
    suffix=st.lists(st.sampled_from(COMMON), min_size=0, max_size=6),
    punct=st.sampled_from(["", ".", ",", "!"]),
)
def test_one_intervention_changes_only_its_span(
    tmp_path: Path, prefix: list[str], old: list[str], new: list[str], suffix: list[str],
    punct: str,
) -> None:
    template = " ".join([*prefix, "{{ X }}", *suffix]) + punct
    text = (f'scm p {{ prompt "{template}" var X = "{" ".join(old)}" var L: latent = "l"\n'
            f'  L -> X counterfactual c {{ do(X = "{" ".join(new)}") }} }}')
    result = compile_text(tmp_path, text)
    assert [d for d in result.diagnostics if d.level.value == "error"] == []
    (pair,) = result.pairs
    w0 = [w for w, _, _ in split_words(pair["prompt_0"])]
    w1 = [w for w, _, _ in split_words(pair["prompt_1"])]
    n, k = len(prefix), len(suffix) + (1 if punct else 0)
    assert w0[:n] == w1[:n] and w0[len(w0) - k:] == w1[len(w1) - k:]
    assert w0[n:len(w0) - k] == old and w1[n:len(w1) - k] == new

    edit = pair["edit"]
    t0, t1 = edit["alignment"]["tokens_0"], edit["alignment"]["tokens_1"]
    # Unchanged tokens (start, prefix, suffix, end) map to themselves.
    unchanged = [(i, i) for i in range(n + 1)] + [
        (len(t0) - 1 - d, len(t1) - 1 - d) for d in range(k + 1)
    ]
    if edit["type"] == "replace":
        assert len(old) == len(new)
        weights = {(a, b): w for a, b, w in edit["alignment"]["token_map"]}
        assert all(weights.get(pair_) == 1.0 for pair_ in unchanged)
    else:
        assert edit["type"] == "refine" and len(old) != len(new)
        mapper = edit["alignment"]["token_map"]
        assert all(mapper[j] == i for i, j in unchanged)
        assert edit["alignment"]["inserted"] == list(range(n + 1, n + 1 + len(new)))
    assert edit["local_blend"]["words_0"] == old and edit["local_blend"]["words_1"] == new


# --- hostile and broken input ---------------------------------------------------------------

def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__ }}",
    "{{ X.__init__.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ X | attr('__class__') }}",
    "{{ cycler.__init__.__globals__.os }}",
])
def test_hostile_template_is_a_diagnostic_and_runs_nothing(tmp_path: Path, template: str) -> None:
    text = f'scm h {{ prompt "A {{{{ X }}}} {template}" var X = "cat" var Y = "y" X -> Y\n' \
           '  counterfactual c { do(X = "dog") } }'
    before = files_under(tmp_path)
    result = compile_text(tmp_path, text.replace('"', '"', 1))
    names = {d.code.name for d in result.diagnostics}
    assert "template-error" in names
    assert result.written is None and result.pairs == []
    assert files_under(tmp_path) - before == {tmp_path / "spec.scm"}


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ X | attr('__class__') }}",
    "{{ X.__class__ }}", "{{ X | a(1) }}", "{{ range(10) }}", "{{ X ~ X }}",
])
def test_a_template_beyond_names_and_filters_has_no_frame(template: str) -> None:
    """The one renderer only looks names up and applies FILTERS; anything more is an error
    and leaves no slot to render."""
    frame, problems = parse_template(template)
    assert problems and frame.slots == ()
    (model,) = check(SourceFile("h.scm", f'scm h {{ prompt "{template}" var X = "cat" }}'),
                     Config()).models
    assert model.prompt_0 is None


@pytest.mark.parametrize("bad_id", ["../../x", "/etc/passwd", "a/b", ".hidden", "x y", ""])
def test_path_like_ids_write_nothing_anywhere(tmp_path: Path, bad_id: str) -> None:
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    before = files_under(tmp_path)
    text = f'scm s {{ id "{bad_id}" prompt "A {{{{ X }}}}." var X = "cat" var Y = "y" X -> Y\n' \
           '  counterfactual c { do(X = "dog") } }'
    spec = work / "spec.scm"
    spec.write_text(text, encoding="utf-8")
    result = compile_paths([str(spec)], Config(), work / "out", keep_going=True)
    assert [d.code.name for d in result.diagnostics if d.level.value == "error"] == ["invalid-id"]
    # keep-going writes the (empty) set of valid pairs inside OUT and nothing else anywhere.
    assert files_under(tmp_path) - before == {spec, work / "out" / PAIRS_FILE}
    assert (work / "out" / PAIRS_FILE).read_text() == ""


def test_prompt_over_77_tokens_is_refused(tmp_path: Path) -> None:
    long = " ".join(["tiny"] * 80)
    text = f'scm s {{ prompt "A {{{{ X }}}} {long}." var X = "cat" var Y = "y" X -> Y\n' \
           '  counterfactual c { do(X = "dog") } }'
    result = compile_text(tmp_path, text)
    (diag,) = [d for d in result.diagnostics if d.code.name == "prompt-too-long"][:1]
    assert diag.span.line == 1 and "estimated" in diag.message
    assert result.written is None and not (tmp_path / "out").exists()


def test_keep_going_compiles_the_valid_specs(tmp_path: Path) -> None:
    good = (ROOT / "specs" / "cake.scm").read_text(encoding="utf-8")
    bad = 'scm broken { prompt "A {{ X }}." var X = "x" X -> X counterfactual c { do(X = "y") } }'
    (tmp_path / "good.scm").write_text(good, encoding="utf-8")
    (tmp_path / "bad.scm").write_text(bad, encoding="utf-8")
    paths = [str(tmp_path / "good.scm"), str(tmp_path / "bad.scm")]
    stopped = compile_paths(paths, Config(), tmp_path / "a")
    assert stopped.written is None and not (tmp_path / "a").exists()
    going = compile_paths(paths, Config(), tmp_path / "b", keep_going=True)
    assert {p["spec_name"] for p in going.pairs} == {"cake_cutting"}
    assert "self-loop" in {d.code.name for d in going.diagnostics}


def test_pair_ids_must_be_unique_across_files(tmp_path: Path) -> None:
    text = 'scm s { id "same" prompt "A {{ X }}." var X = "x" var Y = "y" X -> Y\n' \
           '  counterfactual c { do(X = "z") } }'
    (tmp_path / "a.scm").write_text(text, encoding="utf-8")
    (tmp_path / "b.scm").write_text(text, encoding="utf-8")
    result = compile_paths([str(tmp_path)], Config(), tmp_path / "out")
    (dup,) = [d for d in result.diagnostics if d.code.name == "duplicate-spec"]
    assert dup.file.endswith("b.scm") and (dup.span.line, dup.span.column) == (2, 18)
    assert result.written is None


def test_reader_names_the_line_and_field(tmp_path: Path) -> None:
    out = tmp_path / "out"
    compile_paths([str(ROOT / "specs" / "cake.scm")], Config(), out)
    lines = (out / PAIRS_FILE).read_text(encoding="utf-8").splitlines()
    broken = json.loads(lines[1])
    broken["edit"]["type"] = "swap"
    lines[1] = json.dumps(broken, ensure_ascii=False)
    lines[2] = lines[2][:40]
    (out / PAIRS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    pairs, problems = read_pairs(out / PAIRS_FILE)
    assert len(pairs) == 1
    assert [(d.code.name, d.span.line) for d in problems] == [
        ("invalid-pairs-file", 2), ("invalid-pairs-file", 3)]
    assert "edit.type" in problems[0].message and "not JSON" in problems[1].message


def test_schema_rejects_unsafe_ids() -> None:
    assert any("id" in e for e in schema_errors({"id": "../x"}))


def test_cli_compile_exit_codes(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["compile", str(ROOT / "specs" / "cake.scm"), "-o", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert len((tmp_path / PAIRS_FILE).read_text().splitlines()) == 3
    bad = runner.invoke(app, ["compile", str(ROOT / "specs" / "invalid" / "cycle.scm"),
                              "-o", str(tmp_path / "x")])
    assert bad.exit_code == 1 and not (tmp_path / "x").exists()


def test_graph_overlays_counterfactuals() -> None:
    result = runner.invoke(app, ["graph", str(ROOT / "specs" / "cake.scm")])
    assert result.exit_code == 0
    dot = result.stdout
    assert dot.startswith('digraph "cake_cutting"')
    # do(K = fork) cuts W -> K in the fork cluster only, and fills K.
    assert '"fork_W" -> "fork_K" [style=dashed' in dot
    assert '"man_W" -> "man_K";' in dot
    assert '"fork_K" [label="K\\nfork", style="rounded,filled"' in dot
    assert '"fork_A" [label="A\\ndigging", penwidth=2.5' in dot


def test_graph_escapes_quotes(tmp_path: Path) -> None:
    spec = tmp_path / "q.scm"
    spec.write_text('scm q { prompt "A {{ X }}" var X = "say \\"hi\\"" var Y = "y" '
                    'X -> Y "a \\\\ b" }', encoding="utf-8")
    dot = runner.invoke(app, ["graph", str(spec)]).stdout
    assert '[label="X\\nsay \\"hi\\""]' in dot and 'tooltip="a \\\\ b"' in dot


def test_graph_without_graphviz_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = runner.invoke(app, ["graph", str(ROOT / "specs" / "cake.scm"), "-o",
                                 str(tmp_path / "g.svg")])
    assert result.exit_code == 2 and "Graphviz" in result.output
    dot_file = runner.invoke(app, ["graph", str(ROOT / "specs" / "cake.scm"), "-o",
                                   str(tmp_path / "g.dot")])
    assert dot_file.exit_code == 0 and (tmp_path / "g.dot").read_text().startswith("digraph")


def test_llm_instruction_has_caption_and_examples() -> None:
    result = runner.invoke(app, ["prompt", "A dog   runs on the beach.", "--examples", "1"])
    assert result.exit_code == 0
    assert "Caption: A dog runs on the beach." in result.stdout
    assert "scm cake_cutting {" in result.stdout and "```scm" in result.stdout
    as_json = runner.invoke(app, ["prompt", "A dog runs.", "--shape", "json"]).stdout
    body = as_json.split("```json\n", 1)[1].split("```", 1)[0]
    assert set(json.loads(body)) == {"original_prompt", "counterfactual_prompt", "SCM", "SCM_aug"}


def test_word_spans_point_at_the_edit_maps_words(tmp_path: Path) -> None:
    """`word_spans` is where the compiler's own words stand: each blend span holds the matching
    `edit.local_blend` word, each changed span is a word of its prompt, and a span outside its
    prompt breaks the schema (a reader never indexes past a prompt)."""
    result = compile_paths([str(ROOT / "specs")], Config(exclude=("invalid",)), tmp_path)
    assert result.written is not None
    pairs, _ = read_pairs(tmp_path / PAIRS_FILE)
    assert len(pairs) >= 13
    changed = 0
    for pair in pairs:
        spans = pair.word_spans
        assert spans is not None
        for k, prompt in enumerate((pair.prompt_0, pair.prompt_1)):
            blend = [prompt[s:e] for s, e in spans[f"blend_{k}"]]
            assert blend == pair.edit["local_blend"][f"words_{k}"], pair.id
            words = {(s, e) for _, s, e in split_words(prompt)}
            assert {(s, e) for s, e in spans[f"changed_{k}"]} <= words, pair.id
            changed += len(spans[f"changed_{k}"])
    assert changed > 0
    record = pairs[0].to_json()
    record["word_spans"]["changed_1"] = [[0, len(record["prompt_1"]) + 1]]
    assert any(e.startswith("word_spans.changed_1:") for e in schema_errors(record))


def test_the_typed_edit_map_is_the_schemas_edit() -> None:
    """`Pair.edit` (workspace.pairs.EditMap and the TypedDicts in it) names each key of
    pair.schema.json's `edit`, at every level, and requires what the schema requires."""
    import typing

    from cfspec.workspace import pairs

    schema = pairs.pair_schema()

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        return schema["$defs"][ref.rsplit("/", 1)[1]] if ref else node

    def compare(typed: Any, node: dict[str, Any], where: str) -> None:
        node = resolve(node)
        assert set(typed.__annotations__) == set(node["properties"]), where
        # pairs.py's annotations are strings (PEP 563), so NotRequired shows in the hints only
        hints = typing.get_type_hints(typed, include_extras=True)
        required = {key for key, hint in hints.items()
                    if typing.get_origin(hint) is not typing.NotRequired} \
            if typed.__total__ else set()
        assert required == set(node.get("required", ())), where
        for key, sub in node["properties"].items():
            hint = typing.get_type_hints(typed)[key]
            if typing.is_typeddict(hint):
                compare(hint, sub, f"{where}.{key}")

    compare(pairs.EditMap, schema["properties"]["edit"], "edit")
