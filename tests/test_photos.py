"""Specs with a photo (`image "..."`): parsed, formatted, resolved beside the spec or under
`--images DIR`, and written into each pair of pairs.jsonl with the file's SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.compile.stage import compile_paths
from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lang.parser import parse
from cfspec.workspace.pairs import PAIRS_FILE, read_pairs, schema_errors
from cfspec.workspace.photos import FORMATS, image_format, resolve
from tests.photo_files import HEADS, png_bytes, write_photo

runner = CliRunner()

SPEC = """scm cake {{
  id "158956_0"
  {image}
  prompt "A {{{{ W }}}} cuts a {{{{ C }}}}."
  var W = "woman"
  var C = "cake"
  W -> C "who cuts decides which cake"
  counterfactual man {{ do(W = "man") }}
  counterfactual boy {{ do(W = "boy") }}
}}
"""


def spec_text(image: str | None) -> str:
    return SPEC.format(image=f'image "{image}"' if image else "")


def test_the_statement_parses_into_the_spec() -> None:
    source = SourceFile("t.scm", spec_text("000000158956.jpg"))
    module = parse(source, DiagnosticBag(source))
    assert module is not None
    spec = module.specs[0]
    assert spec.image == "000000158956.jpg"
    (decl,) = spec.images
    # The string's span is where lint's diagnostics point: line 3, after `image `.
    assert (decl.value.span.line, decl.value.span.column) == (3, 9)


def test_a_spec_without_one_has_none() -> None:
    source = SourceFile("t.scm", spec_text(None))
    module = parse(source, DiagnosticBag(source))
    assert module is not None and module.specs[0].image is None


def test_compile_writes_the_photo_into_every_pair(tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "photos" / "000000158956.png")
    spec = tmp_path / "cake.scm"
    spec.write_text(spec_text("photos/000000158956.png"), encoding="utf-8")
    result = compile_paths([str(spec)], Config(), tmp_path / "out")
    assert result.diagnostics == []
    expected = {"path": str(photo.resolve()),
                "sha256": hashlib.sha256(photo.read_bytes()).hexdigest()}
    assert [p["image"] for p in result.pairs] == [expected, expected]
    pairs, problems = read_pairs(tmp_path / "out" / PAIRS_FILE)
    assert problems == []
    assert [p.image and p.image.to_json() for p in pairs] == [expected, expected]
    # The typed record writes back what compile wrote, key for key and in order.
    assert [json.dumps(p.to_json()) for p in pairs] == [json.dumps(p) for p in result.pairs]


def test_without_a_photo_the_key_is_absent(tmp_path: Path) -> None:
    spec = tmp_path / "cake.scm"
    spec.write_text(spec_text(None), encoding="utf-8")
    result = compile_paths([str(spec)], Config(), tmp_path / "out")
    assert result.pairs and all("image" not in p for p in result.pairs)
    pairs, _ = read_pairs(tmp_path / "out" / PAIRS_FILE)
    assert all(p.image is None for p in pairs)


def test_images_dir_replaces_the_spec_folder(tmp_path: Path) -> None:
    """`--images DIR`: a relative path is looked for under DIR, not beside the spec; a file of
    the same name beside the spec is not the one recorded."""
    beside = write_photo(tmp_path / "specs" / "000000158956.jpg", "JPEG")
    under = write_photo(tmp_path / "coco" / "000000158956.jpg")  # another file: a PNG
    spec = tmp_path / "specs" / "cake.scm"
    spec.write_text(spec_text("000000158956.jpg"), encoding="utf-8")
    code = runner.invoke(app, ["compile", str(spec), "-o", str(tmp_path / "out"),
                               "--images", str(tmp_path / "coco")]).exit_code
    assert code == 0
    lines = (tmp_path / "out" / PAIRS_FILE).read_text(encoding="utf-8").splitlines()
    recorded = {json.loads(line)["image"]["path"] for line in lines}
    assert recorded == {str(under.resolve())} and str(beside.resolve()) not in recorded


def test_an_absolute_path_ignores_both_folders(tmp_path: Path) -> None:
    photo = tmp_path / "elsewhere" / "p.png"
    assert resolve(str(photo), str(tmp_path / "specs" / "s.scm"), tmp_path / "coco") == photo
    assert resolve("p.png", "<stdin>") == Path.cwd().resolve() / "p.png"


@pytest.mark.parametrize("command", ["lint", "compile"])
def test_a_missing_images_folder_is_a_usage_error(tmp_path: Path, command: str) -> None:
    spec = tmp_path / "cake.scm"
    spec.write_text(spec_text(None), encoding="utf-8")
    args = [command, str(spec), "--images", str(tmp_path / "nowhere")]
    if command == "compile":
        args += ["-o", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--images" in result.output and "no such folder" in result.output


def test_the_schema_wants_a_hex_digest_and_an_absolute_record(tmp_path: Path) -> None:
    spec = tmp_path / "cake.scm"
    write_photo(tmp_path / "p.png")
    spec.write_text(spec_text("p.png"), encoding="utf-8")
    pair = compile_paths([str(spec)], Config(), tmp_path / "out").pairs[0]
    assert schema_errors(pair) == []
    broken = {**pair, "image": {"path": pair["image"]["path"], "sha256": "not hex"}}
    assert any(e.startswith("image.sha256") for e in schema_errors(broken))
    assert schema_errors({**pair, "image": {"path": "p.png"}})


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_each_signature_is_recognised(kind: str) -> None:
    assert image_format(HEADS[kind]) == kind


def test_a_png_and_non_images() -> None:
    assert image_format(png_bytes()) == "PNG"
    assert set(FORMATS) >= {"PNG", "JPEG", "WebP", "GIF", "BMP", "TIFF"}
    for head in (b"", b"scm s {", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"\x89PNG"):
        assert image_format(head) is None, head


def test_the_png_helper_is_a_real_png() -> None:
    """The tests' PNG decodes (Pillow is a dependency of the GPU extra, present in the dev
    environment); skipped where it is not installed."""
    image_module = pytest.importorskip("PIL.Image")
    import io

    with image_module.open(io.BytesIO(png_bytes(3, 2, (1, 2, 3)))) as image:
        assert image.size == (3, 2) and image.getpixel((2, 1)) == (1, 2, 3)


def test_stdin_spec_resolves_under_the_working_folder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_photo(tmp_path / "p.png")
    result = runner.invoke(app, ["compile", "-", "-o", "out"], input=spec_text("p.png"))
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "out" / PAIRS_FILE).read_text(encoding="utf-8").split("\n")[0])
    assert first["image"]["path"] == os.fspath((tmp_path / "p.png").resolve())
