"""`cfspec doctor`: what it reports on this machine, and its exit codes (0 fine, 1 a problem, 2
usage). The checks run for real: versions, device, dtypes, the embedded models denoising a
P2P pair, the processors on this diffusers."""

from __future__ import annotations

import importlib.metadata
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
from cfspec.gpu.generate.doctor import FAIL, OK, render_json, render_text, run_checks  # noqa: E402,E501

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checks() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_checks("cpu")
    finally:
        torch.set_num_threads(before)


def test_doctor_reports_versions_device_dtypes_models_and_processors(checks: Any) -> None:
    by_name = {c.name: c for c in checks}
    for package in ("torch", "diffusers", "transformers", "accelerate"):
        assert by_name[package].status == OK
        assert by_name[package].detail == importlib.metadata.version(package)
    assert by_name["device"].status == OK and by_name["device"].detail.startswith("cpu")
    assert by_name["dtype fp32"].status == OK and "auto picks" in by_name["dtype fp32"].detail
    for model in ("tiny", "tiny-sdxl"):
        assert by_name[f"model {model}"].status == OK, by_name[f"model {model}"].detail
    assert "SDXL layout" in by_name["model tiny-sdxl"].detail
    processors = by_name["processors"]
    assert processors.status == OK, processors.detail
    assert importlib.metadata.version("diffusers") in processors.detail
    assert "StableDiffusionXLPipeline" in by_name["pipelines"].detail
    assert all(c.status != FAIL for c in checks)

    text = render_text(checks)
    assert text.splitlines()[-1] == "no problems: `cfspec generate` can run here"
    assert len(text.splitlines()) == len(checks) + 1  # one screen: a line per check
    data = json.loads(render_json(checks))
    assert data["ok"] is True and [c["name"] for c in data["checks"]] == list(by_name)


def test_doctor_usage_errors_exit_2() -> None:
    runner = CliRunner()
    for args in (["--device", "tpu"], ["--format", "xml"]):
        result = runner.invoke(app, ["doctor", *args])
        assert result.exit_code == 2, result.output
        assert "cfspec: error:" in result.output and "Traceback" not in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_doctor_exits_1_when_the_device_asked_for_is_missing() -> None:
    result = CliRunner().invoke(app, ["doctor", "--device", "cuda", "--format", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    device = next(c for c in data["checks"] if c["name"] == "device")
    assert data["ok"] is False and device["status"] == FAIL and "no CUDA device" in device["detail"]


def test_doctor_exits_1_when_a_library_does_not_import() -> None:
    # diffusers is installed but cannot be imported (as after a broken upgrade).
    code = ("import sys; sys.modules['diffusers'] = None; sys.argv = ['cfspec', 'doctor']; "
            "from cfspec.cli.app import main; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if " diffusers " in f" {x} ")
    assert line.startswith(FAIL) and "does not import" in line
    assert "Traceback" not in result.stderr
