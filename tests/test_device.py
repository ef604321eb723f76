"""What the GPU commands tell a user before any work: a device that is not there
(cfspec.gpu.device), a model that is not there or has random weights (cfspec.gpu.models,
stages.preflight), and images that a re-run with other settings would replace
(store.replaced_by, `--overwrite`).

The CUDA-missing case is real on a machine without CUDA (a CPU build of torch): those tests run
the commands for real and are skipped where a GPU is present."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from typer.testing import CliRunner  # noqa: E402

from cfspec.cli.app import app  # noqa: E402
from cfspec.gpu.device import DeviceError, check_name, dtype_name, pick  # noqa: E402
from cfspec.gpu.models import (  # noqa: E402
    BUILT_IN_CLIPS,
    BUILT_IN_MODELS,
    DEFAULT_MODEL,
    looks_like_path,
    random_weights_warning,
)

ROOT = Path(__file__).resolve().parent.parent
CAKE = ROOT / "specs" / "cake.scm"
NO_CUDA = not torch.cuda.is_available()
NO_MPS = not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
TINY_ARGS = ["--model", "tiny", "--device", "cpu", "--steps", "2", "--height", "32", "--width",
             "32", "--quiet"]
runner = CliRunner()


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compiled") / "out"
    done = runner.invoke(app, ["compile", str(CAKE), "-o", str(out), "--quiet"])
    assert done.exit_code == 0, done.output
    return out


# -- one function decides the device ----------------------------------------------------------


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "cuda:-1", "CUDA", "cpu:0", "tpu",
                                  "", " cuda", "mps:0", "cuda:0:1"])
def test_a_malformed_device_is_named_with_the_choices(name: str) -> None:
    with pytest.raises(DeviceError) as caught:
        check_name(name)
    message = str(caught.value)
    assert message == f"--device {name!r}: not a device; choose auto, cpu, cuda, cuda:N or mps"
    with pytest.raises(DeviceError):
        pick(name)


def test_auto_takes_what_there_is() -> None:
    expected = "cuda" if not NO_CUDA else "cpu" if NO_MPS else "mps"
    assert pick("auto") == expected
    assert pick("cpu") == "cpu"
    for name in ("auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"):
        check_name(name)  # well-formed, whether or not it is here


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA device")
def test_cuda_that_is_not_there_is_one_line_with_a_way_out() -> None:
    for name in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(DeviceError) as caught:
            pick(name)
        message = str(caught.value)
        assert message.startswith(f"--device {name}: no CUDA device: ")
        assert "\n" not in message and "use --device cpu, or --device auto" in message
        if torch.version.cuda is None:
            assert "is a CPU build" in message


@pytest.mark.skipif(NO_CUDA, reason="no CUDA device here")
def test_a_cuda_index_out_of_range_says_how_many_there_are() -> None:
    count = torch.cuda.device_count()
    assert pick(f"cuda:{count - 1}") == f"cuda:{count - 1}"
    with pytest.raises(DeviceError, match=rf"this machine has {count} CUDA device\(s\)"):
        pick(f"cuda:{count}")


@pytest.mark.skipif(not NO_MPS, reason="this machine has MPS")
def test_mps_that_is_not_there_is_one_line() -> None:
    with pytest.raises(DeviceError, match=r"^--device mps: MPS is not available here"):
        pick("mps")


def test_dtype_auto_follows_the_device() -> None:
    assert dtype_name("auto", "cuda:1") == "float16"
    assert dtype_name(None, "cpu") == dtype_name("auto", "mps") == "float32"
    assert dtype_name("bf16", "cpu") == "bfloat16" and dtype_name("FP16", "cpu") == "float16"
    with pytest.raises(ValueError, match="--dtype 'fp8'"):
        dtype_name("fp8", "cpu")
    from cfspec.gpu.generate.weights import resolve_dtype

    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16  # no GPU needed


def test_the_light_modules_import_no_torch() -> None:
    code = ("import sys, cfspec.gpu.device, cfspec.gpu.models, cfspec.stages.preflight, "
            "cfspec.cli.app; "
            "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


# -- every command that takes --device says so in one line, exit 2 ----------------------------


def commands(out: Path) -> dict[str, list[str]]:
    return {
        "generate": ["generate", str(out), "--model", "tiny"],
        "evaluate": ["evaluate", str(out), "--clip-model", "tiny"],
        "plan": ["plan", str(out)],
        "run": ["run", str(CAKE), "-o", str(out.parent / "run"), "--model", "tiny",
                "--clip-model", "tiny"],
    }


@pytest.mark.parametrize("command", ["generate", "evaluate", "plan", "run"])
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps", "gpu"])
def test_a_device_that_is_not_there_is_one_line_exit_2(compiled: Path, command: str,
                                                        device: str) -> None:
    if (device.startswith("cuda") and not NO_CUDA) or (device == "mps" and not NO_MPS):
        pytest.skip(f"{device} is here")
    before = sorted(p.name for p in compiled.iterdir())
    result = runner.invoke(app, [*commands(compiled)[command], "--device", device])
    assert result.exit_code == 2, result.output
    (line,) = lines(result.output)
    assert line.startswith(f"cfspec: error: --device {device if device != 'gpu' else repr(device)}")
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert sorted(p.name for p in compiled.iterdir()) == before  # nothing written
    assert not (compiled.parent / "run").exists()  # run: nothing compiled either


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA device")
def test_run_with_cuda_missing_stops_before_compile_in_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "cfspec", "run", str(CAKE), "-o", str(out),
                           "--device", "cuda"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = lines(done.stderr)
    assert line.startswith("cfspec: error: --device cuda: no CUDA device")
    assert "Traceback" not in done.stderr and not out.exists()
    generate = subprocess.run([sys.executable, "-m", "cfspec", "generate", str(out), "--device",
                               "cuda:0"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
    assert generate.returncode == 2 and len(lines(generate.stderr)) == 1, generate.stderr


def test_doctor_keeps_exit_1_for_a_missing_device_and_2_for_a_malformed_one() -> None:
    bad = runner.invoke(app, ["doctor", "--device", "cuda:x"])
    assert bad.exit_code == 2 and len(lines(bad.output)) == 1, bad.output
    if NO_CUDA:
        from cfspec.gpu.generate.doctor import FAIL, _device

        dev, check = _device("cuda:1")
        assert dev is None and check.status == FAIL
        assert check.detail.startswith("--device cuda:1: no CUDA device")


# -- the default model is a real one; built-in ones warn ----------------------------------------


def test_model_names_agree_with_the_loaders() -> None:
    from cfspec.gpu.evaluate import clip
    from cfspec.gpu.generate import weights
    from cfspec.gpu.models import DEFAULT_CLIP

    assert BUILT_IN_MODELS == weights.BUILT_IN
    assert BUILT_IN_CLIPS == (clip.TINY, clip.RANDOM_VIT_L14)
    assert DEFAULT_CLIP == clip.DEFAULT_CLIP


@pytest.mark.parametrize(("name", "path"), [
    ("./nope", True), ("../models/sd", True), ("/abs/sd15", True), ("~/sd15", True),
    ("a/b/c", True), ("models/sd 15", True), (".hidden", True),
    (DEFAULT_MODEL, False), ("openai/clip-vit-large-patch14", False), ("tiny", False),
    ("gpt2", False), ("org/name-v1.5_x", False)])
def test_what_looks_like_a_path(name: str, path: bool) -> None:
    assert looks_like_path(name) is path


def test_random_weight_models_are_named_as_such() -> None:
    for name in BUILT_IN_MODELS:
        warning = random_weights_warning("--model", name)
        assert warning == (f"--model {name} has random weights: its images are noise, fit for "
                           f"tests and a trial run, not a dataset (the default is "
                           f"{DEFAULT_MODEL})")
    for name in BUILT_IN_CLIPS:
        warning = random_weights_warning("--clip-model", name)
        assert warning is not None and warning.startswith(
            f"--clip-model {name} has random weights: its scores mean nothing")
        assert "openai/clip-vit-large-patch14" in warning
    assert random_weights_warning("--model", "random-vit-l-14") is None  # a CLIP, not an SD
    assert random_weights_warning("--clip-model", "tiny-sdxl") is None
    assert random_weights_warning("--model", DEFAULT_MODEL) is None
    assert random_weights_warning("--model", "./my-sd15") is None


def test_the_default_model_missing_from_the_cache_says_how_to_get_it(
        compiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for command in (["generate", str(compiled), "--device", "cpu"],
                    ["run", str(CAKE), "-o", str(compiled.parent / "run2"), "--device", "cpu",
                     "--clip-model", "tiny"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        text = result.output
        assert (f"cfspec: error: --model {DEFAULT_MODEL}: not in the local Hugging Face cache, "
                "and HF_HUB_OFFLINE is set") in text
        assert f"`hf download {DEFAULT_MODEL}`" in text and "`--model tiny`" in text
        assert "Traceback" not in text
        assert not (compiled / "manifest.jsonl").exists()
    run = runner.invoke(app, ["run", str(CAKE), "-o", str(compiled.parent / "run2"), "--device",
                              "cpu", "--clip-model", "tiny"])
    assert "== generate" not in run.output  # stopped by the preflight, before any image


def test_run_checks_the_vqa_model_before_the_first_image(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --vqa-model` that cannot load is said before generation, with the models' problems,
    not when evaluate reaches it after the images."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = ["run", str(CAKE), "--device", "cpu", "--model", "tiny", "--clip-model", "tiny"]
    missing = tmp_path / "no-vqa"
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "a"), "--vqa-model", str(missing)])
    assert result.exit_code == 2, result.output
    assert f"cfspec: error: --vqa-model {missing}" in result.output
    assert "== generate" not in result.output and "Traceback" not in result.output
    uncached = runner.invoke(app, [*base, "-o", str(tmp_path / "b"),
                                   "--vqa-model", "nobody/no-such-vqa"])
    assert uncached.exit_code == 2, uncached.output
    assert ("--vqa-model nobody/no-such-vqa: not in the local Hugging Face cache"
            in uncached.output and "`--vqa-model tiny`" in uncached.output)
    assert "== generate" not in uncached.output


def test_a_model_path_that_does_not_exist_says_so(compiled: Path) -> None:
    result = runner.invoke(app, ["generate", str(compiled), "--model", "./nope", "--device",
                                 "cpu"])
    assert result.exit_code == 2
    (line,) = lines(result.output)
    assert line.startswith("cfspec: error: --model ./nope: no such folder (")
    assert "hub" not in line.split(";")[0]
    from cfspec.gpu.generate.weights import ModelLoadError, load_components

    with pytest.raises(ModelLoadError, match="--model ./nope: no such folder"):
        load_components("./nope", torch.device("cpu"), torch.float32)


def test_tiny_models_warn_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = runner.invoke(app, ["compile", str(CAKE), "-o", str(out), "--quiet"])
    assert done.exit_code == 0
    made = runner.invoke(app, ["generate", str(out), *TINY_ARGS])
    assert made.exit_code == 0, made.output
    assert made.stderr.startswith("cfspec: warning: --model tiny has random weights")
    assert made.stdout == ""
    scored = runner.invoke(app, ["evaluate", str(out), "--clip-model", "tiny", "--device",
                                 "cpu", "--quiet"])
    assert scored.exit_code == 0, scored.output
    assert "cfspec: warning: --clip-model tiny has random weights: its scores mean nothing" \
        in scored.stderr


# -- images made with other settings are replaced only with --overwrite -------------------------


def manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "manifest.jsonl").read_text("utf-8").splitlines()]


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def test_a_rerun_with_other_settings_refuses_and_lists_what_differs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert runner.invoke(app, ["compile", str(CAKE), "-o", str(out), "--quiet"]).exit_code == 0
    pairs = len((out / "pairs.jsonl").read_text("utf-8").splitlines())
    first = runner.invoke(app, ["generate", str(out), *TINY_ARGS, "--seeds", "2"])
    assert first.exit_code == 0, first.output
    before = files(out)

    # Plan says how many a run with other settings would redo, and what differs.
    plan = runner.invoke(app, ["plan", str(out), "--model", "tiny", "--device", "cpu",
                               "--steps", "3", "--scheduler", "euler", "--height", "32",
                               "--width", "32", "--format", "json"])
    assert plan.exit_code == 0, plan.output
    data = json.loads(plan.stdout)
    assert (data["done"], data["pending"], data["replace"]) == (0, pairs, pairs)
    assert data["changes"] == ["scheduler: ddim -> euler", "steps: 2 -> 3"]

    other = ["generate", str(out), *TINY_ARGS, "--steps", "3", "--scheduler", "euler"]
    refused = runner.invoke(app, other)
    assert refused.exit_code == 2
    assert (f"cfspec: error: {out} holds {pairs} image pair(s) of {pairs} pair(s) made with "
            "other settings, which this run would replace:\n  scheduler: ddim -> euler\n"
            "  steps: 2 -> 3\n  = help: pass --overwrite") in refused.stderr
    assert files(out) == before  # nothing touched

    # New seeds and the settings the images were made with are no replacement.
    more = runner.invoke(app, ["generate", str(out), *TINY_ARGS, "--seeds", "3"])
    assert more.exit_code == 0, more.output
    assert len(manifest(out)) == 3 * pairs

    replaced = runner.invoke(app, [*other, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    by_seed = {(r["id"], r["seed"]): (r["steps"], r["scheduler"]) for r in manifest(out)}
    assert sorted(set(by_seed.values())) == [(2, "ddim"), (3, "euler")]
    assert [k for k, v in by_seed.items() if v == (3, "euler")] == [
        k for k in by_seed if k[1] == 0]  # seed 0 of every pair: what the run asked for
    again = runner.invoke(app, [*other, "--overwrite"])  # done now: nothing replaced twice
    assert again.exit_code == 0 and len(manifest(out)) == 3 * pairs


def test_run_passes_overwrite_to_generate(tmp_path: Path) -> None:
    out = tmp_path / "out"
    common = ["run", str(CAKE), "-o", str(out), *TINY_ARGS, "--clip-model", "tiny",
              "--min-clip", "0", "--min-directional", "-1", "--min-image-similarity", "-1"]
    assert runner.invoke(app, common).exit_code == 0
    refused = runner.invoke(app, [*common, "--steps", "3"])
    assert refused.exit_code == 2 and "steps: 2 -> 3" in refused.output
    assert "== evaluate" not in refused.output
    assert {r["steps"] for r in manifest(out)} == {2}
    done = runner.invoke(app, [*common, "--steps", "3", "--overwrite"])
    assert done.exit_code == 0, done.output
    assert {r["steps"] for r in manifest(out)} == {3}
