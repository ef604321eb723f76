"""`export --to hf` carries the spec's questions and a VQA model's answers per row (the
`questions` column, the dataset card, Croissant), read back with `datasets` and mlcroissant;
the report shows them per pair. The answers come from `evaluate --vqa-model` with a toy VQA
model on constructed images (test_evaluate_vqa)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("pyarrow")
datasets = pytest.importorskip("datasets")

from test_evaluate_vqa import QUESTIONS, ToyVqa, build, pair_with_questions, use_toy  # noqa: E402
from test_export import _croissant, make_pair  # noqa: E402

from cfspec.gpu.evaluate.stage import evaluate  # noqa: E402
from cfspec.stages.export import export  # noqa: E402
from cfspec.workspace.layout import ANSWERS_FILE  # noqa: E402


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> ToyVqa:
    return use_toy(monkeypatch)


def vqa_out(root: Path) -> Path:
    pairs = [pair_with_questions("p0__man"), pair_with_questions("p1__man"),
             make_pair("p2__dog", "a cat on a table", "a dog on a table")]  # no questions
    bright = {("p0__man", 0): True, ("p1__man", 0): False, ("p2__dog", 0): False}
    out = build(root, pairs, seeds=(0,), bright=bright)
    evaluate(out, clip_model="tiny", vqa_model="tiny", bootstrap_resamples=50)
    return out


def test_the_export_carries_questions_and_answers(tmp_path: Path, toy: ToyVqa) -> None:
    out = vqa_out(tmp_path / "out")
    answers = {(a["id"], a["question"]): a["p_yes"] for a in map(
        json.loads, (out / ANSWERS_FILE).read_text(encoding="utf-8").splitlines())}
    dest = tmp_path / "hf"
    result = export(out, "hf", dest)
    assert result.diagnostics == []
    loaded = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache"))
    by_id = {row["id"]: row for row in loaded}
    assert set(by_id) == {"p0__man", "p1__man", "p2__dog"}
    assert by_id["p2__dog"]["questions"] == []
    for pair_id in ("p0__man", "p1__man"):
        got = by_id[pair_id]["questions"]
        assert [q["id"] for q in got] == [q.id for q in QUESTIONS]
        for question, want in zip(got, QUESTIONS, strict=True):
            assert {k: question[k] for k in ("variable", "kind", "factual", "counterfactual",
                                             "expect")} == {
                k: getattr(want, k) for k in ("variable", "kind", "factual", "counterfactual",
                                              "expect")}
            assert question["parents"] == list(want.parents)
            p_yes = answers[(pair_id, want.id)]
            assert question["p_yes_factual"] == p_yes["factual"]
            assert question["p_yes_counterfactual"] == p_yes["counterfactual"]
    # The metrics are columns, as every registry metric.
    assert by_id["p0__man"]["intervention_success"] == 1.0
    assert by_id["p1__man"]["intervention_success"] == 0.0
    assert by_id["p2__dog"]["intervention_success"] is None

    card = (dest / "README.md").read_text(encoding="utf-8")
    assert "- name: questions" in card and "(here toy)" in card
    assert "`intervention_success`" in card and "`held_fixed`" in card

    meta = json.loads((dest / "croissant.json").read_text(encoding="utf-8"))
    assert meta["provenance"]["models"]["vqa"] == ["toy"]
    assert "VQA toy (question metrics)" in meta["rai:machineAnnotationTools"]
    fields = {f["name"]: f for f in meta["recordSet"][0]["field"]}
    assert fields["questions"]["repeated"] is True
    assert [s["name"] for s in fields["questions"]["subField"]] == [
        "id", "variable", "kind", "factual", "counterfactual", "expect", "parents",
        "p_yes_factual", "p_yes_counterfactual"]
    assert fields["held_fixed"]["dataType"] == "sc:Float"
    records = {r["pairs/id"]: r for r in _croissant(dest / "croissant.json").records("pairs")}
    assert records[b"p0__man"]["pairs/intervention_success"] == 1.0
    read = records[b"p0__man"]["pairs/questions"]
    assert [q["pairs/questions/id"] for q in read] == [b"q1", b"q2", b"q3"]
    assert [list(q["pairs/questions/parents"]) for q in read] == [[], [b"q1"], []]
    assert [list(q["pairs/questions/p_yes_counterfactual"]) for q in read] == [
        answers[("p0__man", q.id)]["counterfactual"] for q in QUESTIONS]


def test_a_bad_answers_line_is_reported_and_the_export_goes_on(tmp_path: Path,
                                                                toy: ToyVqa) -> None:
    out = vqa_out(tmp_path / "out")
    path = out / ANSWERS_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    broken = json.loads(lines[0])
    broken["p_yes"]["factual"] = [0.9, 1.7]
    path.write_text("\n".join([json.dumps(broken), *lines[1:], "not json"]) + "\n",
                    encoding="utf-8")
    result = export(out, "hf", tmp_path / "hf")
    found = [(d.code.name, d.message) for d in result.diagnostics]
    assert [name for name, _ in found] == ["invalid-answers-file"] * 2
    assert found[0][1].startswith("line 1") and "each in [0, 1]" in found[0][1]
    assert found[1][1].startswith(f"line {len(lines) + 1}: not JSON")
    loaded = datasets.load_dataset(str(tmp_path / "hf"), split="train",
                                  cache_dir=str(tmp_path / "cache"))
    first = next(r for r in loaded if r["id"] == "p0__man")["questions"][0]
    assert first["p_yes_factual"] is None  # the bad line is left out, the question kept


def test_the_report_shows_each_pairs_questions_coloured_by_the_graph(tmp_path: Path,
                                                                    toy: ToyVqa) -> None:
    import re

    from cfspec.stages.html_report import build_report

    out = vqa_out(tmp_path / "out")
    result = build_report(out)
    html = result.path.read_text(encoding="utf-8")
    articles = {m.group(1): m.group(0) for m in re.finditer(
        r'<article[^>]*id="pair-([^"]+)".*?</article>', html, re.S)}
    good, bad = articles["p0__man"], articles["p1__man"]
    for article in (good, bad):
        rows = re.findall(r'<tr class="(q-[a-z]+)[^"]*">', article)
        assert rows == ["q-change", "q-hold", "q-hold"]  # q1 must change, q2 and q3 hold
        assert "must change" in article and "must hold" in article
    # The edit showed on p0: the man yes (0.90) on image 1; it did not on p1.
    assert "intervention_success: as expected" in good
    assert "intervention_success: NOT as expected" in bad
    table = good.split('<table class="questions">', 1)[1].split("</table>", 1)[0]
    assert 'class="q-change failed"' in bad and " failed" not in table
    assert "held_fixed: skipped: a parent question did not hold" in bad
    cells = re.findall(r'<td class="num( yes)?">([0-9.]+)</td>', table)
    assert [text for _, text in cells[:4]] == ["0.90", "0.10", "0.10", "0.90"]
    assert [bool(yes) for yes, _ in cells[:4]] == [True, False, False, True]
    assert "Questions (seed" not in articles["p2__dog"]  # a pair without questions


def test_answers_to_a_question_since_reworded_are_left_out(tmp_path: Path,
                                                           toy: ToyVqa) -> None:
    """A spec's `ask` changed after evaluate: same question id, other words. Its old P(yes)
    must not sit beside the new wording in the export."""
    out = vqa_out(tmp_path / "out")
    path = out / ANSWERS_FILE
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    first = next(n for n, line in enumerate(lines) if line["id"] == "p0__man")
    lines[first]["factual"] = "Is there a woman in a suit?"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = export(out, "hf", tmp_path / "hf")
    found = [(d.code.name, d.message) for d in result.diagnostics]
    assert found == [("invalid-answers-file", f"line {first + 1}, field `question`: q1 of pair "
                      "'p0__man' is not the question pairs.jsonl has (pairs.jsonl was compiled "
                      "again since)")]
    loaded = datasets.load_dataset(str(tmp_path / "hf"), split="train",
                                  cache_dir=str(tmp_path / "cache"))
    question = next(r for r in loaded if r["id"] == "p0__man")["questions"][0]
    assert question["factual"] == QUESTIONS[0].factual and question["p_yes_factual"] is None
