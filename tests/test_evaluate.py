"""`cfspec evaluate`: the stage logic around the metric core (which tests/test_metrics.py
covers): rows per (pair, seed), batched CLIP, validation of what it reads, the summary (means
with intervals, KID/FID only with a feature extractor, FID refused below 50 images), CLD with 20
seeds, and one end-to-end run of the real pipeline (compile, generate, evaluate, filter,
export, report) with the tiny models."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402
from test_export import (  # noqa: E402
    PAIRS,
    build_out,
    make_pair,
    stage_app,
    write_generated,
)
from typer.testing import CliRunner  # noqa: E402

from cfspec.gpu.evaluate.clip import ClipScorer  # noqa: E402
from cfspec.gpu.evaluate.stage import EvaluateError, evaluate  # noqa: E402
from cfspec.workspace.metrics_rows import MetricsRow  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
FAST: dict[str, Any] = {"quiet": True, "bootstrap_resamples": 200}


class MeanColour(torch.nn.Module):
    """A stand-in Inception: per-channel means and stds of 4 x 4 blocks (uint8 in, (N, F) out)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = torch.nn.functional.avg_pool2d(x.float() / 255.0, 8)
        return torch.cat([blocks.flatten(1), x.float().std(dim=(2, 3)) / 255.0], dim=1)


