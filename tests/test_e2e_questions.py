"""Issue 26 end to end, through the CLI as a user runs it: compile a bundled spec, generate with
the tiny pipeline, evaluate with the tiny CLIP and the tiny BLIP VQA model, filter with a
question gate, export, report. Each stage's output is checked against the one before it: the
questions come from pairs.jsonl, the answers are the scorer's P(yes) on the PNGs generate wrote,
the metrics follow from the answers, the filter from the metrics, the export and the report
from the answers."""

from __future__ import annotations

import json
import re
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from cfspec.cli.app import app  # noqa: E402
from cfspec.gpu.evaluate.vqa import VqaScorer  # noqa: E402
from cfspec.workspace.answers import answer_from_json  # noqa: E402
from cfspec.workspace.intervals import CI_MIN_PAIRS  # noqa: E402
from cfspec.workspace.layout import ANSWERS_FILE, METRICS_FILE, SUMMARY_FILE  # noqa: E402
from cfspec.workspace.question_metrics import QUESTION_METRICS, question_metrics  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS = 2
SPECS = ("cake.scm", "bat_box.scm", "football_player.scm")
# The report colours a question's row by what the graph expects of it.
EXPECT_CLASS = {"change": "q-change", "follow": "q-change", "may-change": "q-may",
                "hold": "q-hold"}


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def png(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("e2e") / "out"
    # Three bundled specs: 8 pairs, enough for the summary's pair-clustered intervals.
    cli("compile", *(str(ROOT / "specs" / name) for name in SPECS), "-o", str(out))
    cli("generate", str(out), "--model", "tiny", "--device", "cpu", "--steps", "2",
        "--height", "32", "--width", "32", "--seeds", str(SEEDS), "--quiet")
    cli("evaluate", str(out), "--clip-model", "tiny", "--vqa-model", "tiny", "--device", "cpu",
        "--quiet")
    return out


def test_every_pair_and_seed_is_asked_its_questions_on_its_own_images(out: Path) -> None:
    pairs = {p["id"]: p for p in lines(out / "pairs.jsonl")}
    assert len(pairs) == 8 and {"158956_0__man", "158956_0__fork"} <= set(pairs)
    answers = lines(out / ANSWERS_FILE)
    asked = {(a["id"], a["seed"], a["question"]) for a in answers}
    assert asked == {(pid, seed, q["id"]) for pid, pair in pairs.items()
                     for seed in range(SEEDS) for q in pair["questions"]}
    assert len(asked) == len(answers)  # each once
    # The answers are the tiny BLIP's P(yes) on the PNGs generate wrote (fp32 on the CPU, the
    # same batches' arithmetic up to batch composition: a few float32 ulps of a softmax).
    manifest = {(m["id"], m["seed"]): m for m in lines(out / "manifest.jsonl")}
    scorer = VqaScorer.load("tiny")
    for line in answers[:: max(1, len(answers) // 6)]:
        entry = manifest[(line["id"], line["seed"])]
        images = [png(str(out / entry[key])) for key in ("image_0", "image_1")]
        for world in ("factual", "counterfactual"):
            if line[world] is None:
                assert line["p_yes"][world] is None
                continue
            want = scorer.p_yes(images, [line[world]] * 2)
            assert line["p_yes"][world] == pytest.approx(want, abs=1e-5)


def test_the_metrics_follow_from_the_answers_with_intervals(out: Path) -> None:
    by_key: dict[tuple[str, int], list[Any]] = {}
    for line in lines(out / ANSWERS_FILE):
        by_key.setdefault((line["id"], line["seed"]), []).append(answer_from_json(line))
    rows = lines(out / METRICS_FILE)
    assert {(r["id"], r["seed"]) for r in rows} == set(by_key)
    for row in rows:
        values, reasons = question_metrics(by_key[(row["id"], row["seed"])])
        for name in QUESTION_METRICS:
            assert row[name] == values[name]
            assert (row[name] is None) == (f"{name}_reason" in row)
    fork = [r for r in rows if r["id"].endswith("__fork")]
    # do(K = fork) sets A = digging: a descendant the spec says changes is asked about.
    assert all("descendants_followed_reason" not in r or "parent" in
               r["descendants_followed_reason"] for r in fork)
    summary = json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8"))
    assert summary["vqa_model"] == "tiny"
    for name in QUESTION_METRICS:
        per_pair: dict[str, list[float]] = {}
        for row in rows:
            if row[name] is not None:
                per_pair.setdefault(row["id"], []).append(row[name])
        if not per_pair:
            assert name not in summary["means"]
            continue
        stat = summary["means"][name]  # the mean of the pairs' means, pair-clustered interval
        means = [sum(v) / len(v) for v in per_pair.values()]
        assert stat["mean"] == pytest.approx(sum(means) / len(means))
        assert stat["n_pairs"] == len(means)
        if len(means) < CI_MIN_PAIRS:
            assert stat["ci95"] is None and "pairs" in stat["ci_reason"]
            continue
        low, high = stat["ci95"]
        assert low <= stat["mean"] <= high
    assert summary["means"]["held_fixed"]["ci95"] is not None  # every pair has held questions


def test_a_question_gate_filters_export_and_report_carry_the_answers(out: Path) -> None:
    rows = lines(out / METRICS_FILE)
    held = sorted({r["held_fixed"] for r in rows if r["held_fixed"] is not None})
    threshold = held[len(held) // 2]
    cli("filter", str(out), "--min-clip", "0", "--min-directional", "-1",
        "--min-image-similarity", "-1", "--gate", f"held_fixed>={threshold}", "--quiet")
    passing: dict[str, set[int]] = {}
    for row in rows:
        if row["held_fixed"] is not None and row["held_fixed"] >= threshold:
            passing.setdefault(row["id"], set()).add(row["seed"])
    decisions = {d["id"]: d for d in lines(out / "filter.jsonl")}
    for pair_id, decision in decisions.items():
        if pair_id in passing:
            assert decision["kept_seed"] in passing[pair_id]
        else:
            assert decision["kept_seed"] is None and "held_fixed" in decision["reason"]
    assert passing  # the median passes at least its own row

    dest = out.parent / "dataset"
    cli("export", str(out), "--to", "hf", "-o", str(dest), "--quiet")
    loaded = datasets.load_dataset(str(dest), split="train",
                                   cache_dir=str(out.parent / "hf-cache"))
    answers = {(a["id"], a["seed"], a["question"]): a["p_yes"]
               for a in lines(out / ANSWERS_FILE)}
    assert sorted(row["id"] for row in loaded) == sorted(passing)
    for row in loaded:
        seed = decisions[row["id"]]["kept_seed"]
        assert row["held_fixed"] >= threshold
        assert row["questions"], row["id"]
        for question in row["questions"]:
            p_yes = answers[(row["id"], seed, question["id"])]
            assert question["p_yes_factual"] == p_yes["factual"]
            assert question["p_yes_counterfactual"] == p_yes["counterfactual"]
    meta = json.loads((dest / "croissant.json").read_text(encoding="utf-8"))
    fields = {f["name"] for f in meta["recordSet"][0]["field"]}
    assert {"questions", *QUESTION_METRICS} <= fields

    cli("report", str(out), "--quiet")
    html = (out / "report.html").read_text(encoding="utf-8")
    pairs = {p["id"]: p for p in lines(out / "pairs.jsonl")}
    for pair_id in passing:
        article = re.search(rf'<article[^>]*id="pair-{re.escape(pair_id)}".*?</article>', html,
                            re.S)
        assert article is not None, pair_id
        table = article.group(0).split('<table class="questions">', 1)[1].split("</table>")[0]
        shown = re.findall(r'<tr class="(q-[a-z]+)', table)
        assert shown == [EXPECT_CLASS[q["expect"]] for q in pairs[pair_id]["questions"]]
        for question in pairs[pair_id]["questions"]:
            wording = question["factual"] or question["counterfactual"]
            assert html_escape(wording) in table


def test_run_asks_the_questions_in_one_command(tmp_path: Path) -> None:
    """`cfspec run` borrows evaluate's --vqa-model and filter's --gate: the same stages."""
    out = tmp_path / "out"
    cli("run", str(ROOT / "specs" / "cake.scm"), "-o", str(out), "--model", "tiny",
        "--clip-model", "tiny", "--vqa-model", "tiny", "--device", "cpu", "--steps", "2",
        "--height", "32", "--width", "32", "--seeds", "1", "--quiet", "--min-clip", "0",
        "--min-directional", "-1", "--min-image-similarity", "-1",
        "--gate", "factual_fidelity>=0")
    asked = {(a["id"], a["question"]) for a in lines(out / ANSWERS_FILE)}
    pairs = lines(out / "pairs.jsonl")
    assert asked == {(p["id"], q["id"]) for p in pairs for q in p["questions"]}
    rows = lines(out / METRICS_FILE)
    assert all(row["factual_fidelity"] is not None for row in rows)
    kept = [d["kept_seed"] for d in lines(out / "filter.jsonl")]
    assert kept == [0] * len(pairs)  # P(yes) >= 0 always: the gate lets every pair through
    assert "Questions (seed" in (out / "report.html").read_text(encoding="utf-8")
