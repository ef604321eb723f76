"""Issue 27: every export format carries a photo pair's photo (generate's photo.png, the photo as
it was inverted) with where it came from (the original file's name and SHA-256 from
pairs.jsonl, the inversion method); pairs without a photo have nulls, so the hf schema is the
same with and without photos. A missing or damaged photo.png is a diagnostic and the row is
left out, as for a damaged image. OUT is built as test_export.py builds it, plus what generate
--inversion adds (photo.png, the line's `photo` and `inversion`): no model runs here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from test_damaged_files import diagnostics_of, truncate
from test_export import _croissant, build_out, make_pair, stage_app
from typer.testing import CliRunner

from cfspec.stages.export import export
from cfspec.workspace import store
from cfspec.workspace.layout import MANIFEST_FILE, photo_path
from cfspec.workspace.manifest_lines import read_manifest
from cfspec.workspace.pairs import Pair, read_pairs, schema_errors
from cfspec.workspace.photos import sha256_of

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

runner = CliRunner()
SIZE = 24  # the model's size in these runs: photo.png has it, the original does not
PHOTO_PAIR = "p1__dog"
PLAIN_PAIR = "p2__red"
PHOTO_COLUMNS = ("photo", "photo_source", "photo_source_sha256", "inversion")


def photo_run(root: Path, seeds: tuple[int, ...] = (0,)) -> tuple[Path, Path]:
    """OUT with two pairs: PHOTO_PAIR starts from a photo (a 40 x 30 JPEG the spec names;
    photo.png is it cropped and resized to SIZE, as generate keeps it), PLAIN_PAIR from noise.
    Returns (OUT, the original photo)."""
    original = root / "photos" / "000000158956.jpg"
    original.parent.mkdir(parents=True)
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(original, "JPEG")
    photo_pair = make_pair(PHOTO_PAIR, "a cat on a table", "a dog on a table")
    photo_pair["image"] = {"path": str(original), "sha256": sha256_of(original)}
    assert schema_errors(photo_pair) == []
    out = build_out(root / "out", [photo_pair,
                                   make_pair(PLAIN_PAIR, "a blue car", "a red car")],
                    seeds=seeds, size=SIZE)
    with Image.open(original) as opened:
        pixels = np.asarray(opened.convert("RGB").crop((5, 0, 35, 30)).resize((SIZE, SIZE)))
    store.save_png(photo_path(out, PHOTO_PAIR), Image.fromarray(pixels))
    lines = [json.loads(x) for x in (out / MANIFEST_FILE).read_text().splitlines()]
    for line in lines:
        if line["id"] == PHOTO_PAIR:  # what generate --inversion adds to a photo pair's line
            line["photo"] = f"images/{PHOTO_PAIR}/photo.png"
            line["inversion"] = {"method": "null-text", "key": "k" * 16,
                                 "source": str(original)}
    (out / MANIFEST_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return out, original


def pixels(image: Any) -> Any:
    return np.asarray(image.convert("RGB"))


def photo_pixels(out: Path) -> Any:
    with Image.open(photo_path(out, PHOTO_PAIR)) as image:
        return pixels(image)


# --- hf ------------------------------------------------------------------------------------------


def test_hf_rows_carry_the_photo_and_its_source(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    out, original = photo_run(tmp_path)
    dest = tmp_path / "hf"
    result = export(out, "hf", dest)
    assert result.diagnostics == [] and result.rows == 2
    # read back from the Parquet alone (its `huggingface` metadata), and as a folder
    shard = next((dest / "data").glob("*.parquet"))
    from_parquet = datasets.Dataset.from_parquet(str(shard),
                                                 cache_dir=str(tmp_path / "cache1"))
    loaded = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache2"))
    for table in (from_parquet, loaded):
        assert isinstance(table.features["photo"], datasets.Image)
        rows = {row["id"]: row for row in table}
        with_photo, plain = rows[PHOTO_PAIR], rows[PLAIN_PAIR]
        assert with_photo["photo"].size == (SIZE, SIZE)
        assert np.array_equal(pixels(with_photo["photo"]), photo_pixels(out))
        assert with_photo["photo_source"] == "000000158956.jpg"
        assert with_photo["photo_source_sha256"] == hashlib.sha256(
            original.read_bytes()).hexdigest()
        assert with_photo["inversion"] == "null-text"
        assert [plain[c] for c in PHOTO_COLUMNS] == [None] * 4
    # the digest is the original file's, not the re-encoded photo's (which the row carries)
    import pyarrow.parquet as pq

    table = pq.read_table(shard, columns=["id", "photo", "photo_source_sha256"]).to_pylist()
    photo_row = next(r for r in table if r["id"] == PHOTO_PAIR)
    assert photo_row["photo"]["bytes"] == photo_path(out, PHOTO_PAIR).read_bytes()
    assert photo_row["photo"]["path"] == f"{PHOTO_PAIR}_photo.png"
    assert hashlib.sha256(photo_row["photo"]["bytes"]).hexdigest() != (
        photo_row["photo_source_sha256"])


def test_the_card_and_croissant_describe_the_photo_columns(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    out, _ = photo_run(tmp_path)
    dest = tmp_path / "hf"
    export(out, "hf", dest)
    card = (dest / "README.md").read_text(encoding="utf-8")
    header = card.split("\n---\n", 1)[0]
    assert "  - name: photo\n    dtype: image\n" in header
    assert "  - name: photo_source_sha256\n    dtype: string\n" in header
    for column in PHOTO_COLUMNS:
        assert f"\n- `{column}`: " in card
    assert "1 of the 2 row(s) start from a real photo" in card
    assert "not the original file" in card
    meta = json.loads((dest / "croissant.json").read_text(encoding="utf-8"))
    fields = {f["name"]: f for f in meta["recordSet"][0]["field"]}
    assert fields["photo"]["dataType"] == "sc:ImageObject"
    assert fields["photo"]["source"]["transform"] == {"jsonPath": "bytes"}
    assert "re-encoded" in fields["photo"]["description"]
    assert fields["photo_source_sha256"]["dataType"] == "sc:Text"
    # the inversion is a setting of the set (its method); photo paths are per pair, not settings
    generation = meta["provenance"]["generation"]
    assert generation["inversion"] == [{"value": "null-text", "rows": 1}]
    assert "photo" not in generation
    records = {r["pairs/id"]: r for r in _croissant(dest / "croissant.json").records("pairs")}
    assert np.array_equal(pixels(records[PHOTO_PAIR.encode()]["pairs/photo"]),
                          photo_pixels(out))
    assert records[PHOTO_PAIR.encode()]["pairs/inversion"] == b"null-text"
    assert records[PLAIN_PAIR.encode()]["pairs/photo_source"] is None


def test_without_photos_the_columns_are_there_and_null(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    out = build_out(tmp_path / "out", [make_pair("p2__red", "a blue car", "a red car")],
                    seeds=(0,))
    dest = tmp_path / "hf"
    export(out, "hf", dest)
    loaded = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache"))
    assert isinstance(loaded.features["photo"], datasets.Image)
    assert [loaded[0][c] for c in PHOTO_COLUMNS] == [None] * 4
    card = (dest / "README.md").read_text(encoding="utf-8")
    assert "\n- `photo`: " in card and "start from a real photo" not in card


def test_several_kept_seeds_each_carry_the_pairs_photo(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    from test_export import metric_row, write_metrics

    from cfspec.stages.filter import Gates, run_filter

    out, _ = photo_run(tmp_path, seeds=(0, 1))
    by_id = {p.id: p.to_json() for p in read_pairs(out / "pairs.jsonl")[0]}
    write_metrics(out, [metric_row(by_id[p], s) for p in by_id for s in (0, 1)])
    run_filter(out, Gates(), keep=2)
    dest = tmp_path / "hf"
    export(out, "hf", dest)
    loaded = datasets.load_dataset(str(dest), split="train", cache_dir=str(tmp_path / "cache"))
    photos = {row["id"]: row["photo"] for row in loaded if row["pair_id"] == PHOTO_PAIR}
    assert sorted(photos) == [f"{PHOTO_PAIR}__s0", f"{PHOTO_PAIR}__s1"]
    for image in photos.values():
        assert np.array_equal(pixels(image), photo_pixels(out))


# --- coco-cf and cf-json -------------------------------------------------------------------------


def test_coco_cf_writes_the_photo_beside_its_rows_images(tmp_path: Path) -> None:
    out, _ = photo_run(tmp_path)
    dest = tmp_path / "coco"
    export(out, "coco-cf", dest)
    lines = [json.loads(x) for x in (dest / "examples.jsonl").read_text().splitlines()]
    assert all(list(line) == ["id", "caption_0", "caption_1", "image_0", "image_1"]
               for line in lines)  # COCO-Counterfactuals' five columns, as before
    assert (dest / f"{PHOTO_PAIR}_photo.png").read_bytes() == (
        photo_path(out, PHOTO_PAIR).read_bytes())
    assert not (dest / f"{PLAIN_PAIR}_photo.png").exists()
    marker = json.loads((dest / ".cfspec-export.json").read_text())
    assert f"{PHOTO_PAIR}_photo.png" in marker["files"]


def test_cf_json_names_the_photo_and_its_source(tmp_path: Path) -> None:
    out, original = photo_run(tmp_path)
    dest = tmp_path / "cf"
    export(out, "cf-json", dest)
    records = {r["id"]: r for r in json.loads((dest / "counterfactual_dataset.json").read_text())}
    with_photo, plain = records[PHOTO_PAIR], records[PLAIN_PAIR]
    assert with_photo["photo"] == f"photo_{PHOTO_PAIR}.png"
    assert (dest / with_photo["photo"]).read_bytes() == photo_path(out, PHOTO_PAIR).read_bytes()
    assert with_photo["photo_source"] == original.name
    assert with_photo["photo_source_sha256"] == sha256_of(original)
    assert with_photo["inversion"] == "null-text"
    assert [plain[c] for c in PHOTO_COLUMNS] == [None] * 4
    assert not (dest / f"photo_{PLAIN_PAIR}.png").exists()


# --- a missing or damaged photo.png --------------------------------------------------------------


@pytest.mark.parametrize("to", ["hf", "coco-cf", "cf-json"])
def test_a_damaged_photo_leaves_its_row_out(tmp_path: Path, to: str) -> None:
    if to == "hf":
        pytest.importorskip("pyarrow")
    out, _ = photo_run(tmp_path)
    photo = photo_path(out, PHOTO_PAIR)
    truncate(photo)
    dest = tmp_path / "dataset"
    result = runner.invoke(stage_app(), ["export", str(out), "--to", to, "-o", str(dest),
                                         "--format", "json"])
    assert result.exit_code == 1, result.output
    (found,) = diagnostics_of(result)
    assert (found["name"], found["file"]) == ("damaged-file", str(photo))
    assert found["message"].startswith(f"damaged photo of pair '{PHOTO_PAIR}', seed 0: "
                                       "truncated")
    assert f"delete {photo}" in found["help"]
    assert f"{PHOTO_PAIR}: seed 0's photo.png is damaged: truncated" in result.stderr
    assert "wrote 1 row(s)" in result.stderr
    assert not list(dest.rglob("*photo*"))


def test_a_photo_of_the_wrong_size_is_damaged(tmp_path: Path) -> None:
    out, _ = photo_run(tmp_path)
    store.save_png(photo_path(out, PHOTO_PAIR),
                   Image.fromarray(np.zeros((SIZE, SIZE + 8, 3), dtype=np.uint8)))
    result = export(out, "coco-cf", tmp_path / "coco")
    (found,) = result.diagnostics
    assert found.code.name == "damaged-file" and "wrong size" in found.message
    assert [c.pair_id for c in result.selection.candidates] == [PLAIN_PAIR]


def test_a_missing_photo_is_an_error_and_generate_remakes_it(tmp_path: Path) -> None:
    out, _ = photo_run(tmp_path)
    pairs = {p.id: p for p in read_pairs(out / "pairs.jsonl")[0]}
    last = store.latest(store.read_records(out / MANIFEST_FILE))
    params = {k: last[(PLAIN_PAIR, 0)].settings[k] for k in ("model", "scheduler", "steps")}
    assert store.finished(out, last, pairs, params) == {(PLAIN_PAIR, 0), (PHOTO_PAIR, 0)}
    photo = photo_path(out, PHOTO_PAIR)
    photo.unlink()
    dest = tmp_path / "dataset"
    result = runner.invoke(stage_app(), ["export", str(out), "--to", "cf-json", "-o",
                                         str(dest), "--format", "json"])
    assert result.exit_code == 1, result.output
    (found,) = diagnostics_of(result)
    assert found["name"] == "invalid-manifest" and f"{photo} is missing" in found["message"]
    assert "cfspec generate" in found["help"]
    records = json.loads((dest / "counterfactual_dataset.json").read_text())
    assert [r["id"] for r in records] == [PLAIN_PAIR]
    # generate now counts the (pair, seed) as not finished: a re-run remakes it with its photo
    assert store.finished(out, last, pairs, params) == {(PLAIN_PAIR, 0)}


def test_a_manifest_photo_elsewhere_is_refused(tmp_path: Path) -> None:
    out, _ = photo_run(tmp_path)
    text = (out / MANIFEST_FILE).read_text()
    (out / MANIFEST_FILE).write_text(text.replace(f'"images/{PHOTO_PAIR}/photo.png"',
                                                  '"../../etc/passwd"'))
    pairs: dict[str, Pair] = {p.id: p for p in read_pairs(out / "pairs.jsonl")[0]}
    found, problems = read_manifest(out, pairs)
    assert PHOTO_PAIR not in found and PLAIN_PAIR in found
    (problem,) = problems
    assert problem.code.name == "invalid-manifest" and "where generate keeps the photo" in (
        problem.message)