def test_rows_for_every_pair_and_seed(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    result = evaluate(out, clip_model="tiny", **FAST)
    assert [(r.id, r.seed) for r in result.rows] == [
        (p["id"], s) for p in PAIRS for s in (0, 1)]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # the typed rows are what was written, field for field
    assert lines == [r.to_json() for r in result.rows]
    assert [MetricsRow.from_json(line) for line in lines] == result.rows
    row = lines[0]
    for key in ("clip_score_0", "clip_score_1", "directional_similarity", "directional_defined",
                "image_image_similarity", "effective", "effectiveness_margin",
                "latent_l2_per_dim", "latent_cosine_distance", "background_ssim",
                "background_psnr"):
        assert key in row, key
    assert "cld" not in row and not any("cld" in k for k in row)  # < 20 seeds: no CLD
    assert 0.0 <= row["clip_score_0"] <= 100.0
    # the background (outside the changed centre) is identical in the test images
    assert row["background_psnr"] == 100.0 and row["background_psnr_capped"] is True
    assert row["background_ssim"] == pytest.approx(1.0, abs=1e-3)
    assert row["prompt_1"] == PAIRS[0]["prompt_1"] and row["model"] == "tiny"
    assert result.ok and result.diagnostics == []


def test_summary_means_intervals_and_skips(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    result = evaluate(out, clip_model="tiny", **FAST)
    summary = json.loads((out / "metrics_summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    clip = summary["means"]["clip_score_0"]
    # 3 pairs x 2 seeds: the mean over pairs, but no interval below 5 pairs
    assert clip["n"] == 6 and clip["n_pairs"] == 3 and clip["ci95"] is None
    assert "5 pairs" in clip["ci_reason"]
    per_pair: dict[str, list[float]] = {}
    for row in result.rows:
        per_pair.setdefault(row.id, []).append(row.values["clip_score_0"])
    expected = sum(sum(v) / len(v) for v in per_pair.values()) / len(per_pair)
    assert clip["mean"] == pytest.approx(expected, rel=1e-12)
    assert summary["bootstrap"]["unit"] == "pair" and summary["bootstrap"]["min_pairs"] == 5
    assert summary["seeds_per_pair"] == {"min": 2, "max": 2}
    assert "skipped" in summary["set"]
    notes = " ".join(summary["notes"])
    assert "--inception-weights" in notes and "cld ingredients computed for 0 of 3" in notes
    assert "lpips" in notes.lower()  # either measured or skipped with the reason


def test_interval_resamples_pairs_not_rows(tmp_path: Path) -> None:
    """6 pairs x 3 seeds: an interval, computed over the pairs (the same as
    `cluster_bootstrap_ci` on the rows grouped by pair id)."""
    from cfspec.workspace.intervals import cluster_bootstrap_ci

    pairs = [make_pair(f"q{i}__b", f"a cat number {i}", f"a dog number {i}") for i in range(6)]
    out = build_out(tmp_path / "out", pairs, seeds=(0, 1, 2), size=16)
    result = evaluate(out, clip_model="tiny", **FAST)
    entry = result.summary["means"]["latent_l2_per_dim"]
    assert entry["n"] == 18 and entry["n_pairs"] == 6 and "ci_reason" not in entry
    expected = cluster_bootstrap_ci([r.values["latent_l2_per_dim"] for r in result.rows],
                                    [r.id for r in result.rows], n_resamples=200)
    assert entry["ci95"] == [expected.low, expected.high]
    assert entry["ci95"][0] < entry["mean"] < entry["ci95"][1]


def test_nearly_flat_attention_still_gives_a_background(tmp_path: Path) -> None:
    """The tiny model's saved maps sit at 0.8-1.0 of their peak everywhere (this left every
    demo row without a background score); the edit region is taken on each map's range, so
    such pairs get background and locality scores, measured on the part below mid-range."""
    import numpy as np

    from cfspec.workspace import store

    out = build_out(tmp_path / "out", PAIRS[:1], seeds=(0,))
    npz = store.image_paths(out, PAIRS[0]["id"], 0)[2]
    with np.load(npz) as extras:
        saved = {k: extras[k] for k in extras.files}
    rng = np.random.default_rng(0)
    saved["attention"] = (0.8 + 0.2 * rng.random((2, 4, 4))).astype(np.float32)
    store.save_npz(npz, saved)
    (typed,) = evaluate(out, clip_model="tiny", **FAST).rows
    row = typed.to_json()
    assert row["background_ssim"] is not None and row["background_psnr"] is not None
    assert row["latent_l2_outside_edit"] is not None and 0 < row["edit_area_outside"] < 1


def test_clip_work_is_batched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, list[int]] = {"images": [], "texts": []}
    images, texts = ClipScorer.embed_images, ClipScorer.embed_texts

    def spy_images(self: ClipScorer, batch: Any, *args: Any, **kwargs: Any) -> Any:
        calls["images"].append(len(batch))
        return images(self, batch, *args, **kwargs)

    def spy_texts(self: ClipScorer, batch: Any, *args: Any, **kwargs: Any) -> Any:
        calls["texts"].append(len(batch))
        return texts(self, batch, *args, **kwargs)

    monkeypatch.setattr(ClipScorer, "embed_images", spy_images)
    monkeypatch.setattr(ClipScorer, "embed_texts", spy_texts)
    out = build_out(tmp_path / "out")
    evaluate(out, clip_model="tiny", batch_size=4, **FAST)
    assert calls["images"] == [8, 4]  # 6 (pair, seed)s in batches of 4: both images at once
    assert calls["texts"] == [5]  # every distinct prompt once ("a cat on a table" is shared)


def test_invalid_inputs_are_diagnostics_and_exit_one(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0,))
    with open(out / "pairs.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"id": "broken", "prompt_0": 3}\n')
    # a stale manifest line (made for another prompt) and a PNG gone missing
    stale = make_pair("p2__red", "a blue car", "a green car")
    write_generated(out, stale, 7)
    (out / "images" / "p1__chair" / "0_1.png").unlink()
    result = runner.invoke(stage_app(), ["evaluate", str(out), "--clip-model", "tiny",
                                         "--format", "json", "--quiet"])
    assert result.exit_code == 1, result.output
    found = json.loads(result.stdout)
    by_name = {d["name"]: d for d in found}
    assert by_name["invalid-pairs-file"]["line"] == 4
    manifest = sorted((d for d in found if d["name"] == "invalid-manifest"),
                      key=lambda d: d["line"])
    assert [d["line"] for d in manifest] == [2, 4]
    assert "image_1" in manifest[0]["message"] and "missing" in manifest[0]["message"]
    assert "field `prompt_1`" in manifest[1]["message"]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["id"], r["seed"]) for r in rows] == [("p1__dog", 0), ("p2__red", 0)]


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    app = stage_app()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["evaluate", str(empty), "--clip-model", "tiny"])
    assert result.exit_code == 2 and "cfspec compile" in result.output
    out = tmp_path / "out"
    from cfspec.workspace.pairs import write_pairs

    write_pairs(out, PAIRS)
    result = runner.invoke(app, ["evaluate", str(out), "--clip-model", "tiny"])
    assert result.exit_code == 2 and "cfspec generate" in result.output
    build_out(out, seeds=(0,))
    result = runner.invoke(app, ["evaluate", str(out), "--clip-model", "tiny",
                                 "--inception-weights", str(tmp_path / "no.pth")])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["evaluate", str(out), "--clip-model", str(tmp_path / "nope")])
    assert result.exit_code == 2
    with pytest.raises(EvaluateError):
        evaluate(out, clip_model="tiny", batch_size=0)
    result = runner.invoke(app, ["evaluate", str(out), "--clip-model", "tiny", "--device",
                                 "warp-drive"])
    assert result.exit_code == 2 and "--device" in result.output


