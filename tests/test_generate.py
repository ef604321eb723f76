"""`generate()` and `cfspec generate`: files, manifest, resume, exit codes, several processes and
a run killed part-way. Tiny model, CPU, 32x32 images and a few steps."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from cfspec.gpu.generate.stage import GenerateError, WouldReplace, generate  # noqa: E402
from cfspec.workspace.pairs import dumps, schema_errors  # noqa: E402
from cfspec.workspace.shards import Shard  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAST = {"model": "tiny", "steps": 4, "height": 32, "width": 32, "quiet": True}
FAST_ARGS = ["--model", "tiny", "--device", "cpu", "--steps", "4", "--height", "32", "--width",
             "32", "--quiet"]


def pair(pair_id: str, prompt_0: str, prompt_1: str, kind: str = "replace",
         refine_map: list[int] | None = None, cross: list[float] | None = None,
         equalizer: dict[str, float] | None = None) -> dict[str, Any]:
    """A words-sourced pairs.jsonl line; words split on spaces, the changed words blended."""
    w0, w1 = prompt_0.split(), prompt_1.split()
    t0 = ["<|startoftext|>", *w0, "<|endoftext|>"]
    t1 = ["<|startoftext|>", *w1, "<|endoftext|>"]
    alignment: dict[str, Any] = {"source": "words", "tokens_0": t0, "tokens_1": t1}
    if kind == "refine":
        assert refine_map is not None
        alignment["token_map"] = refine_map
        alignment["inserted"] = [j for j, i in enumerate(refine_map) if i < 0]
        changed_0 = [w for w in w0 if w not in w1]
        changed_1 = [w for w in w1 if w not in w0]
    else:
        alignment["words"] = [[i, i] for i in range(len(w0))]
        alignment["token_map"] = [[i, i, 1.0] for i in range(len(t0))]
        changed_0 = [a for a, b in zip(w0, w1, strict=True) if a != b]
        changed_1 = [b for a, b in zip(w0, w1, strict=True) if a != b]
    eq = equalizer or {}
    line = {
        "id": pair_id, "spec": "tests/test_generate.py", "counterfactual": pair_id,
        "prompt_0": prompt_0, "prompt_1": prompt_1, "intervention": [],
        "edit": {
            "type": kind,
            "cross_replace_steps": {"default": cross or [0.0, 0.8], "words": {}},
            "self_replace_steps": [0.0, 0.4],
            "local_blend": {
                "words_0": changed_0, "words_1": changed_1,
                "tokens_0": [w0.index(w) + 1 for w in changed_0],
                "tokens_1": [w1.index(w) + 1 for w in changed_1],
                "threshold": 0.3,
            },
            "equalizer": {"words": list(eq), "values": list(eq.values()),
                          "tokens": [[w1.index(w) + 1] for w in eq]},
            "alignment": alignment,
        },
        "scm": ["A → B: x"], "scm_aug": ["A → B: x"],
    }
    assert schema_errors(line) == []
    return line


PAIRS = [
    pair("banana__apple", "a banana on a table", "a apple on a table"),
    pair("dog__small_dog", "a dog on a table", "a small dog on a table", kind="refine",
         refine_map=[0, 1, -1, 2, 3, 4, 5, 6]),
    pair("sheep__fluffy", "a cute sheep in a field", "a fluffy sheep in a field",
         kind="reweight", equalizer={"fluffy": 2.0}),
    pair("cat__dog", "a cat on a red couch", "a dog on a red couch"),
    pair("bus__truck", "a red bus on the street", "a red truck on the street"),
    pair("pear__plate", "a pear on a plate", "a apple on a plate"),
]


def write_pairs(out: Path, pairs: list[dict[str, Any]]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "pairs.jsonl").write_text("".join(dumps(p) + "\n" for p in pairs), encoding="utf-8")
    return out


def manifest_lines(out: Path) -> list[dict[str, Any]]:
    path = out / "manifest.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_complete(out: Path, pairs: list[dict[str, Any]], seeds: int) -> list[dict[str, Any]]:
    """Every image present and valid, one manifest line per (pair, seed), no temp files."""
    lines = manifest_lines(out)
    keys = [(r["id"], r["seed"]) for r in lines]
    assert len(keys) == len(set(keys)), "duplicate manifest lines"
    assert sorted(keys) == sorted((p["id"], s) for p in pairs for s in range(seeds))
    for record in lines:
        for key in ("image_0", "image_1"):
            with Image.open(out / record[key]) as image:
                image.load()
                assert image.size == (32, 32)
        with np.load(out / record["extras"]) as extras:
            assert extras["latents"].shape == (2, 4, 16, 16)
            assert extras["attention"].shape == (2, 8, 8)
            assert extras["mask"].shape == (16, 16)
    assert not list(out.rglob("*.tmp")), "temp files left behind"
    return lines


def images(out: Path) -> dict[str, np.ndarray]:
    return {
        str(p.relative_to(out)): np.asarray(Image.open(p), dtype=np.int16)
        for p in sorted((out / "images").rglob("*.png"))
    }


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}



pytestmark = pytest.mark.usefixtures("one_torch_thread")

# -- in-process -------------------------------------------------------------------------------


def test_generate_writes_images_extras_and_manifest_then_resumes(tmp_path: Path) -> None:
    out = write_pairs(tmp_path / "out", PAIRS[:3])
    result = generate(out, seeds=2, batch_pairs=2, **FAST)  # type: ignore[arg-type]
    assert result.ok and result.generated == 6 and result.skipped == 0 and result.total == 6
    lines = check_complete(out, PAIRS[:3], seeds=2)
    first = lines[0]
    for key in ("model", "scheduler", "steps", "guidance", "seed", "edit", "height", "width",
                "dtype", "prompt_0", "prompt_1"):
        assert key in first
    assert first["model"] == "tiny" and first["steps"] == 4 and first["scheduler"] == "ddim"
    assert first["edit"] == PAIRS[0]["edit"]
    # In pairs.jsonl order, then by seed.
    assert [(r["id"], r["seed"]) for r in lines][:2] == [("banana__apple", 0),
                                                         ("banana__apple", 1)]
    before = images(out)

    again = generate(out, seeds=2, batch_pairs=2, **FAST)  # type: ignore[arg-type]
    assert again.generated == 0 and again.skipped == 6
    assert manifest_lines(out) == lines

    # A third seed only adds that seed; the others stay as they were.
    more = generate(out, seeds=3, batch_pairs=2, **FAST)  # type: ignore[arg-type]
    assert more.generated == 3 and more.skipped == 6
    check_complete(out, PAIRS[:3], seeds=3)
    after = images(out)
    for name, array in before.items():
        assert np.array_equal(after[name], array)

    # Other parameters make other images: replaced only when asked to, then one manifest
    # line each again.
    with pytest.raises(WouldReplace, match=r"holds 9 image pair\(s\) of 3 pair\(s\)"):
        generate(out, seeds=3, batch_pairs=2, guidance=3.0, **FAST)  # type: ignore[arg-type]
    untouched = images(out)
    assert untouched.keys() == after.keys()
    assert all(np.array_equal(untouched[k], after[k]) for k in after)
    assert len(manifest_lines(out)) == 9
    other = generate(out, seeds=3, batch_pairs=2, guidance=3.0, overwrite=True,
                     **FAST)  # type: ignore[arg-type]
    assert other.generated == 9
    lines = check_complete(out, PAIRS[:3], seeds=3)
    assert {r["guidance"] for r in lines} == {3.0}

    # Fewer seeds than are done: nothing to do, and only the asked-for ones are counted.
    fewer = generate(out, seeds=1, batch_pairs=2, guidance=3.0, **FAST)  # type: ignore[arg-type]
    assert (fewer.total, fewer.skipped, fewer.generated) == (3, 3, 0)
    assert len(manifest_lines(out)) == 9


def test_a_kill_while_replacing_other_parameters_never_leaves_a_wrong_line(
        tmp_path: Path, monkeypatch: Any) -> None:
    from cfspec.workspace import store

    out = write_pairs(tmp_path / "out", PAIRS[:2])
    generate(out, **FAST)  # type: ignore[arg-type]
    real = store.save_npz

    def killed(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise KeyboardInterrupt  # the new files are in place, their manifest line is not

    monkeypatch.setattr(store, "save_npz", killed)
    with pytest.raises(KeyboardInterrupt):
        generate(out, guidance=3.0, overwrite=True, **FAST)  # type: ignore[arg-type]
    monkeypatch.undo()
    raw = manifest_lines(out)
    assert raw[-1]["superseded"] is True and raw[-1]["id"] == "banana__apple"

    # Back with the old parameters: the overwritten pair is not taken for done.
    again = generate(out, **FAST)  # type: ignore[arg-type]
    assert again.generated == 1 and again.skipped == 1
    lines = check_complete(out, PAIRS[:2], seeds=1)
    assert all("superseded" not in r and r["guidance"] == 7.5 for r in lines)


def test_images_do_not_depend_on_batch_size(tmp_path: Path) -> None:
    one = write_pairs(tmp_path / "one", PAIRS[:4])
    four = write_pairs(tmp_path / "four", PAIRS[:4])
    generate(one, batch_pairs=1, **FAST)  # type: ignore[arg-type]
    generate(four, batch_pairs=4, **FAST)  # type: ignore[arg-type]
    a, b = images(one), images(four)
    assert a.keys() == b.keys() and len(a) == 8
    for name in a:
        assert np.abs(a[name] - b[name]).max() <= 1, name


def test_factual_image_is_shared_by_pairs_with_the_same_prompt(tmp_path: Path) -> None:
    same = [pair("x_apple", "a pear on a plate", "a apple on a plate"),
            pair("x_cake", "a pear on a plate", "a cake on a plate")]
    out = write_pairs(tmp_path / "out", same)
    generate(out, **FAST)  # type: ignore[arg-type]
    got = images(out)
    assert np.array_equal(got["images/x_apple/0_0.png"], got["images/x_cake/0_0.png"])
    assert not np.array_equal(got["images/x_apple/0_1.png"], got["images/x_cake/0_1.png"])


def test_generate_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="pairs.jsonl"):
        generate(tmp_path / "missing", **FAST)  # type: ignore[arg-type]
    out = write_pairs(tmp_path / "out", PAIRS[:1])
    with pytest.raises(GenerateError, match="scheduler"):
        generate(out, scheduler="nope", **FAST)  # type: ignore[arg-type]
    with pytest.raises(GenerateError, match="seeds"):
        generate(out, seeds=0, **FAST)  # type: ignore[arg-type]


# -- the command --------------------------------------------------------------------------------


def _runner() -> tuple[Any, Any]:
    import typer
    from typer.testing import CliRunner

    from cfspec.cli.generate import generate_command

    app = typer.Typer()
    app.command()(generate_command)
    return app, CliRunner()


def test_command_exit_codes(tmp_path: Path) -> None:
    app, runner = _runner()
    bad = pair("bad_window", "a dog on a table", "a cat on a table")
    bad["edit"]["cross_replace_steps"]["default"] = [0.9, 0.2]  # start after end
    out = write_pairs(tmp_path / "out", [PAIRS[0], bad])
    result = runner.invoke(app, [str(out), *FAST_ARGS])
    assert result.exit_code == 1, result.output
    assert "bad_window" in result.output and "failed" in result.output
    assert [r["id"] for r in manifest_lines(out)] == ["banana__apple"]

    # A line that breaks the schema is skipped and reported; the rest is generated.
    broken = write_pairs(tmp_path / "broken", PAIRS[:1])
    with open(broken / "pairs.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"id": "half a line"\n')
    result = runner.invoke(app, [str(broken), *FAST_ARGS])
    assert result.exit_code == 1 and "skipped" in result.output
    assert len(manifest_lines(broken)) == 1

    good = write_pairs(tmp_path / "good", PAIRS[:1])
    assert runner.invoke(app, [str(good), *FAST_ARGS]).exit_code == 0
    assert runner.invoke(app, [str(tmp_path / "nothing"), *FAST_ARGS]).exit_code == 2
    assert runner.invoke(app, [str(good), "--scheduler", "nope", *FAST_ARGS]).exit_code == 2
    assert runner.invoke(app, [str(good), "--batch-pairs", "x"]).exit_code == 2


def test_compat_profile_and_blend_start_are_options_recorded_in_the_manifest(
        tmp_path: Path) -> None:
    app, runner = _runner()
    line = pair("blend", "a banana on a table", "a apple on a table")
    # The tiny model's maps are nearly flat: only a high threshold leaves some cells out.
    line["edit"]["local_blend"]["threshold"] = 0.95
    runs = {
        "default": [],
        "published": ["--p2p-compat", "published"],
        "late": ["--blend-start", "0.5"],
    }
    records = {}
    for name, args in runs.items():
        out = write_pairs(tmp_path / name, [line])
        # 10 steps: LocalBlend starts at step 2 by default, at 0 with published.
        result = runner.invoke(app, [str(out), *args, *FAST_ARGS, "--steps", "10"])
        assert result.exit_code == 0, result.output
        records[name] = manifest_lines(out)[0]
    default = records["default"]
    assert (default["p2p_compat"], default["blend_start"]) == ("cfspec", 0.2)
    # published: the P2P notebook's LocalBlend starts at step 0.
    assert (records["published"]["p2p_compat"], records["published"]["blend_start"]) == (
        "published", 0.0)
    assert records["late"]["blend_start"] == 0.5
    pictures = {name: images(tmp_path / name) for name in runs}
    key = "images/blend/0_1.png"
    assert not np.array_equal(pictures["default"][key], pictures["published"][key])
    assert not np.array_equal(pictures["default"][key], pictures["late"][key])
    # Another profile is another image: the default run's files are not "done" for it.
    again = runner.invoke(app, [str(tmp_path / "default"), "--p2p-compat", "published",
                                *FAST_ARGS, "--steps", "10", "--overwrite"])
    out = tmp_path / "default"
    assert again.exit_code == 0
    assert [r["p2p_compat"] for r in manifest_lines(out)] == ["published"]
    assert np.array_equal(images(out)[key], pictures["published"][key])
    assert runner.invoke(app, [str(out), "--p2p-compat", "google", *FAST_ARGS]).exit_code == 2
    assert runner.invoke(app, [str(out), "--blend-start", "2", *FAST_ARGS]).exit_code == 2


def test_a_pairs_own_blend_start_wins(tmp_path: Path) -> None:
    line = pair("blend", "a banana on a table", "a apple on a table")
    line["edit"]["local_blend"]["threshold"] = 0.95
    own = json.loads(json.dumps(line))
    own["edit"]["local_blend"]["start"] = 0.5
    a = write_pairs(tmp_path / "a", [own])
    b = write_pairs(tmp_path / "b", [line])
    generate(a, blend_start=0.0, **FAST)  # type: ignore[arg-type]
    generate(b, blend_start=0.5, **FAST)  # type: ignore[arg-type]
    pictures_a, pictures_b = images(a), images(b)
    assert sorted(pictures_a) == sorted(pictures_b) == ["images/blend/0_0.png",
                                                        "images/blend/0_1.png"]
    for key in pictures_b:
        assert np.array_equal(pictures_a[key], pictures_b[key])


def test_unreachable_model_is_a_usage_error(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app, runner = _runner()
    out = write_pairs(tmp_path / "out", PAIRS[:1])
    args = [a for a in FAST_ARGS if a != "tiny" and a != "--model"]
    result = runner.invoke(app, [str(out), "--model", "no-such-org/no-such-model", *args])
    assert result.exit_code == 2
    assert "--model no-such-org/no-such-model: not in the local Hugging Face cache" in \
        result.output
    assert "hf download no-such-org/no-such-model" in result.output
    assert "--model tiny" in result.output and "Traceback" not in result.output
    assert not (out / "manifest.jsonl").exists() and not list(out.rglob("*.png"))
    # The loader says the same when it is reached without the command's check.
    from cfspec.gpu.generate.weights import ModelLoadError

    with pytest.raises(ModelLoadError, match="hf download no-such-org/no-such-model"):
        generate(out, **{**FAST, "model": "no-such-org/no-such-model"})  # type: ignore[arg-type]


def test_command_module_imports_no_torch() -> None:
    code = ("import sys, cfspec.gpu.generate, cfspec.cli.generate; "
            "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True, env=env(), cwd=ROOT)


# -- processes ----------------------------------------------------------------------------------


def _torchrun_available() -> bool:
    import torch.distributed as dist

    return (
        importlib.util.find_spec("torch.distributed.run") is not None
        and dist.is_available()
        and dist.is_gloo_available()
    )


@pytest.mark.skipif(not _torchrun_available(), reason="torchrun or gloo is unavailable")
def test_two_processes_match_one(tmp_path: Path) -> None:
    # Processes split by group: the three counterfactuals of "a pear on a plate" share one.
    pairs = [*PAIRS[:3], PAIRS[5], pair("pear__cake", "a pear on a plate", "a cake on a plate"),
             pair("pear__fig", "a pear on a plate", "a fig on a plate")]
    single = write_pairs(tmp_path / "single", pairs)
    double = write_pairs(tmp_path / "double", pairs)
    # A sampled guidance: the draws do not depend on the process count either.
    command = ["-m", "cfspec.cli.generate", "--seeds", "2", "--batch-pairs", "2",
               "--guidance", "uniform(6, 9)", *FAST_ARGS]
    subprocess.run([sys.executable, *command[:2], str(single), *command[2:]], check=True,
                   env=env(), cwd=ROOT, timeout=300)
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         *command[:2], str(double), *command[2:]],
        env=env(), cwd=ROOT, timeout=300, capture_output=True, text=True,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    lines = check_complete(double, pairs, seeds=2)
    assert lines == check_complete(single, pairs, seeds=2)
    assert all(r["guidance_range"] == [6.0, 9.0] and 6 <= r["drawn"]["guidance"] <= 9
               for r in lines)
    a, b = images(single), images(double)
    assert a.keys() == b.keys()
    for name in a:
        assert np.abs(a[name] - b[name]).max() <= 1, name


def test_killed_run_resumes_without_losing_or_duplicating(tmp_path: Path) -> None:
    pairs = PAIRS
    seeds = 2
    out = write_pairs(tmp_path / "out", pairs)
    total = len(pairs) * seeds
    process = subprocess.Popen(
        [sys.executable, "-m", "cfspec.cli.generate", str(out), "--seeds", str(seeds),
         "--model", "tiny", "--device", "cpu", "--steps", "8", "--height", "32", "--width",
         "32", "--quiet"],
        env=env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if manifest.exists() and manifest.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    finished = len(manifest_lines(out))
    assert 2 <= finished < total

    result = generate(out, model="tiny", seeds=seeds, steps=8, height=32, width=32, quiet=True)
    assert result.ok
    assert result.skipped == finished and result.generated == total - finished
    check_complete(out, pairs, seeds)


def test_manifest_survives_a_torn_last_line(tmp_path: Path) -> None:
    out = write_pairs(tmp_path / "out", PAIRS[:2])
    generate(out, only=["banana__apple"], **FAST)  # type: ignore[arg-type]
    with open(out / "manifest.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"id": "dog__small_dog", "seed": 0, "ima')  # a writer killed mid-line
    result = generate(out, **FAST)  # type: ignore[arg-type]
    assert result.skipped == 1 and result.generated == 1
    check_complete(out, PAIRS[:2], seeds=1)



@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_prompts_with_unicode_line_separators_generate(tmp_path: Path, separator: str) -> None:
    # pairs.jsonl and the manifest keep these characters unescaped inside JSON strings; a
    # reader that splits lines on them (str.splitlines) used to die with IndexError.
    line = pair("sep", f"a dog sits{separator}on a table", f"a cat sits{separator}on a table")
    out = write_pairs(tmp_path / "out", [line])
    result = generate(out, **FAST)
    assert result.ok and result.generated == 1
    records = [json.loads(r) for r in
               (out / "manifest.jsonl").read_text(encoding="utf-8").split("\n") if r]
    assert [r["prompt_0"] for r in records] == [line["prompt_0"]]
    # "sits" and "on" are two words for CLIP as for cfspec: the blend word is "dog" alone.
    assert records[0]["tokens_0"][1:6] == ["a</w>", "dog</w>", "s", "its</w>", "on</w>"]
    again = generate(out, **FAST)  # the manifest line is read back: nothing to redo
    assert again.skipped == 1 and again.generated == 0
    # And every later stage reads its lines back the same way.
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    for stage in (["evaluate", str(out), "--clip-model", "tiny", "--quiet"],
                  ["filter", str(out), "--quiet"], ["report", str(out), "--quiet"]):
        done = CliRunner().invoke(app, stage)
        assert done.exit_code == 0, (stage, done.output)
    assert "sep" in (out / "filter.jsonl").read_text(encoding="utf-8")


RERUN_WITH = {  # one other value per parameter that makes other images
    "steps": 3, "scheduler": "euler", "guidance": 3.0, "blend_start": 0.5, "eta": 0.5,
    "p2p_compat": "published", "dtype": "bf16",
    "model": None,  # the only embedded model is `tiny`; another is a path, covered elsewhere
}
RECORDED_AS = {"bf16": "bfloat16"}


def test_every_manifest_parameter_is_tested() -> None:
    from cfspec.stages.options import GenerateOptions

    recorded = set(GenerateOptions().manifest_params()) - {"height", "width"}
    assert recorded == set(RERUN_WITH)


@pytest.mark.parametrize("key", [k for k, v in RERUN_WITH.items() if v is not None])
def test_a_rerun_with_another_parameter_regenerates(tmp_path: Path, key: str) -> None:
    """Dropping a parameter from the manifest's resume key would make a re-run with another
    value skip work and leave images of the old settings: each one is checked here."""
    out = write_pairs(tmp_path / "out", PAIRS[:1])
    generate(out, **FAST)  # type: ignore[arg-type]
    before = images(out)
    other = {**FAST, key: RERUN_WITH[key]}
    # Without --overwrite: refused before anything is written, naming what differs.
    with pytest.raises(WouldReplace, match=rf"\n  {key}: .* -> "):
        generate(out, **other)  # type: ignore[arg-type]
    assert len(manifest_lines(out)) == 1
    assert all(np.array_equal(images(out)[k], before[k]) for k in before)
    again = generate(out, overwrite=True, **other)  # type: ignore[arg-type]
    assert again.generated == 1 and again.skipped == 0
    (line,) = manifest_lines(out)[-1:]
    assert line[key] == RECORDED_AS.get(str(RERUN_WITH[key]), RERUN_WITH[key])


def test_shards_split_the_work_and_make_the_same_images(tmp_path: Path) -> None:
    """Three `--shard I/3` runs into one OUT: each makes only its pairs, together all of them,
    each image exactly as an unsharded run makes it; a later unsharded run finds all done."""
    whole = write_pairs(tmp_path / "whole", PAIRS[:5])
    assert generate(whole, batch_pairs=2, **FAST).generated == 5  # type: ignore[arg-type]
    parts = write_pairs(tmp_path / "parts", PAIRS[:5])
    made = [generate(parts, batch_pairs=2, shard=Shard(i, 3), **FAST)  # type: ignore[arg-type]
            for i in range(3)]
    assert [r.generated for r in made] == [2, 2, 1] and [r.total for r in made] == [2, 2, 1]
    by_shard = [{line["id"] for line in manifest_lines(parts)}]
    assert by_shard[0] == {p["id"] for p in PAIRS[:5]}
    assert len(manifest_lines(parts)) == 5  # no (pair, seed) twice: disjoint
    ours, theirs = images(parts), images(whole)
    assert ours.keys() == theirs.keys()
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
    again = generate(parts, **FAST)  # type: ignore[arg-type]
    assert again.generated == 0 and again.skipped == 5
    assert [line["id"] for line in manifest_lines(parts)] == [p["id"] for p in PAIRS[:5]]
