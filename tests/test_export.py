"""`cfspec filter` and `cfspec export`: gates and the best-seed choice on constructed metrics,
every decision recorded, the three export shapes (the hf one loaded back with `datasets`),
path safety and exit codes. OUT folders are written directly in the store's documented format
(`build_out`, also used by test_evaluate.py and test_report_html.py): no model runs here."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cfspec.cli.stages import (
    evaluate_command,
    export_command,
    filter_command,
    report_command,
)
from cfspec.stages.export import ExportError, export
from cfspec.stages.filter import Gates, check_seed, decide, load_gates, run_filter
from cfspec.stages.selection import select
from cfspec.workspace.layout import (
    CF_JSON_FILE,
    COCO_CF_FILE,
    FILTER_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
)
from cfspec.workspace.manifest_lines import read_manifest
from cfspec.workspace.metrics_rows import MetricsRow
from cfspec.workspace.pairs import Pair, dumps, schema_errors, write_pairs
from cfspec.workspace.reading import StageError

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

runner = CliRunner()


def stage_app() -> typer.Typer:
    """The four stage commands on their own app (cfspec.cli.app registers them the same way)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("evaluate")(evaluate_command)
    app.command("filter")(filter_command)
    app.command("export")(export_command)
    app.command("report")(report_command)
    return app


# --- building OUT folders ----------------------------------------------------------------------


def make_pair(pair_id: str, prompt_0: str, prompt_1: str, *, spec: str = "specs/t.scm",
              scm: Sequence[str] = ("A → B: a causes b",),
              scm_aug: Sequence[str] | None = None) -> dict[str, Any]:
    """A schema-valid pairs.jsonl line (a replace edit of equal-length prompts: the words that
    differ are the LocalBlend words)."""
    w0, w1 = prompt_0.split(), prompt_1.split()
    assert len(w0) == len(w1)
    changed = [i for i, (a, b) in enumerate(zip(w0, w1, strict=True)) if a != b]
    spans_0 = [[m.start(), m.end()] for m in re.finditer(r"\S+", prompt_0)]
    spans_1 = [[m.start(), m.end()] for m in re.finditer(r"\S+", prompt_1)]
    pair = {
        "id": pair_id, "spec": spec, "spec_name": "t", "counterfactual": pair_id.split("__")[-1],
        "prompt_0": prompt_0, "prompt_1": prompt_1,
        "intervention": [{"variable": "A", "from": w0[changed[0]] if changed else None,
                          "to": w1[changed[0]] if changed else None}],
        "descendant_changes": [],
        "edit": {
            "type": "replace",
            "cross_replace_steps": {"default": [0.0, 0.8], "words": {}},
            "self_replace_steps": [0.0, 0.4],
            "local_blend": {"words_0": [w0[i] for i in changed],
                            "words_1": [w1[i] for i in changed],
                            "tokens_0": [i + 1 for i in changed],
                            "tokens_1": [i + 1 for i in changed], "threshold": 0.3},
            "equalizer": {"words": [], "values": [], "tokens": []},
            "alignment": {"source": "words",
                          "tokens_0": ["<|startoftext|>", *w0, "<|endoftext|>"],
                          "tokens_1": ["<|startoftext|>", *w1, "<|endoftext|>"],
                          "words": [[i, i] for i in range(len(w0))],
                          "token_map": [[i, i, 1.0] for i in range(len(w0) + 2)]},
        },
        "word_spans": {"changed_0": [spans_0[i] for i in changed],
                       "changed_1": [spans_1[i] for i in changed],
                       "blend_0": [spans_0[i] for i in changed],
                       "blend_1": [spans_1[i] for i in changed]},
        "scm": list(scm), "scm_aug": list(scm_aug if scm_aug is not None else scm),
    }
    assert schema_errors(pair) == []
    return pair


PAIRS = [
    make_pair("p1__dog", "a cat on a table", "a dog on a table"),
    make_pair("p1__chair", "a cat on a table", "a cat on a chair"),
    make_pair("p2__red", "a blue car", "a red car"),
]


