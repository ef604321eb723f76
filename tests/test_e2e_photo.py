"""Issue 27's "done when": a spec with a photo, through compile, generate --inversion null-text
(tiny model), evaluate, filter, export and report, through the CLI. (The kill in the middle of
an inversion and its resume: tests/test_generate_photo.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from cfspec.cli.app import app  # noqa: E402

runner = CliRunner()

SPEC = """scm coco {
  id "158956"
  image "000000158956.png"
  prompt "a {{ A }} sitting on a {{ B }}"
  var A = "cat"
  var B = "car"
  A -> B "what sits picks the seat"
  counterfactual dog { do(A = "dog") }
}
"""


def test_a_photo_through_every_stage(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(
        tmp_path / "000000158956.png")
    (tmp_path / "coco.scm").write_text(SPEC, encoding="utf-8")
    out = tmp_path / "out"

    def cli(*args: str) -> None:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output)

    cli("compile", str(tmp_path / "coco.scm"), "-o", str(out), "--quiet")
    (pair,) = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert pair["image"]["path"] == str((tmp_path / "000000158956.png").resolve())
    cli("generate", str(out), "--model", "tiny", "--steps", "2", "--height", "32", "--width",
        "32", "--device", "cpu", "--inversion", "null-text", "--quiet")
    (line,) = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert line["inversion"]["method"] == "null-text"
    assert (out / line["photo"]).is_file() and len(list((out / "inversions").iterdir())) == 1
    cli("evaluate", str(out), "--clip-model", "tiny", "--device", "cpu", "--quiet")
    (metrics,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert 0 < metrics["reconstruction_psnr"] <= 100 and -1 <= metrics["reconstruction_ssim"] <= 1
    # Filter gates on them as on any registry metric.
    cli("filter", str(out), "--min-clip", "0", "--min-directional", "-1",
        "--min-image-similarity", "-1", "--gate", "reconstruction_psnr>=0")
    dest = tmp_path / "dataset"
    cli("export", str(out), "--to", "coco-cf", "-o", str(dest))
    (row,) = [json.loads(x) for x in (dest / "examples.jsonl").read_text().splitlines()]
    assert row["caption_0"] == "a cat sitting on a car"
    # the photo travels with the export, as generate kept it (test_export_photo.py: every format)
    assert (dest / f"{row['id']}_photo.png").read_bytes() == (out / line["photo"]).read_bytes()
    cli("report", str(out), "--quiet")
    assert (out / "report.html").is_file()
