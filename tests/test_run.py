"""`cfspec run`: every stage in one command, as `make demo` uses it (tiny models, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cfspec.cli.app import app

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("diffusers")


def test_run_goes_from_spec_to_dataset_and_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "run", str(ROOT / "specs" / "cake.scm"), "-o", str(out), "--model", "tiny",
        "--clip-model", "tiny", "--device", "cpu", "--steps", "2", "--height", "32",
        "--width", "32",
        "--seeds", "1", "--seed-base", "7", "--scheduler", "euler", "--quiet",
        "--min-clip", "0", "--min-directional", "-1", "--min-image-similarity", "-1",
        "--p2p-compat", "published", "--blend-start", "0.5",
    ])
    assert result.exit_code == 0, result.output
    pairs = [json.loads(x) for x in (out / "pairs.jsonl").read_text().splitlines()]
    manifest = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    # The generate options reach the generator.
    assert {(m["seed"], m["scheduler"], m["steps"]) for m in manifest} == {(7, "euler", 2)}
    assert {(m["p2p_compat"], m["blend_start"]) for m in manifest} == {("published", 0.5)}
    assert {m["id"] for m in manifest} == {p["id"] for p in pairs}
    assert len((out / "metrics.jsonl").read_text().splitlines()) == len(pairs)
    kept = [json.loads(x)["kept_seed"] for x in (out / "filter.jsonl").read_text().splitlines()]
    assert kept == [7] * len(pairs)
    assert (out / "report.html").is_file()
    card = (out / "dataset" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")


def test_run_stops_when_nothing_compiles(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "run", str(ROOT / "specs" / "invalid" / "cycle.scm"), "-o", str(out), "--quiet"])
    assert result.exit_code == 1
    assert not (out / "manifest.jsonl").exists()
    assert "== generate" not in result.output


def test_run_exits_1_when_nothing_is_exported(tmp_path: Path) -> None:
    """Every pair filtered out (a CLIP score, 100 x a cosine, cannot reach 1000): no dataset,
    so not a success, as `cfspec export` alone exits 1; the report still shows why."""
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "run", str(ROOT / "specs" / "cake.scm"), "-o", str(out), "--model", "tiny",
        "--clip-model", "tiny", "--device", "cpu", "--steps", "2", "--height", "32",
        "--width", "32", "--quiet", "--gate", "clip_score_0>=1000"])
    assert result.exit_code == 1, result.output
    assert "== report" in result.output and (out / "report.html").is_file()
    assert f"cfspec: nothing exported to {out / 'dataset'}" in result.output
    assert not (out / "dataset").exists()
    kept = [json.loads(x)["kept_seed"] for x in (out / "filter.jsonl").read_text().splitlines()]
    assert kept and all(seed is None for seed in kept)
    # The same OUT with gates that keep everything: a dataset, exit 0.
    assert "cfspec: nothing exported" not in result.output.split("== export")[0]
    again = CliRunner().invoke(app, [
        "run", str(ROOT / "specs" / "cake.scm"), "-o", str(out), "--model", "tiny",
        "--clip-model", "tiny", "--device", "cpu", "--steps", "2", "--height", "32",
        "--width", "32", "--quiet", "--min-clip", "0", "--min-directional", "-1",
        "--min-image-similarity", "-1"])
    assert again.exit_code == 0, again.output
    assert (out / "dataset" / "README.md").is_file()
