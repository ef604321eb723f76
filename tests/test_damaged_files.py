"""Damaged files in a run folder: a truncated PNG, garbage bytes in place of one, a truncated
.npz. Evaluate, export (hf, coco-cf, cf-json) and report check them through one module
(`cfspec.workspace.integrity`), so each names the same files as `damaged-file` errors, leaves
those (pair, seed)s out (not scored, not exported, shown as damaged), does the rest and exits 1;
never a traceback. The run folders are built as test_export.py builds them."""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest
from test_export import PAIRS, build_out, make_pair, stage_app, standard_metrics
from typer.testing import CliRunner

from cfspec.stages.filter import Gates, run_filter
from cfspec.workspace import store
from cfspec.workspace.integrity import npz_problem, png_problem

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

runner = CliRunner()
OK_PAIR = make_pair("p3__ok", "a green cup", "a red cup")


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def damaged_run(root: Path, seeds: tuple[int, ...] = (0, 1)) -> tuple[Path, dict[str, Path]]:
    """Four pairs; seed 0 of three of them damaged, one way each: p1__dog's counterfactual PNG
    cut in half, p1__chair's factual PNG replaced by text, p2__red's .npz cut in half."""
    out = build_out(root, [*PAIRS, OK_PAIR], seeds=seeds)
    damaged = {
        "p1__dog": store.image_paths(out, "p1__dog", 0)[1],
        "p1__chair": store.image_paths(out, "p1__chair", 0)[0],
        "p2__red": store.image_paths(out, "p2__red", 0)[2],
    }
    truncate(damaged["p1__dog"])
    damaged["p1__chair"].write_bytes(b"<html>a proxy error page, saved as a PNG</html>\n")
    truncate(damaged["p2__red"])
    return out, damaged


