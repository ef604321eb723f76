"""Bad and hostile output folders: a read-only OUT, a file where a folder belongs, symlinks
planted inside OUT, and a `cfspec run` whose CLIP model cannot load. Each is a message that
names the path and a way out (exit 2), never a traceback, and nothing is written outside OUT.

Read-only is real: the command runs in a subprocess on a folder with mode 0555; when the tests
run as root (which ignores file modes) the subprocess gives up the capabilities that let it
(setpriv drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER), staying the same user,
so it still reads a checkout other users cannot (a clone in a 0700 home). Links "planted by
someone else" are made by root and handed to nobody with lchown, so those tests need root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_export import PAIRS, build_out, stage_app, standard_metrics
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.stages.export import export
from cfspec.stages.filter import Gates, run_filter
from cfspec.workspace import store
from cfspec.workspace.outdir import UnsafePathError

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
runner = CliRunner()
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's link needs root")


def plant_link(link: Path, target: Path) -> None:
    """A symlink at `link` owned by someone else (nobody), as an attacker would leave it."""
    os.symlink(target, link)
    os.lchown(link, NOBODY, NOBODY)


# --- read-only OUT, for real -------------------------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A scratch folder whose modes the test changes (and restores before removing it)."""
    folder = Path(tempfile.mkdtemp(prefix="cfspec-ro-"))
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o700)
    shutil.rmtree(folder)


# What lets root ignore file modes; without them a write to a 0555 folder fails as it would for
# any user, while the checkout (the same owner's) stays readable.
MODE_OVERRIDES = "-dac_override,-dac_read_search,-fowner"