def test_kid_always_fid_from_fifty_images(tmp_path: Path) -> None:
    small = build_out(tmp_path / "small", seeds=(0, 1, 2))
    result = evaluate(small, clip_model="tiny", feature_extractor=MeanColour(), **FAST)
    set_level = result.summary["set"]
    # p1__dog and p1__chair share their factual prompt but not their images here: 9 + 9
    assert set_level["n_reference"] == 9 and set_level["n_candidate"] == 9
    assert "value" in set_level["kid"] and set_level["kid"]["feature_size"] == 51
    assert "FID refused" in set_level["fid"]["refused"]
    pairs = [make_pair(f"q{i}__b", f"a cat number {i}", f"a dog number {i}") for i in range(50)]
    big = build_out(tmp_path / "big", pairs, seeds=(0,), size=16)
    result = evaluate(big, clip_model="tiny", feature_extractor=MeanColour(), batch_size=64, **FAST)
    fid = result.summary["set"]["fid"]
    assert fid["n_reference"] == 50 and fid["n_candidate"] == 50 and fid["value"] >= 0
    assert any("2048" in note for note in fid["notes"])  # warned below 2048
    assert fid["noise_floor"] is None  # two disjoint 50-image reference halves need 100


def test_shared_factual_images_count_once(tmp_path: Path) -> None:
    import numpy as np

    same = np.full((32, 32, 3), 128, dtype=np.uint8)
    out = build_out(tmp_path / "out", PAIRS[:2], seeds=(0,), image_0=same)
    result = evaluate(out, clip_model="tiny", feature_extractor=MeanColour(), **FAST)
    assert result.summary["set"]["n_reference"] == 1
    assert result.summary["set"]["reference_duplicates_dropped"] == 1


