"""`filter --keep K` (the K best passing seeds per pair, one export row per kept (pair, seed))
and the drawn generation settings export carries per row (effective guidance, drawn
cross_replace/self_replace). OUT folders are built as test_export.py builds them; the
end-to-end case scores them with the tiny CLIP."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from test_export import (
    PAIRS,
    _croissant,
    build_out,
    metric_row,
    runner,
    stage_app,
    write_metrics,
)

from cfspec.cli.stages import filter_command
from cfspec.pipeline import RunOptions, arguments
from cfspec.stages.export import export
from cfspec.stages.filter import Gates, decide, run_filter
from cfspec.stages.selection import select
from cfspec.workspace.filter_lines import read_filter
from cfspec.workspace.layout import CF_JSON_FILE, COCO_CF_FILE, FILTER_FILE, MANIFEST_FILE
from cfspec.workspace.manifest_lines import ManifestLine, read_manifest
from cfspec.workspace.pairs import Pair
from cfspec.workspace.reading import StageError, read_pair_file

np = pytest.importorskip("numpy")

SEEDS = (0, 1, 2, 3)


def four_seed_metrics(out: Path) -> None:
    """p1__dog: seeds 0-2 pass (directional 0.25, 0.4, 0.3), seed 3 fails; p1__chair: only
    seed 2 passes; p2__red: none passes."""
    dog, chair, red = PAIRS
    write_metrics(out, [
        metric_row(dog, 0, directional=0.25), metric_row(dog, 1, directional=0.4),
        metric_row(dog, 2, directional=0.3), metric_row(dog, 3, directional=0.1),
        metric_row(chair, 0, clip=15.0), metric_row(chair, 1, image=0.5),
        metric_row(chair, 2, directional=0.35), metric_row(chair, 3, clip=10.0),
        *[metric_row(red, s, image=0.1) for s in SEEDS],
    ])


def pairs_of(out: Path) -> dict[str, Pair]:
    return {p.id: p for p in read_pair_file(out)[0]}


def filter_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / FILTER_FILE).read_text().splitlines()]


def test_keep_one_writes_what_filter_always_wrote(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=SEEDS)
    four_seed_metrics(out)
    run_filter(out, Gates())
    default = (out / FILTER_FILE).read_bytes()
    run_filter(out, Gates(), keep=1)
    assert (out / FILTER_FILE).read_bytes() == default
    lines = filter_lines(out)
    # the fields (and their order) of a filter.jsonl line before --keep existed
    assert all(list(line) == ["id", "kept_seed", "reason", "directional_similarity", "gates",
                              "seeds"] for line in lines)
    assert [line["kept_seed"] for line in lines] == [1, 2, None]
    assert lines[0]["reason"] == ("seed 1: the highest directional similarity (0.4000) of 3 of "
                                  "4 seed(s) that passed every gate")
    # and the CLI without --keep writes the same bytes
    assert runner.invoke(stage_app(), ["filter", str(out)]).exit_code == 0
    assert (out / FILTER_FILE).read_bytes() == default
    # export ids are the pair ids, as before
    assert [(c.id, c.seed, c.rank) for c in select(out).candidates] == [
        ("p1__dog", 1, 1), ("p1__chair", 2, 1)]


def test_keep_two_keeps_the_two_best_ranked_and_fewer_when_fewer_pass(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=SEEDS)
    four_seed_metrics(out)
    result = runner.invoke(stage_app(), ["filter", str(out), "--keep", "2"])
    assert result.exit_code == 0, result.output
    assert ("kept 2 of 3 pair(s) (3 (pair, seed)s: up to 2 per pair; 1 pair(s) kept fewer "
            "(fewer passed))") in result.output
    dog, chair, red = filter_lines(out)
    assert dog["keep"] == 2 and dog["kept_seeds"] == [1, 2] and dog["kept_seed"] == 1
    assert dog["directional_similarity"] == pytest.approx(0.4)  # of the best
    assert "seed(s) 1, 2: the 2 highest directional similarities (0.4000, 0.3000)" in (
        dog["reason"])
    assert chair["kept_seeds"] == [2] and "only 1 passed, fewer than --keep 2" in chair["reason"]
    assert red["kept_seeds"] == [] and red["kept_seed"] is None
    # every seed's verdict is still recorded
    assert [v["passed"] for v in dog["seeds"]] == [True, True, True, False]
    # read back through the typed records
    decisions, problems = read_filter(out, pairs_of(out))  # type: ignore[misc]
    assert problems == [] and decisions["p1__dog"].kept == (1, 2)
    # ties: the lower seed first, as for K = 1
    rows = {s: metric_row(PAIRS[0], s, directional=0.3) for s in (4, 2, 7)}
    from test_export import row_of

    tied = decide("p1__dog", {s: row_of(r) for s, r in rows.items()}, Gates(), keep=2)
    assert tied.kept == (2, 4)


def test_keep_below_one_is_a_usage_error(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=SEEDS)
    four_seed_metrics(out)
    for bad in ("0", "-1", "two"):
        result = runner.invoke(stage_app(), ["filter", str(out), "--keep", bad])
        assert result.exit_code == 2, result.output
        assert "--keep" in result.output and "Traceback" not in result.output
    assert not (out / FILTER_FILE).exists()
    with pytest.raises(StageError, match="--keep must be an integer of at least 1"):
        run_filter(out, Gates(), keep=0)
    assert not (out / FILTER_FILE).exists()


def test_run_passes_keep_to_the_filter(tmp_path: Path) -> None:
    _, kwargs = arguments("filter", RunOptions(("specs",), tmp_path, {"keep": 3}),
                          inspect.signature(filter_command).parameters)
    assert kwargs["keep"] == 3


def test_a_hand_edited_kept_seeds_is_a_diagnostic(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=SEEDS)
    four_seed_metrics(out)
    run_filter(out, Gates(), keep=2)
    lines = (out / FILTER_FILE).read_text().splitlines()
    first = json.loads(lines[0])
    first["kept_seeds"] = [2, 1]  # kept_seed must come first
    second = json.loads(lines[1])
    second["keep"] = 0
    (out / FILTER_FILE).write_text("\n".join([json.dumps(first), json.dumps(second),
                                              lines[2]]) + "\n")
    result = runner.invoke(stage_app(), ["export", str(out), "--to", "coco-cf", "-o",
                                         str(tmp_path / "coco"), "--format", "json"])
    found = json.loads(result.stdout)
    assert [(d["line"], d["name"]) for d in found] == [(1, "invalid-filter-file"),
                                                      (2, "invalid-filter-file")]
    assert "kept_seeds" in found[0]["message"] and "keep" in found[1]["message"]


def test_export_writes_one_row_per_kept_seed(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    out = build_out(tmp_path / "out", seeds=SEEDS, size=24)
    four_seed_metrics(out)
    run_filter(out, Gates(), keep=2)
    expected = [("p1__dog__s1", "p1__dog", 1, 1), ("p1__dog__s2", "p1__dog", 2, 2),
                ("p1__chair__s2", "p1__chair", 2, 1)]
    selection = select(out)
    assert [(c.id, c.pair_id, c.seed, c.rank) for c in selection.candidates] == expected
    assert "2 of 3 pair(s), 3 (pair, seed)s (up to 2 per pair" in selection.description

    coco = tmp_path / "coco"
    export(out, "coco-cf", coco)
    lines = [json.loads(x) for x in (coco / COCO_CF_FILE).read_text().splitlines()]
    assert [list(x) for x in lines] == [["id", "caption_0", "caption_1", "image_0",
                                         "image_1"]] * 3  # COCO-Counterfactuals' columns
    assert [x["id"] for x in lines] == [e[0] for e in expected]
    assert (coco / "p1__dog__s2_img_1.png").read_bytes() == (
        out / "images" / "p1__dog" / "2_1.png").read_bytes()

    cf = tmp_path / "cf"
    export(out, "cf-json", cf)
    records = json.loads((cf / CF_JSON_FILE).read_text(encoding="utf-8"))
    assert [(r["id"], r["pair_id"], r["seed"], r["rank"]) for r in records] == expected
    assert len({r["original_image"] for r in records}) == 3
    assert all((cf / r["counterfactual_image"]).is_file() for r in records)

    hf = tmp_path / "hf"
    export(out, "hf", hf)
    loaded = datasets.load_dataset(str(hf), split="train", cache_dir=str(tmp_path / "cache"))
    assert [(r["id"], r["pair_id"], r["seed"], r["rank"]) for r in loaded] == expected
    card = (hf / "README.md").read_text(encoding="utf-8")
    assert "- name: rank" in card and "`<pair_id>__s<seed>`" in card
    assert "seeds kept per pair: up to 2" in card
    meta = json.loads((hf / "croissant.json").read_text(encoding="utf-8"))
    fields = {f["name"]: f for f in meta["recordSet"][0]["field"]}
    assert fields["rank"]["dataType"] == "sc:Integer" and "rank" in fields["rank"]["description"]
    assert fields["pair_id"]["dataType"] == "sc:Text"
    assert meta["provenance"]["seeds_per_pair"] == 2
    assert "up to 2 best seeds per pair" in meta["rai:dataPreprocessingProtocol"]
    records = list(_croissant(hf / "croissant.json").records("pairs"))
    assert [(r["pairs/id"], r["pairs/rank"]) for r in records] == [
        (b"p1__dog__s1", 1), (b"p1__dog__s2", 2), (b"p1__chair__s2", 1)]


def test_keep_end_to_end_with_the_tiny_clip(tmp_path: Path) -> None:
    """Scored by the tiny CLIP, gates opened wide: the kept seeds are each pair's two highest
    directional similarities of metrics.jsonl, best first."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    out = build_out(tmp_path / "out", seeds=(0, 1, 2))
    app = stage_app()
    result = runner.invoke(app, ["evaluate", str(out), "--clip-model", "tiny", "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["filter", str(out), "--keep", "2", "--min-clip", "0",
                                 "--min-directional", "-1", "--min-image-similarity", "-1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    defined = {(r["id"], r["seed"]): r["directional_similarity"] for r in rows
               if r["directional_defined"]}
    for line in filter_lines(out):
        seeds = {s: v for (pid, s), v in defined.items() if pid == line["id"]}
        best = sorted(seeds, key=lambda s: (-seeds[s], s))[:2]
        assert line["kept_seeds"] == best
    export(out, "coco-cf", tmp_path / "coco")
    ids = [json.loads(x)["id"] for x in (tmp_path / "coco" / COCO_CF_FILE).read_text()
           .splitlines()]
    assert len(ids) == len(set(ids)) == sum(len(line["kept_seeds"]) for line in
                                            filter_lines(out))


# --- drawn settings -------------------------------------------------------------------------


def set_drawn(out: Path, drawn: dict[tuple[str, int], dict[str, float]]) -> None:
    """Rewrite the manifest as a generate that samples settings writes it: `guidance` the
    effective value, `drawn` only the sampled keys (absent when nothing was sampled)."""
    lines = []
    for text in (out / MANIFEST_FILE).read_text().splitlines():
        record = json.loads(text)
        sampled = drawn.get((record["id"], record["seed"]))
        if sampled:
            record["drawn"] = sampled
            if "guidance" in sampled:  # generate records the range it drew from
                record["guidance"] = sampled["guidance"]
                record["guidance_range"] = [5.0, 6.0]
        lines.append(json.dumps(record))
    (out / MANIFEST_FILE).write_text("\n".join(lines) + "\n")


DRAWN = {("p1__dog", 0): {"guidance": 5.25, "cross_replace": 0.6, "self_replace": 0.3},
         ("p1__chair", 0): {"cross_replace": 0.7}}


def test_manifest_line_drawn_accessor() -> None:
    line = ManifestLine.from_json({"id": "a", "seed": 0, "guidance": 5.25,
                                   "drawn": {"guidance": 5.25, "self_replace": 0.3}})
    drawn = line.drawn()
    assert (drawn.guidance, drawn.guidance_drawn, drawn.cross_replace, drawn.self_replace) == (
        5.25, True, None, 0.3)
    assert drawn.sampled() == {"guidance": 5.25, "self_replace": 0.3}
    fixed = ManifestLine.from_json({"id": "a", "seed": 0, "guidance": 7.5}).drawn()
    assert (fixed.guidance, fixed.guidance_drawn, fixed.sampled()) == (7.5, False, {})


def test_export_carries_the_effective_guidance_and_drawn_windows(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    out = build_out(tmp_path / "out", seeds=(0,), size=24)
    set_drawn(out, DRAWN)
    expected = [("p1__dog", 5.25, 0.6, 0.3), ("p1__chair", 7.5, 0.7, None),
                ("p2__red", 7.5, None, None)]

    cf = tmp_path / "cf"
    export(out, "cf-json", cf)
    records = json.loads((cf / CF_JSON_FILE).read_text(encoding="utf-8"))
    assert [(r["id"], r["guidance"], r["cross_replace"], r["self_replace"])
            for r in records] == expected

    hf = tmp_path / "hf"
    export(out, "hf", hf)
    loaded = datasets.load_dataset(str(hf), split="train", cache_dir=str(tmp_path / "cache"))
    assert [(r["id"], r["guidance"], r["cross_replace"], r["self_replace"])
            for r in loaded] == expected
    assert loaded.features["cross_replace"].dtype == "float64"
    card = (hf / "README.md").read_text(encoding="utf-8")
    assert "- name: cross_replace\n    dtype: float64" in card
    assert "- guidance: `7.5` (2 rows), `uniform(5, 6) per factual image and seed` (1 rows)" \
        in card
    assert "- guidance, the values drawn: 5.25 to 5.25 (1 rows; column `guidance`)" in card
    assert "- cross_replace, the values drawn: 0.6 to 0.7 (2 rows" in card
    assert card.count("- guidance") == 2 and "guidance_range" not in card
    meta = json.loads((hf / "croissant.json").read_text(encoding="utf-8"))
    prov = meta["provenance"]
    assert prov["drawn"] == {"guidance": {"rows": 1, "min": 5.25, "max": 5.25},
                             "cross_replace": {"rows": 2, "min": 0.6, "max": 0.7},
                             "self_replace": {"rows": 1, "min": 0.3, "max": 0.3}}
    # the fixed guidance for the rows that had it, the range for the drawn one; no draws
    assert prov["generation"]["guidance"] == [
        {"value": 7.5, "rows": 2},
        {"value": "uniform(5, 6) per factual image and seed", "rows": 1}]
    assert "drawn" not in prov["generation"] and "guidance_range" not in prov["generation"]
    assert ("guidance 7.5, uniform(5, 6) per factual image and seed (the values drawn: 5.25 "
            "to 5.25 over 1 row(s))") in meta["rai:dataCollection"]
    fields = {f["name"]: f for f in meta["recordSet"][0]["field"]}
    assert fields["self_replace"]["dataType"] == "sc:Float"
    records = list(_croissant(hf / "croissant.json").records("pairs"))
    assert [r["pairs/guidance"] for r in records] == [5.25, 7.5, 7.5]
    assert records[0]["pairs/cross_replace"] == pytest.approx(0.6)


def test_a_malformed_drawn_is_a_warning_and_reads_as_not_drawn(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0,))
    set_drawn(out, {("p1__dog", 0): {"cross_replace": "wide"},  # type: ignore[dict-item]
                    ("p2__red", 0): {"eta": 0.1}})
    found, problems = read_manifest(out, pairs_of(out))
    assert [(p.severity.value, "drawn" in p.message) for p in problems] == [
        ("warning", True), ("warning", True)]
    assert found["p1__dog"][0].line.drawn().cross_replace is None
    assert len(found) == 3  # still exported
