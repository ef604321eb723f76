"""A SIGKILL at any step of a stage never leaves outputs that do not load, and the re-run ends
exactly where an uninterrupted run does, with no temp files left.

Kills are real and deterministic: `killpoints.py` runs the command in a subprocess that sends
itself SIGKILL just before its Nth file-system step (fsync, replace, rename, unlink, ...), so
no cleanup code runs. Each test first lists a clean run's steps, then kills at chosen ones.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from killpoints import events, run_cfspec
from test_export import PAIRS, build_out, standard_metrics, write_generated

from cfspec.workspace.filter_lines import read_filter
from cfspec.workspace.metrics_rows import read_summary
from cfspec.workspace.pairs import Pair
from cfspec.workspace.reading import StageError

np = pytest.importorskip("numpy")
ROOT = Path(__file__).resolve().parent.parent
KILLED = -signal.SIGKILL
STRAY = re.compile(r"(\.tmp$|\.cfspec-(new|old|probe)-?)")


def snapshot(folder: Path) -> dict[str, Any]:
    """Every file under `folder`: its bytes, or for .npz (a zip that stamps the time) its
    arrays."""
    files: dict[str, Any] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = path.relative_to(folder).as_posix()
        if path.suffix == ".npz":
            with np.load(path) as arrays:
                files[key] = {name: arrays[name].tobytes() for name in arrays.files}
        else:
            files[key] = path.read_bytes()
    return files


def strays(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if STRAY.search(p.name)]


def killed_copy(base: Path, tmp_path: Path, name: str) -> Path:
    """A fresh working folder holding a copy of `base` as `out`."""
    work = tmp_path / name / "work"
    shutil.copytree(base, work / "out", symlinks=True)
    return work


def kill_and_check(base: Path, tmp_path: Path, args: list[str], points: list[int],
                   loadable: Callable[[Path], None], rerun: Callable[[Path], None],
                   expected: dict[str, Any]) -> None:
    """For each kill point: kill there, check what is left loads, re-run, compare."""
    for point in points:
        work = killed_copy(base, tmp_path, f"kill{point}")
        killed = run_cfspec(work, args, kill_at=point)
        assert killed.returncode == KILLED, (point, killed.stderr[-2000:])
        loadable(work / "out")
        rerun(work)
        assert strays(work) == [], point
        assert snapshot(work / "out") == expected, f"differs after a kill at step {point}"


def clean_run(base: Path, tmp_path: Path, args: list[str]) -> tuple[list[tuple[str, str]],
                                                                   dict[str, Any]]:
    """The steps of an uninterrupted run and what it leaves."""
    work = killed_copy(base, tmp_path, "clean")
    done = run_cfspec(work, args)
    assert done.returncode == 0, done.stderr[-2000:]
    return events(work), snapshot(work / "out")


def spread(count: int, n: int) -> list[int]:
    """n kill points spread evenly over steps 1..count, the first and the last included."""
    return sorted({1 + (count - 1) * i // max(n - 1, 1) for i in range(n)})


def subprocess_rerun(args: list[str]) -> Callable[[Path], None]:
    def rerun(work: Path) -> None:
        again = run_cfspec(work, args)
        assert again.returncode == 0, again.stderr[-2000:]
    return rerun


# --- filter and export: no model, every step -------------------------------------------------


def test_filter_killed_at_every_step(tmp_path: Path) -> None:
    base = build_out(tmp_path / "base")
    standard_metrics(base)
    args = ["filter", "out"]
    steps, expected = clean_run(base, tmp_path, args)
    assert steps

    def loadable(out: Path) -> None:
        decisions = read_filter(out, {p["id"]: Pair.from_json(p) for p in PAIRS})
        assert decisions is None or decisions[1] == []  # absent, or whole

    kill_and_check(base, tmp_path, args, list(range(1, len(steps) + 1)), loadable,
                   subprocess_rerun(args), expected)


def test_hf_export_killed_anywhere_always_loads(tmp_path: Path) -> None:
    """Over an earlier export (every first seed, 3 rows), a new one (the filter's 2 kept rows):
    at each of 8 kill points spread over all its steps (the first and last included), the
    folder loads with `datasets` as the old dataset or the new one."""
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    from cfspec.stages.export import export
    from cfspec.stages.filter import Gates, run_filter

    base = build_out(tmp_path / "base", size=16)
    export(base, "hf", base / "dataset")
    standard_metrics(base)
    run_filter(base, Gates())
    args = ["export", "out", "--to", "hf", "-o", "out/dataset"]
    steps, expected = clean_run(base, tmp_path, args)
    assert any(name == "rmdir" for name, _ in steps)  # the old folder is removed after the swap

    def loadable(out: Path) -> None:
        cache = out.parent.parent / "cache"
        loaded = datasets.load_dataset(str(out / "dataset"), split="train", cache_dir=str(cache))
        assert loaded.num_rows in (3, 2)  # the old export or the new one, never a mix
        assert loaded["seed"] in ([0, 0, 0], [1, 0])

    kill_and_check(base, tmp_path, args, spread(len(steps), 8), loadable,
                   subprocess_rerun(args), expected)


def test_cf_json_export_killed_before_the_swap_keeps_the_old_one(tmp_path: Path) -> None:
    from cfspec.stages.export import export

    base = build_out(tmp_path / "base", seeds=(0,), size=16)
    export(base, "cf-json", base / "cf")
    old = snapshot(base / "cf")
    write_generated(base, PAIRS[0], 0, size=24)  # new images for one pair
    args = ["export", "out", "--to", "cf-json", "-o", "out/cf"]
    steps, expected = clean_run(base, tmp_path, args)
    marker = next(n for n, (name, path) in enumerate(steps, 1)
                  if name == "replace" and "cfspec-export.json" in path)
    work = killed_copy(base, tmp_path, "before-swap")
    assert run_cfspec(work, args, kill_at=marker).returncode == KILLED
    assert snapshot(work / "out" / "cf") == old  # untouched until the swap
    assert strays(work)  # the unfinished new version is still beside it...
    subprocess_rerun(args)(work)
    assert strays(work) == []  # ...until the next export removes it
    assert snapshot(work / "out") == expected
    assert snapshot(work / "out" / "cf") != old


# --- evaluate ----------------------------------------------------------------------------------


def test_evaluate_killed_between_its_files_reruns_to_the_same_bytes(tmp_path: Path) -> None:
    """OUT holds an earlier evaluation; a third seed is then generated. A kill after the new
    metrics.jsonl but before its summary leaves a summary readers must not trust."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from cfspec.gpu.evaluate.stage import evaluate

    fast: dict[str, Any] = {"quiet": True, "bootstrap_resamples": 200}
    base = build_out(tmp_path / "base", size=16)
    evaluate(base, clip_model="tiny", **fast)
    old_summary = read_summary(base)
    assert old_summary is not None
    for pair in PAIRS:
        write_generated(base, pair, 2, size=16)
    reference = tmp_path / "reference"
    shutil.copytree(base, reference)
    evaluate(reference, clip_model="tiny", **fast)
    expected = snapshot(reference)
    assert "seconds" not in json.loads((reference / "metrics_summary.json").read_text())

    args = ["evaluate", "out", "--clip-model", "tiny", "--quiet"]
    # Its steps: 1 fsync metrics.jsonl's temp file, 2 rename it, 3 and 4 the same for the
    # summary. Killed at 2: the old files and a temp file; at 3: new rows, the old summary.
    metrics_written = 2

    def loadable(out: Path) -> None:
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        summary = read_summary(out)
        if len(rows) == 9:  # the new rows are in: the old summary must not pass for theirs
            assert summary is None
        else:
            assert summary == old_summary

    def rerun(work: Path) -> None:
        evaluate(work / "out", clip_model="tiny", **fast)

    kill_and_check(base, tmp_path, args, [metrics_written, metrics_written + 1], loadable,
                   rerun, expected)


# --- generate and run: the tiny model ---------------------------------------------------------

RUN_ARGS = ["--model", "tiny", "--steps", "2", "--height", "32", "--width", "32", "--quiet"]


def _needs_models() -> None:
    for module in ("torch", "diffusers", "transformers", "accelerate"):
        pytest.importorskip(module)


def test_generate_killed_mid_job_and_before_compaction(tmp_path: Path) -> None:
    _needs_models()
    from cfspec.workspace.pairs import write_pairs

    base = tmp_path / "base"
    write_pairs(base, PAIRS[:2])
    args = ["generate", "out", "--seeds", "2", *RUN_ARGS]
    steps, expected = clean_run(base, tmp_path, args)
    first_npz = next(n for n, (name, path) in enumerate(steps, 1)
                     if name == "replace" and path.endswith(".tmp") and ".0.npz." in path)
    compaction = next(n for n, (name, path) in enumerate(steps, 1)
                      if name == "replace" and ".manifest.jsonl." in path)

    def loadable(out: Path) -> None:
        from cfspec.workspace.manifest_lines import read_manifest

        if (out / "manifest.jsonl").exists():
            read_manifest(out, {p["id"]: Pair.from_json(p) for p in PAIRS[:2]})

    kill_and_check(base, tmp_path, args, [first_npz, compaction - 1], loadable,
                   subprocess_rerun(args), expected)


def test_run_killed_in_generate_and_in_evaluate(tmp_path: Path) -> None:
    """`cfspec run` killed before generate recorded any image pair, and between evaluate's
    two files; `cfspec run` again gives what one uninterrupted run gives."""
    _needs_models()
    base = tmp_path / "base"
    base.mkdir()
    args = ["run", str(ROOT / "specs" / "cake.scm"), "-o", "out", "--clip-model", "tiny",
            "--min-clip", "0", "--min-directional", "-1", "--min-image-similarity", "-1",
            *RUN_ARGS]
    steps, expected = clean_run(base, tmp_path, args)
    before_first_line = next(n for n, (name, path) in enumerate(steps, 1)
                             if name == "replace" and ".0.npz." in path)
    between_files = next(n for n, (name, path) in enumerate(steps, 1)
                         if name == "replace" and ".metrics.jsonl." in path) + 1

    def loadable(out: Path) -> None:
        if not (out / "manifest.jsonl").exists():  # generate recorded nothing yet
            from cfspec.gpu.evaluate.stage import evaluate

            assert list((out / "images").rglob("*.png"))
            with pytest.raises(StageError, match=r"images holds 2 image\(s\) in 1 pair "
                               r"folder\(s\): a `cfspec generate` run stopped"):
                evaluate(out, clip_model="tiny")  # says what it found, and how to go on
            return
        assert read_summary(out) is None  # rows without their summary: not trusted

    kill_and_check(base, tmp_path, args, [before_first_line, between_files], loadable,
                   subprocess_rerun(args), expected)


# --- the swap where renameat2 is missing ------------------------------------------------------


class _Killed(BaseException):
    """Stands for a SIGKILL in-process: nothing in replace_dir catches a BaseException."""


def test_fallback_swap_killed_between_its_renames_is_repaired(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Without an atomic exchange the old folder is renamed aside, then the new one in; a kill
    between the two leaves no DIR, and the next run's clean-up puts the old one back."""
    import os

    from cfspec.workspace import outdir

    monkeypatch.setattr(outdir, "_exchange", lambda first, second: False)
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "old.txt").write_text("old", encoding="utf-8")
    staged = outdir.staging_dir(target)
    (staged / "new.txt").write_text("new", encoding="utf-8")
    real_rename = os.rename

    def rename_then_die(source: Any, destination: Any) -> None:
        real_rename(source, destination)
        raise _Killed

    monkeypatch.setattr(outdir.os, "rename", rename_then_die)
    with pytest.raises(_Killed):
        outdir.replace_dir(staged, target)
    monkeypatch.setattr(outdir.os, "rename", real_rename)
    assert not target.exists()
    outdir.remove_stale_staging(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
    assert (target / "old.txt").read_text(encoding="utf-8") == "old"
    staged = outdir.staging_dir(target)
    (staged / "new.txt").write_text("new", encoding="utf-8")
    outdir.replace_dir(staged, target)  # uninterrupted, the fallback swaps too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]
