"""`cfspec evaluate --vqa-model`: the spec's questions asked of every (pair, seed), the four
question metrics in metrics.jsonl and the summary (pair-clustered intervals), answers.jsonl,
filter gates on them; with the built-in tiny BLIP, and with a toy VQA model that reads its
answers off constructed images (a bright counterfactual image shows the man)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from test_export import make_pair, runner, stage_app, write_generated  # noqa: E402

from cfspec.gpu.evaluate import vqa_stage  # noqa: E402
from cfspec.gpu.evaluate.stage import EvaluateError, evaluate  # noqa: E402
from cfspec.gpu.evaluate.vqa import VqaScorer  # noqa: E402
from cfspec.questions.record import Question  # noqa: E402
from cfspec.workspace import store  # noqa: E402
from cfspec.workspace.answers import answer_from_json  # noqa: E402
from cfspec.workspace.layout import ANSWERS_FILE, METRICS_FILE, SUMMARY_FILE  # noqa: E402
from cfspec.workspace.pairs import write_pairs  # noqa: E402
from cfspec.workspace.question_metrics import QUESTION_METRICS, ask, question_metrics  # noqa: E402

QUESTIONS = [
    Question("q1", "A", "exists", "Is there a woman?", "Is there a man?", (), "change"),
    Question("q2", "B", "action", "Is the woman cutting?", "Is the man cutting?", ("q1",),
             "hold"),
    Question("q3", "C", "exists", "Is there a table?", "Is there a table?", (), "hold"),
]


def pair_with_questions(pair_id: str, questions: Sequence[Question] = QUESTIONS
                        ) -> dict[str, Any]:
    pair = make_pair(pair_id, "a woman at a table", "a man at a table")
    pair["questions"] = [q.to_json() for q in questions]
    return pair


def build(root: Path, pairs: Sequence[dict[str, Any]], seeds: Sequence[int] = (0, 1),
          bright: dict[tuple[str, int], bool] | None = None) -> Path:
    """OUT as generate leaves it; with `bright`, each factual image is black and each
    counterfactual image white where bright[(pair id, seed)] (the edit showed), else black."""
    write_pairs(root, list(pairs))
    for pair in pairs:
        for seed in seeds:
            black = np.zeros((32, 32, 3), dtype=np.uint8)
            write_generated(root, pair, seed, image_0=black if bright is not None else None)
            if bright is not None:
                png_1 = store.image_paths(root, pair["id"], seed)[1]
                shows = bright[(pair["id"], seed)]
                store.save_png(png_1, Image.fromarray(black + np.uint8(255 * shows)))
    return root


class ToyVqa:
    """Says there is a man (cutting) on a bright image and a woman (cutting) on a dark one; a
    table on every image. Counts what it is asked."""

    name = "toy"

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str, str], float] = {}
        self.asked = 0

    def p_yes(self, images: Sequence[np.ndarray], questions: Sequence[str]) -> list[float]:
        self.asked += len(questions)
        found = []
        for image, question in zip(images, questions, strict=True):
            bright = float(image.mean()) > 127
            if "table" in question:
                found.append(0.9)
            else:
                man = "man" in question.rstrip("?").split()  # "woman" is another word
                found.append(0.9 if man == bright else 0.1)
        return found


def use_toy(monkeypatch: pytest.MonkeyPatch) -> ToyVqa:
    """`--vqa-model` (any name) loads a ToyVqa."""
    model = ToyVqa()
    monkeypatch.setattr(vqa_stage.VqaScorer, "load", classmethod(lambda cls, *a, **k: model))
    return model


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> ToyVqa:
    return use_toy(monkeypatch)


def rows_of(out: Path) -> dict[tuple[str, int], dict[str, Any]]:
    lines = (out / METRICS_FILE).read_text(encoding="utf-8").splitlines()
    return {(r["id"], r["seed"]): r for r in map(json.loads, lines)}


def test_the_metrics_follow_what_the_images_show(tmp_path: Path, toy: ToyVqa) -> None:
    # Where the counterfactual image shows the man, per pair (seed 0, seed 1): p5 never (the
    # edit did not happen). Most pairs vary across seeds, which the studentized interval needs.
    shows = [(1, 1), (1, 0), (1, 0), (0, 1), (1, 0), (0, 0), (1, 1), (0, 1)]
    pairs = [pair_with_questions(f"p{i}__man") for i in range(len(shows))]
    bright = {(p["id"], seed): bool(s[seed]) for p, s in zip(pairs, shows, strict=True)
              for seed in (0, 1)}
    out = build(tmp_path / "out", pairs, bright=bright)
    result = evaluate(out, clip_model="tiny", vqa_model="tiny", bootstrap_resamples=200)
    assert result.ok
    rows = rows_of(out)
    for key, row in rows.items():
        assert row["intervention_success"] == (1.0 if bright[key] else 0.0)
        assert row["factual_fidelity"] == 1.0
        # With the man, he cuts as the woman did; without him, "is the man cutting?" is
        # skipped (DSG): either way only held questions count.
        assert row["held_fixed"] == 1.0
        assert row["descendants_followed"] is None
        assert "descendant the counterfactual sets" in row["descendants_followed_reason"]
    summary = json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8"))
    success = summary["means"]["intervention_success"]
    per_pair = [sum(s) / 2 for s in shows]
    assert success["mean"] == pytest.approx(sum(per_pair) / 8) and success["n_pairs"] == 8
    low, high = success["ci95"]  # pair-clustered, as every metric's
    assert low < success["mean"] < high
    assert summary["vqa_model"] == "toy"
    assert "descendants_followed" not in summary["means"]  # null everywhere

    # answers.jsonl: one line per (pair, seed, question), both wordings on both images.
    lines = [json.loads(line) for line in
             (out / ANSWERS_FILE).read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 8 * 2 * 3
    first = lines[0]
    assert (first["id"], first["seed"], first["question"]) == ("p0__man", 0, "q1")
    assert first["p_yes"] == {"factual": [0.9, 0.1], "counterfactual": [0.1, 0.9]}
    assert answer_from_json(first).question == QUESTIONS[0]

    # The filter gates on it, from the command line.
    app = stage_app()
    done = runner.invoke(app, ["filter", str(out), "--gate", "intervention_success>=0.5",
                               "--min-clip", "0", "--min-directional", "-1",
                               "--min-image-similarity", "-1", "--format", "json"])
    assert done.exit_code in (0, 1), done.output
    decisions = [json.loads(line) for line in
                 (out / "filter.jsonl").read_text(encoding="utf-8").splitlines()]
    kept = {d["id"]: d.get("kept_seed") for d in decisions if d.get("kept_seed") is not None}
    # Each pair keeps a seed that shows the man; p5 has none.
    assert set(kept) == {p["id"] for p in pairs} - {"p5__man"}
    assert all(bright[(pair_id, seed)] for pair_id, seed in kept.items())


def test_a_rerun_asks_nothing_already_answered(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny BLIP, counting what reaches the model: the first run asks each distinct
    (image, wording) once (the factual images are all black: one image), a re-run nothing,
    its answers taken from answers.jsonl by image content."""
    asked: list[tuple[str, ...]] = []
    compute = VqaScorer._p_yes_batch

    def counting(self: VqaScorer, images: list[np.ndarray], questions: list[str]
                 ) -> list[float]:
        asked.extend(questions)
        return compute(self, images, questions)

    monkeypatch.setattr(VqaScorer, "_p_yes_batch", counting)
    pairs = [pair_with_questions("p0__man"), pair_with_questions("p1__man")]
    bright = {(p["id"], seed): p["id"] == "p0__man" for p in pairs for seed in (0, 1)}
    out = build(tmp_path / "out", pairs, bright=bright)
    evaluate(out, clip_model="tiny", vqa_model="tiny", bootstrap_resamples=50)
    wordings = {w for q in QUESTIONS for w in (q.factual, q.counterfactual)}
    assert sorted(asked) == sorted([*wordings, *wordings])  # black and white images
    answers = (out / ANSWERS_FILE).read_bytes()
    asked.clear()
    evaluate(out, clip_model="tiny", vqa_model="tiny", bootstrap_resamples=50)
    assert asked == []
    assert (out / ANSWERS_FILE).read_bytes() == answers