def diagnostics_of(result: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def expect_damage(found: list[dict[str, Any]], damaged: dict[str, Path]) -> None:
    """One damaged-file error per damaged file, each naming it, what is wrong and the way out."""
    by_file = {d["file"]: d for d in found if d["name"] == "damaged-file"}
    assert set(by_file) == {str(p) for p in damaged.values()}
    assert all(d["severity"] == "error" and d["code"] == "SCM605" for d in by_file.values())
    assert "truncated" in by_file[str(damaged["p1__dog"])]["message"]
    assert "not a PNG" in by_file[str(damaged["p1__chair"])]["message"]
    assert "truncated" in by_file[str(damaged["p2__red"])]["message"]
    assert "no end-of-archive record" in by_file[str(damaged["p2__red"])]["message"]
    for path in damaged.values():
        help_text = by_file[str(path)]["help"]
        assert f"delete {path}" in help_text and "cfspec generate" in help_text


# --- the check itself ----------------------------------------------------------------------------


def png_bytes(size: int = 16, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def npz_bytes(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


GOOD_NPZ = {"latents": np.ones((2, 4, 4, 4), np.float32), "attention": np.ones((2, 4, 4))}


def test_each_kind_of_png_damage_is_named(tmp_path: Path) -> None:
    path = tmp_path / "0_0.png"
    good = png_bytes()
    path.write_bytes(good)
    assert png_problem(path) == (None, (16, 16))
    assert png_problem(path, (16, 16)) == (None, (16, 16))
    problem, _ = png_problem(path, (32, 32))
    assert problem is not None and problem.startswith("wrong size: 16×16 px")
    path.write_bytes(b"")
    assert png_problem(path)[0] == "empty (0 bytes)"
    path.write_bytes(b"GIF89a" + good[6:])
    assert str(png_problem(path)[0]).startswith("not a PNG")
    path.write_bytes(good[:-12])  # everything but the IEND chunk
    assert str(png_problem(path)[0]).startswith("truncated")
    # image data cut out of the middle, the end kept: the chunk layout no longer holds
    idat = good.index(b"IDAT")
    path.write_bytes(good[: idat + 20] + good[-12:])
    assert str(png_problem(path)[0]).startswith("does not decode")
    # a flipped byte inside the image data: its chunk's CRC fails
    flipped = bytearray(good)
    flipped[idat + 30] ^= 0xFF
    path.write_bytes(bytes(flipped))
    assert str(png_problem(path)[0]).startswith("does not decode")


def test_each_kind_of_npz_damage_is_named(tmp_path: Path) -> None:
    path = tmp_path / "0.npz"
    good = npz_bytes(**GOOD_NPZ)
    path.write_bytes(good)
    assert npz_problem(path) is None
    path.write_bytes(b"")
    assert npz_problem(path) == "empty (0 bytes)"
    path.write_bytes(b"\x93NUMPY not a zip")
    assert str(npz_problem(path)).startswith("not an .npz")
    path.write_bytes(good[: len(good) // 2])
    assert str(npz_problem(path)).startswith("truncated")
    # a flipped byte in a member's compressed data: zlib or the CRC check catches it
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        info = archive.getinfo("latents.npy")
    name_len, extra_len = struct.unpack("<HH", good[info.header_offset + 26:
                                                   info.header_offset + 30])
    data_at = info.header_offset + 30 + name_len + extra_len
    flipped = bytearray(good)
    flipped[data_at + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    assert str(npz_problem(path)).startswith("corrupt")
    path.write_bytes(npz_bytes(attention=GOOD_NPZ["attention"]))
    assert npz_problem(path) == "no `latents` array (a generate .npz holds latents, attention)"
    path.write_bytes(npz_bytes(latents=np.array([{"a": 1}], dtype=object),
                               attention=GOOD_NPZ["attention"]))
    assert npz_problem(path) == "holds pickled objects, which cfspec never loads"


def test_no_damage_escapes_as_an_exception(tmp_path: Path) -> None:
    """Cut after every byte, and every byte flipped (its low bit, then all its bits): each
    check answers with a problem or None and raises nothing; every cut file is a problem."""
    png, npz = tmp_path / "0_0.png", tmp_path / "0.npz"
    for good, path, check in ((png_bytes(), png, lambda p: png_problem(p)[0]),
                              (npz_bytes(**GOOD_NPZ), npz, npz_problem)):
        for cut in range(len(good)):
            path.write_bytes(good[:cut])
            assert check(path) is not None, cut
        for at in range(len(good)):
            for mask in (0x01, 0xFF):
                flipped = bytearray(good)
                flipped[at] ^= mask
                path.write_bytes(bytes(flipped))
                problem = check(path)
                assert problem is None or isinstance(problem, str)


# --- evaluate ------------------------------------------------------------------------------------


@pytest.fixture
def torch_stack() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")


@pytest.mark.usefixtures("torch_stack")
def test_evaluate_scores_the_rest_and_exits_one(tmp_path: Path) -> None:
    out, damaged = damaged_run(tmp_path / "out")
    result = runner.invoke(stage_app(), ["evaluate", str(out), "--clip-model", "tiny",
                                         "--format", "json"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    expect_damage(diagnostics_of(result), damaged)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["id"], r["seed"]) for r in rows] == [
        ("p1__dog", 1), ("p1__chair", 1), ("p2__red", 1), ("p3__ok", 0), ("p3__ok", 1)]
    assert "3 (pair, seed)(s) not scored, their files damaged" in result.stderr
    summary = json.loads((out / "metrics_summary.json").read_text())
    assert any("not scored: damaged files" in note for note in summary["notes"])


@pytest.mark.usefixtures("torch_stack")
def test_evaluate_with_every_image_damaged_writes_nothing(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", PAIRS[:1], seeds=(0,))
    truncate(store.image_paths(out, "p1__dog", 0)[0])
    result = runner.invoke(stage_app(), ["evaluate", str(out), "--clip-model", "tiny",
                                         "--format", "json", "--quiet"])
    assert result.exit_code == 1, result.output
    assert [d["name"] for d in diagnostics_of(result)] == ["damaged-file"]
    assert "nothing to evaluate" in result.stderr
    assert not (out / "metrics.jsonl").exists()


# --- export --------------------------------------------------------------------------------------


def exported_ids(dest: Path, to: str) -> list[str]:
    if to == "hf":
        import pyarrow.parquet as pq

        return [row for shard in sorted((dest / "data").glob("*.parquet"))
                for row in pq.read_table(shard, columns=["id"]).column("id").to_pylist()]
    if to == "coco-cf":
        return [json.loads(x)["id"] for x in (dest / "examples.jsonl").read_text().splitlines()]
    return [r["id"] for r in json.loads((dest / "counterfactual_dataset.json").read_text())]


@pytest.mark.parametrize("to", ["hf", "coco-cf", "cf-json"])
def test_export_skips_damaged_rows_and_lists_them(tmp_path: Path, to: str) -> None:
    if to == "hf":
        pytest.importorskip("pyarrow")
    out, damaged = damaged_run(tmp_path / "out")
    dest = tmp_path / "dataset"
    result = runner.invoke(stage_app(), ["export", str(out), "--to", to, "-o", str(dest),
                                         "--format", "json"])
    assert result.exit_code == 1, result.output
    expect_damage(diagnostics_of(result), damaged)
    assert exported_ids(dest, to) == ["p3__ok"]  # every pair's first seed, less the damaged
    for pair_id, path in damaged.items():
        assert re.search(rf"{pair_id}: seed 0's {re.escape(path.name)} is damaged: "
                         "(truncated|not a PNG)", result.stderr), result.stderr
    # no byte of a damaged file went out: every PNG in the export decodes
    pngs = list(dest.rglob("*.png"))
    assert len(pngs) == (0 if to == "hf" else 2)
    for png in pngs:
        assert png_problem(png)[0] is None


def test_export_of_a_damaged_kept_seed_leaves_it_out(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    standard_metrics(out)
    run_filter(out, Gates())  # keeps p1__dog seed 1 and p2__red seed 0
    garbage = store.image_paths(out, "p1__dog", 1)[0]
    garbage.write_bytes(bytes(range(256)) * 4)
    dest = tmp_path / "dataset"
    result = runner.invoke(stage_app(), ["export", str(out), "--to", "coco-cf", "-o",
                                         str(dest), "--format", "json"])
    assert result.exit_code == 1, result.output
    assert [d["file"] for d in diagnostics_of(result)] == [str(garbage)]
    assert exported_ids(dest, "coco-cf") == ["p2__red"]


def test_export_with_every_row_damaged_writes_nothing(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", PAIRS[:1], seeds=(0,))
    truncate(store.image_paths(out, "p1__dog", 0)[2])
    dest = tmp_path / "dataset"
    result = runner.invoke(stage_app(), ["export", str(out), "--to", "cf-json", "-o",
                                         str(dest), "--format", "json"])
    assert result.exit_code == 1, result.output
    assert [d["name"] for d in diagnostics_of(result)] == ["damaged-file"]
    assert "nothing to export" in result.stderr and not dest.exists()


# --- report --------------------------------------------------------------------------------------


def test_report_shows_damaged_pairs_without_images(tmp_path: Path) -> None:
    out, damaged = damaged_run(tmp_path / "out")  # no metrics: seed 0 is each pair's shown one
    result = runner.invoke(stage_app(), ["report", str(out), "--format", "json"])
    assert result.exit_code == 1, result.output
    expect_damage(diagnostics_of(result), damaged)
    assert "4 of 4 pair(s) shown, 3 of them as damaged" in result.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    for pair_id, path in damaged.items():
        card = html.split(f'<article class="pair damaged" id="pair-{pair_id}">')[1]
        card = card.split("</article>")[0]
        assert f"damaged: {path.name}: " in card
        assert "damaged files, seed 0" in card
        assert "<img" not in card.split("Causal graph")[0]  # no image, no overlay
    whole = html.split('id="pair-p3__ok"')[1].split("</article>")[0]
    assert whole.count('<img src="data:image/png;base64,') >= 2


# --- one check: the three stages agree ------------------------------------------------------------


@pytest.mark.usefixtures("torch_stack")
def test_the_three_stages_name_the_same_files(tmp_path: Path) -> None:
    out, damaged = damaged_run(tmp_path / "out", seeds=(0,))
    app = stage_app()
    named = []
    for args in (["evaluate", str(out), "--clip-model", "tiny", "--quiet"],
                 ["export", str(out), "--to", "coco-cf", "-o", str(tmp_path / "d")],
                 ["report", str(out)]):
        result = runner.invoke(app, [*args, "--format", "json"])
        assert result.exit_code == 1, result.output
        named.append(sorted((d["file"], d["message"]) for d in diagnostics_of(result)))
    assert named[0] == named[1] == named[2]
    assert [file for file, _ in named[0]] == sorted(str(p) for p in damaged.values())