def test_cld_with_twenty_seeds(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", PAIRS[2:], seeds=range(20), size=16)
    result = evaluate(out, clip_model="tiny", **FAST)
    assert len(result.rows) == 20
    for row in (r.to_json() for r in result.rows):
        # both images of a (pair, seed) share its noise: no published CLD, its ingredients
        assert row["cld"] is None and "same noise" in row["cld_reason"]
        assert row["cld_n_seeds"] == 20 and 0.0 <= row["cld_p_cf"] <= 1.0
        assert 0.0 <= row["cld_p_f"] <= 1.0 and row["latent_change_vs_reseed"] > 0
        assert row["cld_d"] == pytest.approx(row["latent_l2_per_dim"], rel=1e-5)
    means = result.summary["means"]
    assert "cld" not in means and means["cld_p_f"]["n"] == 20
    assert any("cld not reported" in note for note in result.summary["notes"])


def test_end_to_end_with_the_real_pipeline(tmp_path: Path) -> None:
    """compile specs/cake.scm -> generate (tiny) -> evaluate (tiny CLIP) -> filter -> export hf
    (loaded back) -> report."""
    try:
        from cfspec.gpu.generate.stage import generate
    except ImportError as error:  # the generate stage is being finished elsewhere
        pytest.skip(f"cfspec.gpu.generate.stage.generate is not importable yet: {error}")
    pytest.importorskip("diffusers")
    datasets = pytest.importorskip("datasets")
    from cfspec.compile.stage import compile_paths
    from cfspec.lang.config import Config

    out = tmp_path / "out"
    compiled = compile_paths([str(ROOT / "specs" / "cake.scm")], Config(), out)
    assert compiled.written is not None
    generated = generate(out, model="tiny", seeds=2, steps=2, height=32, width=32, quiet=True)
    assert generated.ok and generated.generated == 6
    app = stage_app()
    result = runner.invoke(app, ["evaluate", str(out), "--clip-model", "tiny", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 6
    # the tiny CLIP is random, so loose gates: every pair keeps one of its two seeds
    result = runner.invoke(app, ["filter", str(out), "--min-clip", "0", "--min-directional",
                                 "-1", "--min-image-similarity", "-1"])
    assert result.exit_code == 0, result.output
    decisions = [json.loads(x) for x in (out / "filter.jsonl").read_text().splitlines()]
    assert len(decisions) == 3 and all(d["kept_seed"] in (0, 1) for d in decisions)
    result = runner.invoke(app, ["export", str(out), "--to", "hf", "-o", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    loaded = datasets.load_dataset(str(tmp_path / "hf"), split="train",
                                   cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == 3 and loaded[0]["image_1"].size == (32, 32)
    assert [r["seed"] for r in loaded] == [d["kept_seed"] for d in decisions]
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "158956_0__fork" in html and "data:image/png;base64," in html


def test_terminal_gives_the_summary_files_reason_for_a_missing_interval() -> None:
    """The table prints each mean's `ci_reason` from the summary, the one source of it: an
    interval refused for unbounded bootstrap tails is not called a shortage of pairs."""
    from rich.console import Console

    from cfspec.gpu.evaluate.summary import summary_table

    unbounded = "the bootstrap tails are unbounded (too few distinct pairs)"
    summary = {"rows": 12, "pairs_evaluated": 6, "clip_model": "tiny", "means": {
        "effective": {"mean": 0.83, "ci95": None, "n": 12, "n_pairs": 6,
                      "ci_reason": unbounded},
        "clip_score_0": {"mean": 30.0, "ci95": [29.0, 31.0], "n": 12, "n_pairs": 6},
        "edit_area_outside": {"mean": 0.5, "ci95": None, "n": 12, "n_pairs": 6,
                              "ci_reason": unbounded}}}
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(summary_table(summary))
    text = console.export_text()
    assert "< 5 pairs" not in text and "[29, 31]" in text
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "none [1]" in lines["effective"] and "none [1]" in lines["edit_area_outside"]
    words = " ".join(text.split())  # the caption wraps at the table's width
    assert words.count(unbounded) == 1 and f"[1] {unbounded}" in words  # once, below


def test_cli_prints_the_reason_the_summary_file_gives(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    result = runner.invoke(stage_app(), ["evaluate", str(out), "--clip-model", "tiny"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "metrics_summary.json").read_text())
    reasons = {entry["ci_reason"] for entry in summary["means"].values()}
    assert reasons  # 3 pairs: no interval for any mean
    printed = " ".join(result.stderr.split())
    for reason in reasons:
        assert " ".join(reason.split()) in printed