def _images(rng: Any, size: int) -> tuple[Any, Any]:
    """A random image and a copy whose centre square differs (the 'changed object', well
    inside the region the test attention maps mark as changed)."""
    image_0 = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    image_1 = image_0.copy()
    lo, hi = size * 3 // 8, size * 5 // 8
    image_1[lo:hi, lo:hi] = rng.integers(0, 256, size=(hi - lo, hi - lo, 3), dtype=np.uint8)
    return image_0, image_1


def write_generated(out: Path, pair: dict[str, Any], seed: int, *, size: int = 32,
                    extras: bool = True, model: str = "tiny",
                    image_0: Any = None) -> None:
    """Files and a manifest line exactly as `cfspec generate` leaves them (store.py's format)."""
    from cfspec.workspace import store

    rng = np.random.default_rng(abs(hash((pair["id"], seed))) % 2**32)
    im0, im1 = _images(rng, size)
    if image_0 is not None:
        im0 = image_0
    png_0, png_1, npz = store.image_paths(out, pair["id"], seed)
    store.save_png(png_0, Image.fromarray(im0))
    store.save_png(png_1, Image.fromarray(im1))
    if extras:
        attention = np.zeros((2, 4, 4), dtype=np.float32)
        attention[:, 1:3, 1:3] = 1.0  # the changed words attend to the centre half
        latents = rng.standard_normal((2, 4, size // 4, size // 4)).astype(np.float32)
        store.save_npz(npz, {
            "latents": latents, "attention": attention,
            "mask": (attention[0] > 0.5).astype(np.uint8),
            "tokens_0": np.array(pair["edit"]["alignment"]["tokens_0"]),
            "tokens_1": np.array(pair["edit"]["alignment"]["tokens_1"]),
            "blend_0": np.array(pair["edit"]["local_blend"]["tokens_0"], dtype=np.int64),
            "blend_1": np.array(pair["edit"]["local_blend"]["tokens_1"], dtype=np.int64),
        })
    store.append_record(out / MANIFEST_FILE, {
        "id": pair["id"], "seed": seed,
        "image_0": png_0.relative_to(out).as_posix(), "image_1": png_1.relative_to(out).as_posix(),
        "extras": npz.relative_to(out).as_posix(),
        "prompt_0": pair["prompt_0"], "prompt_1": pair["prompt_1"], "model": model,
        "scheduler": "ddim", "steps": 4, "guidance": 7.5, "dtype": "float32",
        "blend_start": 0.2, "eta": 0.0, "height": size, "width": size, "edit": pair["edit"],
        "tokens_0": [], "tokens_1": [], "notes": [], "cfspec": "0.1.0",
    })


def build_out(root: Path, pairs: Sequence[dict[str, Any]] = PAIRS, seeds: Sequence[int] = (0, 1),
              **options: Any) -> Path:
    """OUT with pairs.jsonl, and images, extras and a manifest line for every (pair, seed)."""
    write_pairs(root, list(pairs))
    for pair in pairs:
        for seed in seeds:
            write_generated(root, pair, seed, **options)
    return root


def metric_row(pair: dict[str, Any], seed: int, clip: float = 30.0, directional: float = 0.3,
               image: float = 0.8, **extra: Any) -> dict[str, Any]:
    return {"id": pair["id"], "seed": seed, "prompt_0": pair["prompt_0"],
            "prompt_1": pair["prompt_1"], "clip_score_0": clip, "clip_score_1": clip,
            "directional_similarity": directional, "directional_defined": True,
            "image_image_similarity": image, "effective": True, "effectiveness_margin": 1.5,
            "latent_l2_per_dim": 0.5, "background_ssim": 0.9, **extra}


def row_of(line: dict[str, Any]) -> MetricsRow:
    """A metrics.jsonl line as the filter reads it."""
    return MetricsRow.from_json({"id": "p", **line})


def write_metrics(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    (out / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows),
                                    encoding="utf-8")


def standard_metrics(out: Path) -> None:
    """p1__dog: both seeds pass, seed 1 more directional; p1__chair: seed 0 fails CLIP, seed 1
    fails image-image; p2__red: seed 0 passes."""
    dog, chair, red = PAIRS
    write_metrics(out, [
        metric_row(dog, 0, directional=0.25), metric_row(dog, 1, directional=0.4),
        metric_row(chair, 0, clip=15.0), metric_row(chair, 1, image=0.5),
        metric_row(red, 0, directional=0.3), metric_row(red, 1, directional=0.1),
    ])


# --- gates and the best seed -------------------------------------------------------------------


def test_defaults_are_instructpix2pix_gates() -> None:
    assert Gates().as_dict() == {"min_clip": 0.2, "min_directional": 0.2,
                                 "min_image_similarity": 0.7}


def test_every_failing_gate_is_recorded_with_value_and_threshold() -> None:
    row = row_of({"seed": 3, "clip_score_0": 15.0, "clip_score_1": 25.0,
                  "directional_similarity": 0.1, "image_image_similarity": 0.5})
    verdict = check_seed(row, Gates())
    assert verdict.seed == 3 and verdict.passed is False
    assert [(f.gate, f.metric) for f in verdict.failed] == [
        ("min-clip", "clip_similarity_0"), ("min-directional", "directional_similarity"),
        ("min-image-similarity", "image_image_similarity")]
    first = verdict.failed[0]
    assert first.value == pytest.approx(0.15) and first.threshold == 0.2
    # the boundary passes (>=), as in InstructPix2Pix
    edge = row_of({"seed": 0, "clip_score_0": 20.0, "clip_score_1": 20.0,
                   "directional_similarity": 0.2, "image_image_similarity": 0.7})
    assert check_seed(edge, Gates()).passed


def test_missing_and_undefined_metrics_fail_with_a_reason() -> None:
    row = row_of({"seed": 0, "clip_score_0": None, "clip_score_1": 30.0,
                  "directional_similarity": 0.0, "directional_defined": False,
                  "image_image_similarity": 1.0})
    failed = {f.metric: f for f in check_seed(row, Gates()).failed}
    assert failed["clip_similarity_0"].reason == "not measured"
    assert failed["clip_similarity_0"].value is None
    assert "undefined" in str(failed["directional_similarity"].reason)


def test_best_seed_is_the_most_directional_passing_one() -> None:
    pair = PAIRS[0]
    rows = {0: metric_row(pair, 0, directional=0.5, image=0.6),  # most directional, but fails
            1: metric_row(pair, 1, directional=0.3),
            2: metric_row(pair, 2, directional=0.35),
            3: metric_row(pair, 3, directional=0.35)}  # a tie: the lower seed wins
    decision = decide(pair["id"], {s: row_of(r) for s, r in rows.items()}, Gates())
    assert decision.kept_seed == 2
    assert decision.directional_similarity == pytest.approx(0.35)
    assert "3 of 4 seed(s)" in decision.reason
    assert [v.passed for v in decision.seeds] == [False, True, True, True]
    assert decision.seeds[0].failed[0].gate == "min-image-similarity"


def test_no_passing_seed_and_no_rows_are_explained() -> None:
    pair = PAIRS[0]
    none = decide(pair["id"], {0: row_of(metric_row(pair, 0, clip=10.0))}, Gates())
    assert none.kept_seed is None and "none of 1 seed(s)" in none.reason
    assert "min-clip" in none.reason
    empty = decide(pair["id"], {}, Gates())
    assert empty.kept_seed is None and "not evaluated" in empty.reason


def test_gates_from_pyproject_then_flags(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.cfspec]\nfilter-min-clip = 0.25\nfilter-min-image-similarity = 0.75\n"
        "exclude = ['x']\n", encoding="utf-8")
    gates = load_gates(tmp_path)
    assert (gates.min_clip, gates.min_directional, gates.min_image_similarity) == (0.25, 0.2,
                                                                                   0.75)
    assert gates.source.endswith("pyproject.toml")
    flagged = load_gates(tmp_path, min_clip=0.1, min_directional=None)
    assert flagged.min_clip == 0.1 and flagged.min_image_similarity == 0.75
    assert "command line" in flagged.source
    (tmp_path / "pyproject.toml").write_text("[tool.cfspec]\nfilter-min-clip = 'high'\n",
                                             encoding="utf-8")
    with pytest.raises(StageError, match="filter-min-clip must be a number"):
        load_gates(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.cfspec]\n", encoding="utf-8")
    with pytest.raises(StageError, match="--min-directional must be between -1 and 1"):
        load_gates(tmp_path, min_directional=2.0)


def test_filter_writes_one_decision_per_pair(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    standard_metrics(out)
    result = run_filter(out, Gates())
    lines = [json.loads(line) for line in (out / FILTER_FILE).read_text().splitlines()]
    assert [d["id"] for d in lines] == [p["id"] for p in PAIRS]
    assert [d["kept_seed"] for d in lines] == [1, None, 0]
    chair = lines[1]
    assert chair["seeds"][0]["failed"][0]["metric"] == "clip_similarity_0"
    assert chair["seeds"][1]["failed"][0]["metric"] == "image_image_similarity"
    assert lines[2]["seeds"][1]["failed"][0]["gate"] == "min-directional"
    assert all(d["gates"] == Gates().as_dict() for d in lines)
    assert result.kept == 2 and result.diagnostics == []


def test_filter_command_flags_and_exit_codes(tmp_path: Path) -> None:
    app = stage_app()
    out = build_out(tmp_path / "out")
    missing = runner.invoke(app, ["filter", str(out)])
    assert missing.exit_code == 2 and "cfspec evaluate" in missing.output
    standard_metrics(out)
    ok = runner.invoke(app, ["filter", str(out), "--min-directional", "0.3"])
    assert ok.exit_code == 0, ok.output
    kept = [json.loads(line)["kept_seed"] for line in (out / FILTER_FILE).read_text().splitlines()]
    assert kept == [1, None, 0]
    assert "kept 2 of 3 pair(s)" in ok.output
    assert runner.invoke(app, ["filter", str(out), "--min-clip", "7"]).exit_code == 2


def test_invalid_metrics_lines_are_diagnostics_naming_line_and_field(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    standard_metrics(out)
    text = (out / METRICS_FILE).read_text()
    bad_row = {**metric_row(PAIRS[2], 5), "clip_score_1": "high"}
    stale = {**metric_row(PAIRS[2], 6), "prompt_1": "an older prompt"}
    (out / METRICS_FILE).write_text(text + "{not json\n" + json.dumps(bad_row) + "\n"
                                    + json.dumps(stale) + "\n", encoding="utf-8")
    result = runner.invoke(stage_app(), ["filter", str(out), "--format", "json"])
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert [d["line"] for d in found] == [7, 8, 9]
    assert {d["name"] for d in found} == {"invalid-metrics-file"}
    assert "field `clip_score_1`" in found[1]["message"]
    assert found[1]["column"] == (json.dumps(bad_row).index('"clip_score_1"') + 1)
    assert "field `prompt_1`" in found[2]["message"]
    # the valid lines were still decided
    assert len((out / FILTER_FILE).read_text().splitlines()) == 3


# --- what is exported --------------------------------------------------------------------------


def test_selection_is_the_filters_or_every_first_seed(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    unfiltered = select(out)
    assert not unfiltered.filtered and "first seed" in unfiltered.description
    assert [(c.id, c.seed) for c in unfiltered.candidates] == [(p["id"], 0) for p in PAIRS]
    standard_metrics(out)
    run_filter(out, Gates())
    filtered = select(out)
    assert filtered.filtered and "kept candidates" in filtered.description
    assert [(c.id, c.seed) for c in filtered.candidates] == [("p1__dog", 1), ("p2__red", 0)]
    assert filtered.candidates[0].metrics is not None
    assert any(line.startswith("p1__chair: filtered out") for line in filtered.left_out)


def test_hf_export_loads_with_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    out = build_out(tmp_path / "out", size=24)
    standard_metrics(out)
    run_filter(out, Gates())
    dest = tmp_path / "hf"
    result = export(out, "hf", dest)
    assert result.rows == 2
    card = (dest / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nconfigs:\n") and "dtype: image" in card
    assert "kept candidates" in card
    loaded = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == 2
    for column in ("id", "image_0", "image_1", "prompt_0", "prompt_1", "intervention", "seed",
                   "model", "scm", "scm_aug", "clip_score_0", "directional_similarity",
                   "image_image_similarity", "effective"):
        assert column in loaded.column_names
    assert isinstance(loaded.features["image_0"], datasets.Image)
    first = loaded[0]
    assert first["id"] == "p1__dog" and first["seed"] == 1 and first["model"] == "tiny"
    assert first["image_0"].size == (24, 24) and first["image_1"].mode == "RGB"
    assert first["intervention"] == [{"variable": "A", "from": "cat", "to": "dog"}]
    assert first["directional_similarity"] == pytest.approx(0.4)
    assert first["cld"] is None  # not measured: null, not 0
    original = Image.open(out / "images" / "p1__dog" / "1_0.png")
    assert np.array_equal(np.asarray(first["image_0"]), np.asarray(original.convert("RGB")))


def test_hf_reexport_is_not_served_from_the_datasets_cache(tmp_path: Path) -> None:
    """`datasets` caches a local folder by its name and its card's YAML: the shard names carry a
    content digest, so a re-export (or another folder named alike) is never read stale."""
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    out = build_out(tmp_path / "out", seeds=(0, 1))
    dest = tmp_path / "hf"
    export(out, "hf", dest)
    shards = sorted(p.name for p in (dest / "data").iterdir())
    assert len(shards) == 1
    assert re.fullmatch(r"train-00000-of-00001-[0-9a-f]{12}\.parquet", shards[0])
    cache = tmp_path / "cache"
    assert datasets.load_dataset(str(dest), split="train", cache_dir=str(cache))["seed"] == [0] * 3
    (dest / "data" / "notes.txt").write_text("not ours", encoding="utf-8")
    standard_metrics(out)
    run_filter(out, Gates())
    export(out, "hf", dest)
    assert len(list((dest / "data").glob("*.parquet"))) == 1  # the earlier shard is gone
    assert (dest / "data" / "notes.txt").read_text(encoding="utf-8") == "not ours"  # kept
    assert datasets.load_dataset(str(dest), split="train", cache_dir=str(cache))["seed"] == [1, 0]


def test_export_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    """Each export replaces its folder whole, so a folder of someone else's files is refused."""
    out = build_out(tmp_path / "out", seeds=(0,))
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "thesis.tex").write_text("precious", encoding="utf-8")
    with pytest.raises(ExportError, match="no cfspec export wrote"):
        export(out, "cf-json", dest)
    assert sorted(p.name for p in dest.iterdir()) == ["thesis.tex"]
    with pytest.raises(ExportError, match="holds OUT"):
        export(out, "cf-json", tmp_path)


def test_nothing_to_export_writes_nothing(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0,))
    write_metrics(out, [metric_row(p, 0, clip=5.0) for p in PAIRS])
    run_filter(out, Gates())
    dest = tmp_path / "none"
    result = runner.invoke(stage_app(), ["export", str(out), "--to", "hf", "-o", str(dest)])
    assert result.exit_code == 1 and "nothing to export" in result.output
    assert "p1__dog: filtered out" in result.output
    assert not dest.exists()


def test_coco_cf_export_shape_and_images(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    dest = tmp_path / "coco"
    result = export(out, "coco-cf", dest)
    lines = [json.loads(line) for line in (dest / COCO_CF_FILE).read_text().splitlines()]
    assert [list(line) for line in lines] == [["id", "caption_0", "caption_1", "image_0",
                                               "image_1"]] * 3
    assert lines[0] == {"id": "p1__dog", "caption_0": "a cat on a table",
                        "caption_1": "a dog on a table", "image_0": "p1__dog_img_0",
                        "image_1": "p1__dog_img_1"}
    for line in lines:
        for key in ("image_0", "image_1"):
            assert (dest / f"{line[key]}.png").is_file()
    assert (dest / "p1__dog_img_1.png").read_bytes() == (
        out / "images" / "p1__dog" / "0_1.png").read_bytes()
    assert len(result.files) == 1 + 2 * 3
    # our own importer reads the export back
    from cfspec.importers import import_file

    items = import_file(dest / COCO_CF_FILE, "coco-cf")
    assert len(items) == 3 and all(item.scm is not None for item in items)


def test_cf_json_export_is_the_reference_shape(tmp_path: Path) -> None:
    reference = Path("/work/shared/data/reference/llm_cake_man.json")
    out = build_out(tmp_path / "out", seeds=(0,))
    dest = tmp_path / "cf"
    export(out, "cf-json", dest)
    records = json.loads((dest / CF_JSON_FILE).read_text(encoding="utf-8"))
    keys = ["id", "original_prompt", "counterfactual_prompt", "original_image",
            "counterfactual_image", "SCM", "SCM_aug"]
    if reference.is_file():
        assert list(json.loads(reference.read_text(encoding="utf-8"))) == keys
    # the reference's keys first and in its order; then which candidate and how it was made
    # and the photo with its source (null here: no pair has one; test_export_photo.py)
    extras = ["pair_id", "seed", "rank", "guidance", "cross_replace", "self_replace", "photo",
              "photo_source", "photo_source_sha256", "inversion"]
    assert [list(r) for r in records] == [keys + extras] * 3
    first = records[0]
    assert [first[k] for k in extras] == ["p1__dog", 0, None, 7.5, None, None, None, None,
                                          None, None]
    assert first["original_prompt"] == "a cat on a table"
    assert first["SCM"] == ["A → B: a causes b"]
    assert (dest / first["original_image"]).is_file()
    assert (dest / first["counterfactual_image"]).is_file()


# --- path safety and usage errors --------------------------------------------------------------


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_export_never_writes_outside_dir(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0,))
    # a hand-made line with a path-escaping id is refused by the schema on reading
    evil = {**make_pair("evil", "a cat", "a dog"), "id": "../../escaped"}
    with open(out / "pairs.jsonl", "a", encoding="utf-8") as handle:
        handle.write(dumps(evil) + "\n")
    # a filter line naming a bogus seed, and one naming that id
    (out / FILTER_FILE).write_text(
        json.dumps({"id": "p1__dog", "kept_seed": "../../x"}) + "\n"
        + json.dumps({"id": "../../escaped", "kept_seed": 0}) + "\n"
        + json.dumps({"id": "p2__red", "kept_seed": 0}) + "\n", encoding="utf-8")
    # an earlier export's file replaced by a symlink pointing outside DIR
    dest = tmp_path / "export"
    outside = tmp_path / "outside.json"
    outside.write_text("keep me", encoding="utf-8")
    before = _tree(tmp_path)
    export(out, "cf-json", dest)
    (dest / CF_JSON_FILE).unlink()
    os.symlink(outside, dest / CF_JSON_FILE)
    result = export(out, "cf-json", dest)
    assert outside.read_text(encoding="utf-8") == "keep me"  # not written through
    assert not (dest / CF_JSON_FILE).is_symlink()
    assert [c.id for c in result.selection.candidates] == ["p2__red"]
    names = {d.message for d in result.diagnostics}
    assert any("does not match pair.schema.json" in m for m in names)
    assert any("field `kept_seed`" in m for m in names)
    new = _tree(tmp_path) - before
    assert new and all(n.startswith("export") for n in new)
    assert not (tmp_path.parent / "escaped").exists()


def test_images_resolving_outside_out_are_refused(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0,))
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nsecret")
    target = out / "images" / "p2__red" / "0_1.png"
    target.unlink()
    os.symlink(secret, target)
    found, problems = read_manifest(out, {p["id"]: Pair.from_json(p) for p in PAIRS})
    assert "p2__red" not in found
    assert any("outside" in d.message for d in problems)
    dest = tmp_path / "coco"
    export(out, "coco-cf", dest)
    assert b"secret" not in b"".join(p.read_bytes() for p in dest.iterdir())


def test_export_command_usage_errors_and_output(tmp_path: Path) -> None:
    app = stage_app()
    out = build_out(tmp_path / "out", seeds=(0,))
    bad = runner.invoke(app, ["export", str(out), "--to", "csv", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "hf, coco-cf, cf-json" in bad.output
    same = runner.invoke(app, ["export", str(out), "--to", "cf-json", "-o", str(out)])
    assert same.exit_code == 2 and "OUT itself" in same.output
    nothing = runner.invoke(app, ["export", str(tmp_path / "none"), "--to", "hf", "-o",
                                  str(tmp_path / "x")])
    assert nothing.exit_code == 2
    ok = runner.invoke(app, ["export", str(out), "--to", "coco-cf", "-o", str(tmp_path / "c")])
    assert ok.exit_code == 0, ok.output
    assert "every pair's first seed" in ok.output and "wrote 3 row(s)" in ok.output


def test_superseded_manifest_line_means_not_generated(tmp_path: Path) -> None:
    """A run killed while regenerating with new parameters leaves `"superseded": true` after
    the old line: readers must treat that (pair, seed) as not done."""
    from cfspec.workspace.manifest_lines import read_manifest
    from cfspec.workspace.reading import read_pair_file

    out = build_out(tmp_path / "out")
    pairs, _ = read_pair_file(out)
    by_id = {p.id: p for p in pairs}
    before, _ = read_manifest(out, by_id)
    pair_id = next(iter(before))
    seed = next(iter(before[pair_id]))
    manifest = out / "manifest.jsonl"
    line = next(json.loads(x) for x in manifest.read_text().splitlines()
                if json.loads(x)["id"] == pair_id and json.loads(x)["seed"] == seed)
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({**line, "superseded": True}) + "\n")
    after, problems = read_manifest(out, by_id)
    assert problems == []
    assert seed not in after.get(pair_id, {})
    assert sum(len(s) for s in after.values()) == sum(len(s) for s in before.values()) - 1


# --- Croissant metadata ------------------------------------------------------------------------


def _croissant(path: Path) -> Any:
    """mlcroissant's reading of croissant.json: it raises on any validation error."""
    mlc = pytest.importorskip("mlcroissant")
    dataset = mlc.Dataset(jsonld=str(path))
    issues = dataset.metadata.ctx.issues
    assert issues.errors == set()
    # what remains is advice for the publisher (license, citation, date), never a defect
    assert all("is recommended" in w for w in issues.warnings), issues.warnings
    return dataset


def test_hf_export_has_croissant_metadata_that_mlcroissant_reads(tmp_path: Path) -> None:
    import hashlib

    pytest.importorskip("pyarrow")
    spec = tmp_path / "specs" / "real.scm"
    spec.parent.mkdir()
    spec.write_text("// the spec the pairs came from\n", encoding="utf-8")
    pairs = [make_pair("p1__dog", "a cat on a table", "a dog on a table", spec=str(spec)),
             *PAIRS[1:]]
    out = build_out(tmp_path / "out", pairs, size=24)
    standard_metrics(out)
    run_filter(out, Gates())
    dest = tmp_path / "my dataset"
    result = export(out, "hf", dest)
    path = dest / "croissant.json"
    assert path in result.files
    marker = json.loads((dest / ".cfspec-export.json").read_text(encoding="utf-8"))
    assert "croissant.json" in marker["files"]
    meta = json.loads(path.read_text(encoding="utf-8"))
    assert meta["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert meta["name"] == "my-dataset"  # the final folder's name, not the staging one's
    shard = next((dest / "data").glob("*.parquet"))
    assert meta["distribution"][0]["sha256"] == hashlib.sha256(shard.read_bytes()).hexdigest()
    prov = meta["provenance"]
    assert prov["models"]["diffusion"] == ["tiny"]
    assert prov["generation"]["scheduler"] == [{"value": "ddim", "rows": 2}]
    assert prov["generation"]["steps"] == [{"value": 4, "rows": 2}]
    assert prov["generation"]["guidance"] == [{"value": 7.5, "rows": 2}]
    assert prov["generation"]["blend_start"] == [{"value": 0.2, "rows": 2}]
    assert prov["seeds"] == [0, 1] and prov["cfspec_version"] == "0.1.0"
    assert prov["filter_gates"] == {"min_clip": 0.2, "min_directional": 0.2,
                                    "min_image_similarity": 0.7}
    assert prov["edit"]["self_replace_steps"] == [{"value": [0.0, 0.4], "pairs": 2}]
    assert prov["spec_files"] == [
        {"path": str(spec), "sha256": hashlib.sha256(spec.read_bytes()).hexdigest(), "pairs": 1},
        {"path": "specs/t.scm", "sha256": None, "pairs": 1},  # not readable from here: null
    ]
    assert prov["random_weight_models"] == ["diffusion model tiny"]
    assert meta["rai:dataLimitations"].startswith("RANDOM-WEIGHT MODELS")
    # mlcroissant validates it and reads the records back from the Parquet
    records = list(_croissant(path).records("pairs"))
    assert [r["pairs/id"] for r in records] == [b"p1__dog", b"p2__red"]
    assert [r["pairs/seed"] for r in records] == [1, 0]
    assert records[0]["pairs/directional_similarity"] == pytest.approx(0.4)
    assert records[0]["pairs/scm"] == ["A → B: a causes b".encode()]
    original = Image.open(out / "images" / "p1__dog" / "1_0.png").convert("RGB")
    assert np.array_equal(np.asarray(records[0]["pairs/image_0"].convert("RGB")),
                          np.asarray(original))
    # the card says the same, and warns
    card = (dest / "README.md").read_text(encoding="utf-8")
    assert "croissant.json" in card and "Warning: random-weight models" in card
    assert "- scheduler: `ddim`" in card and f"sha256 {prov['spec_files'][0]['sha256']}" in card


def test_croissant_of_a_sharded_export_reads_every_shard(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import cfspec.stages.export

    pytest.importorskip("pyarrow")
    monkeypatch.setattr(cfspec.stages.export, "HF_SHARD_BYTES", 1)  # one row per shard
    out = build_out(tmp_path / "out", seeds=(0,))
    dest = tmp_path / "hf"
    export(out, "hf", dest)
    meta = json.loads((dest / "croissant.json").read_text(encoding="utf-8"))
    objects = [d for d in meta["distribution"] if d["@type"] == "cr:FileObject"]
    assert len(objects) == 3 and all(len(d["sha256"]) == 64 for d in objects)
    records = list(_croissant(dest / "croissant.json").records("pairs"))
    assert sorted(r["pairs/id"] for r in records) == [b"p1__chair", b"p1__dog", b"p2__red"]


def test_croissant_names_no_random_model_for_real_ones(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    out = build_out(tmp_path / "out", PAIRS[:1], seeds=(0,),
                    model="CompVis/stable-diffusion-v1-4")
    export(out, "hf", tmp_path / "hf")
    meta = json.loads((tmp_path / "hf" / "croissant.json").read_text(encoding="utf-8"))
    assert meta["provenance"]["random_weight_models"] == []
    assert not meta["rai:dataLimitations"].startswith("RANDOM")
    assert "Warning" not in (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
