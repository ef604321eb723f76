"""generate --inversion: pairs whose spec names a photo start from its inversion, the photo is
kept beside the reconstruction, each photo is inverted once and kept in OUT/inversions/, and a
run killed in the middle of the inversions resumes from the finished ones."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from killpoints import events, run_cfspec  # noqa: E402
from PIL import Image  # noqa: E402

from cfspec.compile.stage import compile_paths  # noqa: E402
from cfspec.lang.config import Config  # noqa: E402

SPEC = """scm {name} {{
  id "{name}"
  image "{photo}"
  prompt "a {{{{ A }}}} sitting on a {{{{ B }}}}"
  var A = "cat"
  var B = "car"
  A -> B "what sits picks the seat"
  counterfactual dog {{ do(A = "dog") }}
  counterfactual bird {{ do(A = "bird") }}
}}
"""
PLAIN = """scm plain {
  id "plain"
  prompt "a {{ A }} on a {{ B }}"
  var A = "cake"
  var B = "table"
  A -> B "the food picks the table"
  counterfactual pizza { do(A = "pizza") }
}
"""
ARGS = ["--model", "tiny", "--steps", "2", "--height", "32", "--width", "32", "--quiet"]


def made_up_photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def compiled(root: Path, photos: int = 1) -> Path:
    specs = []
    for n in range(photos):
        made_up_photo(root / "photos" / f"p{n}.png", n)
        spec = root / f"s{n}.scm"
        spec.write_text(SPEC.format(name=f"s{n}", photo=f"photos/p{n}.png"), encoding="utf-8")
        specs.append(str(spec))
    plain = root / "plain.scm"
    plain.write_text(PLAIN, encoding="utf-8")
    result = compile_paths([*specs, str(plain)], Config(), root / "out")
    assert [d for d in result.diagnostics if d.severity.value == "error"] == []
    return root / "out"


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_pairs_with_a_photo_start_from_its_inversion(tmp_path: Path) -> None:
    from cfspec.gpu.generate import generate
    from cfspec.gpu.generate.inversion import load_photo

    out = compiled(tmp_path)
    result = generate(out, model="tiny", steps=2, height=32, width=32, quiet=True,
                      inversion="null-text")
    assert result.ok and result.generated == 3
    lines = {line["id"]: line for line in manifest(out)}
    # One photo, one factual prompt: one inversion, shared by both counterfactuals.
    files = sorted((out / "inversions").iterdir())
    assert len(files) == 1
    for pair_id in ("s0__dog", "s0__bird"):
        line = lines[pair_id]
        assert line["inversion"]["method"] == "null-text"
        assert line["photo"] == f"images/{pair_id}/photo.png"
        kept = np.array(Image.open(out / line["photo"]))
        assert np.array_equal(kept, load_photo(tmp_path / "photos" / "p0.png", 32, 32))
    factual = [np.array(Image.open(out / lines[p]["image_0"])) for p in ("s0__dog", "s0__bird")]
    assert np.array_equal(factual[0], factual[1])
    # The pair without a photo is generated as before: no photo, no inversion on its line.
    assert "photo" not in lines["plain__pizza"] and "inversion" not in lines["plain__pizza"]
    assert not (out / "images" / "plain__pizza" / "photo.png").exists()


def test_the_inversion_decides_the_factual_image(tmp_path: Path) -> None:
    """null-text and DDIM inversion start from the same x_T but guide with other contexts:
    other reconstructions; a pair without a photo is the same either way."""
    from cfspec.gpu.generate import generate

    images = {}
    for method in ("null-text", "ddim"):
        out = compiled(tmp_path / method)
        assert generate(out, model="tiny", steps=2, height=32, width=32, quiet=True,
                        inversion=method).ok
        images[method] = {p: (out / "images" / p / "0_0.png").read_bytes()
                          for p in ("s0__dog", "plain__pizza")}
        with np.load(next((out / "inversions").iterdir())) as data:
            images[method]["start"] = data["latents"].tobytes()
    assert images["null-text"]["s0__dog"] != images["ddim"]["s0__dog"]
    assert images["null-text"]["start"] == images["ddim"]["start"]
    assert images["null-text"]["plain__pizza"] == images["ddim"]["plain__pizza"]


def test_an_unknown_inversion_is_refused_before_anything_loads(tmp_path: Path) -> None:
    from cfspec.gpu.generate.stage import GenerateError, generate

    with pytest.raises(GenerateError, match="--inversion 'null'.*null-text, negative-prompt"):
        generate(tmp_path, model="tiny", inversion="null")


def test_a_photo_changed_since_compile_fails_its_pairs_with_a_way_out(tmp_path: Path) -> None:
    from cfspec.gpu.generate import generate

    out = compiled(tmp_path)
    made_up_photo(tmp_path / "photos" / "p0.png", 7)  # other bytes
    result = generate(out, model="tiny", steps=2, height=32, width=32, quiet=True)
    assert {f.id for f in result.failed} == {"s0__dog", "s0__bird"}
    assert all("re-run cfspec compile" in f.error for f in result.failed)
    assert result.generated == 1  # the pair without a photo


def test_killed_in_the_middle_of_the_inversions_resumes_from_the_finished_ones(
        tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    out = compiled(clean, photos=2)
    args = ["generate", "out", *ARGS]
    done = run_cfspec(clean, args)
    assert done.returncode == 0, done.stderr
    saved = [i for i, (name, path) in enumerate(events(clean), 1)
             if name == "replace" and path.startswith("out/inversions/")]
    assert len(saved) == 2  # one file per photo (batch of one photo each)
    killed = tmp_path / "killed"
    killed.mkdir()
    compiled(killed, photos=2)
    # Killed just before the second photo's inversion lands: the first one's file is there.
    run = run_cfspec(killed, args, kill_at=saved[1])
    assert run.returncode != 0
    kept = sorted((killed / "out" / "inversions").glob("*.npz"))
    assert len(kept) == 1
    before = kept[0].stat().st_mtime_ns
    again = run_cfspec(killed, args)
    assert again.returncode == 0, again.stderr
    assert kept[0].stat().st_mtime_ns == before  # reused, not inverted again
    assert not [n for n, p in events(killed) if p == str(kept[0].relative_to(killed))]
    for folder in sorted((out / "images").iterdir()):
        for png in sorted(folder.glob("*.png")):
            assert (killed / png.relative_to(clean)).read_bytes() == png.read_bytes(), png