def test_without_questions_or_without_vqa(tmp_path: Path, toy: ToyVqa) -> None:
    plain = make_pair("p9__dog", "a cat on a table", "a dog on a table")
    out = build(tmp_path / "out", [pair_with_questions("p0__man"), plain], seeds=(0,))
    result = evaluate(out, clip_model="tiny", vqa_model="tiny", bootstrap_resamples=50)
    row = rows_of(out)[("p9__dog", 0)]
    assert all(row[name] is None for name in QUESTION_METRICS)
    assert "no questions" in row["intervention_success_reason"]
    assert any("question metrics null for 1" in note for note in result.notes)
    # Without --vqa-model: no question metrics, and the old answers are gone.
    evaluate(out, clip_model="tiny", bootstrap_resamples=50)
    assert not (out / ANSWERS_FILE).exists()
    assert all(name not in row for row in rows_of(out).values() for name in QUESTION_METRICS)


def test_tiny_blip_end_to_end_equals_the_scorer_by_hand(tmp_path: Path) -> None:
    out = build(tmp_path / "out", [pair_with_questions("p0__man")], seeds=(0, 1))
    evaluate(out, clip_model="tiny", vqa_model="tiny", bootstrap_resamples=50)
    scorer = VqaScorer.load("tiny")
    for (pair_id, seed), row in rows_of(out).items():
        png_0, png_1, _ = store.image_paths(out, pair_id, seed)
        images = [np.asarray(Image.open(p).convert("RGB")) for p in (png_0, png_1)]
        values, _ = question_metrics(ask(QUESTIONS, *images, scorer.p_yes))
        assert {name: row[name] for name in QUESTION_METRICS} == values