def run_unprivileged(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cfspec", *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot give up root's file access")
        command = [setpriv, f"--bounding-set={MODE_OVERRIDES}", *command]
    env = {**os.environ, "HOME": str(home), "HF_HUB_OFFLINE": "1", "NO_COLOR": "1",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=home, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("stage", [
    ["generate", "{out}", "--model", "tiny", "--steps", "2"],
    ["evaluate", "{out}", "--clip-model", "tiny"],
    ["filter", "{out}"],
    ["report", "{out}"],
])
def test_read_only_out_is_a_message_not_a_traceback(shared_tmp: Path, stage: list[str]) -> None:
    out = shared_tmp / "out"
    build_out(out, seeds=(0,))
    standard_metrics(out)
    shutil.rmtree(out / "images")  # generate must create it; the others only read it
    home = shared_tmp / "home"
    home.mkdir()
    for path in [out, *out.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = sorted(p.name for p in out.iterdir())
    result = run_unprivileged([a.format(out=out) for a in stage], home)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cfspec: error: {out}" in result.stderr
    assert "Permission denied" in result.stderr and "make it writable" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == before


# --- something in the way, mid-stage -----------------------------------------------------------


def test_a_file_where_images_belong_stops_generate_before_the_model(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=())
    (out / "images").write_text("not a folder", encoding="utf-8")
    result = runner.invoke(app, ["generate", str(out), "--model", "no/such-model"])
    assert result.exit_code == 2
    assert f"{out / 'images'}: a file stands where cfspec needs a folder" in result.output
    assert "move what is in the way" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_folder_where_filter_writes_its_file_is_a_message(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    standard_metrics(out)
    (out / "filter.jsonl").mkdir()
    result = runner.invoke(stage_app(), ["filter", str(out)])
    assert result.exit_code == 2
    assert f"cfspec: error: {out}" in result.output and "Is a directory" in result.output
    assert isinstance(result.exception, SystemExit)


def test_a_folder_where_evaluate_writes_its_rows_is_a_message(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    out = build_out(tmp_path / "out", seeds=(0,), size=16)
    (out / "metrics.jsonl").mkdir()
    result = runner.invoke(stage_app(), ["evaluate", str(out), "--clip-model", "tiny", "-q"])
    assert result.exit_code == 2
    assert f"{out}" in result.output and "Is a directory" in result.output
    assert isinstance(result.exception, SystemExit)
    assert not (out / "metrics_summary.json").exists()


# --- symlinks inside OUT -----------------------------------------------------------------------


@as_root
def test_someone_elses_link_for_images_is_refused(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plant_link(out / "images", elsewhere)
    result = runner.invoke(app, ["generate", str(out), "--model", "tiny", "--steps", "2"])
    assert result.exit_code == 2
    assert f"{out / 'images'}: a symbolic link owned by uid {NOBODY}" in result.output
    assert list(elsewhere.iterdir()) == []


@as_root
def test_someone_elses_link_for_a_pair_folder_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("diffusers")
    out = build_out(tmp_path / "out", pairs=PAIRS[:1], seeds=())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "images").mkdir()
    plant_link(out / "images" / PAIRS[0]["id"], elsewhere)
    result = runner.invoke(app, ["generate", str(out), "--model", "tiny", "--steps", "1",
                                 "--height", "16", "--width", "16", "-q"])
    assert result.exit_code == 2, result.output
    assert "owned by uid" in result.output and "Traceback" not in result.output
    assert list(elsewhere.iterdir()) == []
    assert not (out / "manifest.jsonl").exists()


def test_your_own_link_to_a_scratch_disk_is_followed(tmp_path: Path) -> None:
    pytest.importorskip("diffusers")
    out = build_out(tmp_path / "out", pairs=PAIRS[:1], seeds=())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    os.symlink(scratch, out / "images")
    result = runner.invoke(app, ["generate", str(out), "--model", "tiny", "--steps", "1",
                                 "--height", "16", "--width", "16", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (scratch / PAIRS[0]["id"]).iterdir()) == [
        "0.npz", "0_0.png", "0_1.png"]
    assert (out / "images").is_symlink()


def test_manifest_appends_never_follow_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "manifest.jsonl")
    with pytest.raises(UnsafePathError, match="a symbolic link"):
        store.append_record(out / "manifest.jsonl", {"id": "x", "seed": 0})
    (out / "manifest.jsonl").unlink()
    os.link(outside, out / "manifest.jsonl")  # a hard link is no better
    with pytest.raises(UnsafePathError, match="hard links"):
        store.append_record(out / "manifest.jsonl", {"id": "x", "seed": 0})
    assert outside.read_text(encoding="utf-8") == "keep me\n"


def test_a_linked_file_is_replaced_not_written_through(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out")
    standard_metrics(out)
    outside = tmp_path / "outside.jsonl"
    outside.write_text("keep me\n", encoding="utf-8")
    os.symlink(outside, out / "filter.jsonl")
    run_filter(out, Gates())
    assert outside.read_text(encoding="utf-8") == "keep me\n"
    assert not (out / "filter.jsonl").is_symlink()
    assert len((out / "filter.jsonl").read_text(encoding="utf-8").splitlines()) == len(PAIRS)


@as_root
def test_export_refuses_someone_elses_link_and_follows_yours(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0,), size=16)
    planted = tmp_path / "planted"
    planted.mkdir()
    plant_link(out / "dataset", planted)
    result = runner.invoke(stage_app(), ["export", str(out), "--to", "cf-json", "-o",
                                         str(out / "dataset")])
    assert result.exit_code == 2 and "owned by uid" in result.output
    assert list(planted.iterdir()) == []
    (out / "dataset").unlink()
    mine = tmp_path / "scratch"
    os.symlink(mine, out / "dataset")
    export(out, "cf-json", out / "dataset")
    assert (out / "dataset").is_symlink()
    assert (mine / "counterfactual_dataset.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if ".cfspec-" in p.name] == []


# --- `cfspec run` checks every stage's needs before the first image ----------------------------


def test_run_with_an_uncached_clip_model_fails_before_generating(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    pytest.importorskip("diffusers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(ROOT / "specs" / "cake.scm"), "-o", str(out),
                                 "--model", "tiny", "--clip-model", "cfspec-tests/no-such-clip",
                                 "--steps", "1", "-q"])
    assert result.exit_code == 2
    assert ("--clip-model cfspec-tests/no-such-clip: not in the local Hugging Face cache"
            in result.output)
    assert "== generate" not in result.output
    assert not (out / "manifest.jsonl").exists()
    assert not list((out / "images").rglob("*.png"))
    pairs = (out / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    assert pairs and json.loads(pairs[0])["id"]  # compile ran; only the images were held back