def test_an_unloadable_vqa_model_stops_before_any_work(tmp_path: Path) -> None:
    out = build(tmp_path / "out", [pair_with_questions("p0__man")], seeds=(0,))
    with pytest.raises(EvaluateError, match="no such folder"):
        evaluate(out, clip_model="tiny", vqa_model="./no-such-blip")
    assert not (out / METRICS_FILE).exists()


def test_run_checks_the_vqa_model_before_the_first_image(tmp_path: Path) -> None:
    """`cfspec run --vqa-model` refuses a VQA model that will not load before it generates,
    as it does a CLIP model; the built-in tiny one passes."""
    from cfspec.stages.preflight import run_problems

    (tmp_path / "out").mkdir()
    problems = run_problems(tmp_path / "out", model="tiny", clip_model="tiny",
                            vqa_model="./no-such-blip")
    assert len(problems) == 1 and problems[0].startswith("--vqa-model ./no-such-blip: no such")
    assert run_problems(tmp_path / "out", model="tiny", clip_model="tiny",
                        vqa_model="tiny") == []
    from cfspec.cli.app import app

    done = runner.invoke(app, ["run", "specs/cake.scm", "-o", str(tmp_path / "run"),
                               "--model", "tiny", "--clip-model", "tiny",
                               "--vqa-model", "./no-such-blip", "--quiet"])
    assert done.exit_code == 2, done.output
    assert "--vqa-model ./no-such-blip: no such" in done.output
    assert not list((tmp_path / "run").rglob("*.png"))


def test_a_shard_leaves_the_questions_to_the_unsharded_run(tmp_path: Path, toy: ToyVqa
                                                           ) -> None:
    from cfspec.workspace.shards import Shard

    desk = make_pair("p1__man", "a woman at a desk", "a man at a desk")
    desk["questions"] = [q.to_json() for q in QUESTIONS]
    out = build(tmp_path / "out", [pair_with_questions("p0__man"), desk], seeds=(0,))
    result = evaluate(out, clip_model="tiny", vqa_model="tiny", shard=Shard(0, 2),
                      bootstrap_resamples=50)
    assert toy.asked == 0 and any("questions not asked" in n for n in result.notes)
    shard_rows = [json.loads(line) for line in
                  result.metrics_path.read_text(encoding="utf-8").splitlines()]
    assert shard_rows and all("intervention_success" not in r for r in shard_rows)
    whole = evaluate(out, clip_model="tiny", vqa_model="tiny", bootstrap_resamples=50)
    assert whole.reused == len(shard_rows)  # the shard's rows are reused, and asked
    assert all(r["intervention_success"] is not None for r in rows_of(out).values())
