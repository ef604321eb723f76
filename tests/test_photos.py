"""Specs with a photo (`image "..."`): parsed, formatted, resolved beside the spec or under
`--images DIR`, and written into each pair of pairs.jsonl with the file's SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from photo_files import HEADS, png_bytes, write_photo
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.compile.stage import compile_paths
from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lang.parser import parse
from cfspec.workspace.pairs import PAIRS_FILE, read_pairs, schema_errors
from cfspec.workspace.photos import FORMATS, image_format, resolve

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


# --- lint: the file exists and is an image -------------------------------------------------------


def lint_json(*args: str) -> tuple[int, list[dict[str, object]]]:
    result = runner.invoke(app, ["lint", *args, "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_a_missing_photo_is_reported_on_its_string(tmp_path: Path) -> None:
    spec = tmp_path / "cake.scm"
    spec.write_text(spec_text("000000158956.jpg"), encoding="utf-8")
    code, found = lint_json(str(spec))
    assert code == 1
    (d,) = found
    assert (d["name"], d["line"], d["column"], d["end_column"]) == \
        ("image-not-found", 3, 9, 9 + len('"000000158956.jpg"'))
    assert str(tmp_path.resolve() / "000000158956.jpg") in str(d["message"])
    assert "--images" in str(d["help"]) and "remove the `image` line" in str(d["help"])


def test_images_dir_decides_where_lint_looks(tmp_path: Path) -> None:
    spec = tmp_path / "specs" / "cake.scm"
    spec.parent.mkdir()
    spec.write_text(spec_text("000000158956.jpg"), encoding="utf-8")
    write_photo(tmp_path / "coco" / "000000158956.jpg", "JPEG")
    assert lint_json(str(spec), "--images", str(tmp_path / "coco")) == (0, [])
    empty = tmp_path / "empty"
    empty.mkdir()
    code, found = lint_json(str(spec), "--images", str(empty))
    assert code == 1 and [d["name"] for d in found] == ["image-not-found"]
    assert str(empty.resolve() / "000000158956.jpg") in str(found[0]["message"])


@pytest.mark.parametrize("kind", ["PNG", *sorted(HEADS)])
def test_every_image_kind_passes(tmp_path: Path, kind: str) -> None:
    write_photo(tmp_path / "photo.bin", kind)  # the name's suffix says nothing
    spec = tmp_path / "cake.scm"
    spec.write_text(spec_text("photo.bin"), encoding="utf-8")
    assert lint_json(str(spec)) == (0, [])


@pytest.mark.parametrize("content", [b"", b"a woman is cutting a cake\n", b"<html>404</html>",
                                     b"RIFF\x00\x00\x00\x00WAVEfmt "])
def test_a_file_that_is_no_image(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "photo.jpg").write_bytes(content)
    spec = tmp_path / "cake.scm"
    spec.write_text(spec_text("photo.jpg"), encoding="utf-8")
    code, found = lint_json(str(spec))
    assert code == 1 and [(d["name"], d["column"]) for d in found] == [("not-an-image", 9)]


def test_compile_writes_nothing_for_a_missing_photo(tmp_path: Path) -> None:
    spec = tmp_path / "cake.scm"
    spec.write_text(spec_text("gone.jpg"), encoding="utf-8")
    result = compile_paths([str(spec)], Config(), tmp_path / "out")
    assert [d.code.name for d in result.diagnostics] == ["image-not-found"]
    assert result.written is None and result.pairs == []


def test_the_fast_lint_path_takes_images() -> None:
    from cfspec.cli.fast import parse_lint

    assert parse_lint(["a.scm", "--images", "coco"]) == {"paths": ["a.scm"], "images": "coco"}
    assert parse_lint(["a.scm", "--images=coco"]) == {"paths": ["a.scm"], "images": "coco"}


@pytest.mark.parametrize("written", ["a\\u0000b.png", "x" * 300 + ".png", "loop/p.png"])
def test_paths_that_cannot_be_opened_are_diagnostics(tmp_path: Path, written: str) -> None:
    """A NUL character, a name longer than the file system allows, a symbolic link loop: each
    is an `image-not-found` on the string, never a traceback."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    spec = tmp_path / "cake.scm"
    spec.write_text(spec_text(written), encoding="utf-8")
    code, found = lint_json(str(spec))
    assert code == 1 and [(d["name"], d["line"]) for d in found] == [("image-not-found", 3)]


# --- import: rows carry their photos -------------------------------------------------------------

REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real"


def import_rows(tmp_path: Path, name: str, text: str, *more: str) -> tuple[int, dict[str, str]]:
    """`cfspec import` of one input; the exit status and each written .scm by file name."""
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "specs"
    result = runner.invoke(app, ["import", str(source), "-o", str(out), "--quiet", *more])
    return result.exit_code, {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.scm")}


def image_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "image " in line]


COCO_CF = "".join(json.dumps({"coco-counterfactual-index": i, "original_caption": c0,
                              "counterfactual_caption": c1}) + "\n" for i, c0, c1 in [
    ("158956_0", "A woman cuts a cake with a knife.", "A woman cuts a cake with a fork."),
    ("291791_2", "A dog sleeps on a red couch.", "A cat sleeps on a red couch."),
    ("7_1", "A man rides a horse.", "A man rides a camel."),
])


def test_a_folder_of_coco_photos_is_matched_by_id(tmp_path: Path) -> None:
    """Whatever the folder's naming (2017, 2014, a bare id): each COCO-CF row finds the photo
    of its COCO image id, and is written with it; a row whose photo is not there keeps the
    2017 name in a comment, and its spec has no error."""
    coco = tmp_path / "coco"
    p2017 = write_photo(coco / "000000158956.jpg", "JPEG")
    p2014 = write_photo(coco / "val" / "COCO_val2014_000000291791.jpg")
    write_photo(coco / "000000158957.jpg", "JPEG")  # a neighbour's id: never matched
    code, specs = import_rows(tmp_path, "cf.jsonl", COCO_CF, "--images", str(coco))
    assert code == 0
    assert image_lines(specs["158956_0.scm"]) == [f'image "{p2017.resolve()}"']
    assert image_lines(specs["291791_2.scm"]) == [f'image "{p2014.resolve()}"']
    assert image_lines(specs["7_1.scm"]) == [
        f'# image "000000000007.jpg": COCO 2017\'s name for image 7, not found in '
        f'{coco.resolve()}']
    # The written specs compile with the photos they name.
    out = tmp_path / "out"
    assert runner.invoke(app, ["compile", str(tmp_path / "specs"), "-o", str(out)]).exit_code == 0
    photos = {p.spec_name: p.image for p in read_pairs(out / PAIRS_FILE)[0]}
    assert photos["pair_158956_0"] is not None
    assert photos["pair_158956_0"].path == str(p2017.resolve())
    assert photos["pair_7_1"] is None


def test_without_images_coco_cf_names_the_photo_in_a_comment(tmp_path: Path) -> None:
    code, specs = import_rows(tmp_path, "cf.jsonl", COCO_CF)
    assert code == 0
    assert image_lines(specs["158956_0.scm"]) == [
        "# image \"000000158956.jpg\": COCO 2017's name for image 158956; import with --images "
        "DIR to use the photo"]


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is not here")
def test_sugarcrepe_rows_carry_their_filename(tmp_path: Path) -> None:
    """SugarCrepe names each row's COCO file: without --images it is said in a comment, with
    a folder holding it the spec names the photo; rows of photos not there keep the comment."""
    text = (REAL / "sugarcrepe_1-100" / "replace_obj.json").read_text(encoding="utf-8")
    rows = json.loads(text)
    code, specs = import_rows(tmp_path, "replace_obj.json", text)
    first = rows["0"]["filename"]
    written = [s for s in specs.values() if f'"{first}"' in s]
    assert written and image_lines(written[0]) == [
        f'# image "{first}": the dataset\'s file name; import with --images DIR to use the photo']
    assert sum(1 for s in specs.values() if "# image \"0000" in s) == len(rows)

    coco = tmp_path / "coco"
    photo = write_photo(coco / first, "JPEG")
    code, specs = import_rows(tmp_path, "replace_obj.json", text, "--images", str(coco))
    named = [s for s in specs.values() if f'image "{photo.resolve()}"' in s]
    assert len(named) == sum(1 for r in rows.values() if r["filename"] == first) >= 1
    assert sum(1 for s in specs.values() if "not found in" in s) == len(rows) - len(named)


def test_import_refuses_a_missing_images_folder(tmp_path: Path) -> None:
    source = tmp_path / "cf.jsonl"
    source.write_text(COCO_CF, encoding="utf-8")
    result = runner.invoke(app, ["import", str(source), "-o", str(tmp_path / "o"),
                                 "--images", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no such folder" in result.output


@pytest.mark.parametrize(("raw_id", "file_name", "expected"), [
    ("158956_0", None, 158956),
    ("158956", None, None),  # a bare number is no COCO-CF id
    ("0", "000000289393.jpg", 289393),
    (None, "COCO_train2014_000000000009.jpg", 9),
    ("a_1", None, None),
])
def test_coco_image_ids(raw_id: str | None, file_name: str | None, expected: int | None) -> None:
    from cfspec.importers.photos import coco_image_id

    assert coco_image_id(raw_id, file_name) == expected


# --- plan: the inversions' extra UNet work -------------------------------------------------------


def compiled_out(tmp_path: Path, photos: list[str | None]) -> Path:
    """OUT with the pairs of one spec per entry (two counterfactuals each), each naming that
    photo (made here) or none."""
    specs = tmp_path / "specs"
    specs.mkdir()
    for n, photo in enumerate(photos):
        if photo is not None:  # the kinds differ: each photo its own bytes
            write_photo(specs / photo, "PNG" if n % 2 == 0 else "JPEG")
        text = spec_text(photo).replace("cake {", f"cake{n} {{").replace(
            'id "158956_0"', f'id "s{n}"')
        (specs / f"s{n}.scm").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    assert runner.invoke(app, ["compile", str(specs), "-o", str(out)]).exit_code == 0
    return out


def test_rows_per_photo_by_method() -> None:
    from cfspec.stages.inversion_cost import INNER_STEPS, rows_per_photo

    # DDIM inversion: one conditional row a step; null-text adds per step a conditional row,
    # the inner optimisation's unconditional rows and the step's own unconditional row.
    assert rows_per_photo("ddim", 50) == rows_per_photo("negative-prompt", 50) == 50
    assert rows_per_photo("null-text", 50) == 50 + 50 * (1 + INNER_STEPS + 1) == 650
    assert rows_per_photo("null-text", 4, inner_steps=3) == 4 * (1 + 3 + 2)
    with pytest.raises(ValueError, match="null-text"):
        rows_per_photo("null", 50)


def test_plan_counts_one_inversion_per_photo(tmp_path: Path) -> None:
    """Two photos, two counterfactuals each, three seeds: two inversions (a photo is inverted
    once for its factual prompt, whatever the seed or the counterfactual: the same bytes under
    two names are one), batched as generate batches them; the estimate counts them."""
    from cfspec.stages.options import GenerateOptions
    from cfspec.stages.plan import describe, make_plan

    out = compiled_out(tmp_path, ["a.png", "b.png", None])
    plan, problems = make_plan(out, GenerateOptions(steps=10, seeds=3, batch_pairs=2), its=2.0)
    per_photo = 10 * (1 + 10 + 2)
    assert problems == [] and plan.inversion == "null-text"
    assert (plan.photos, plan.inversion_calls, plan.inversion_rows) == \
        (2, per_photo, 2 * per_photo)
    assert plan.hours == pytest.approx((plan.unet_calls + per_photo) / 2.0 / 3600, rel=1e-12)
    assert "inversion (null-text): 2 photo(s)" in describe(plan)
    one_by_one, _ = make_plan(out, GenerateOptions(steps=10, seeds=3, batch_pairs=1))
    assert (one_by_one.inversion_calls, one_by_one.inversion_rows) == (2 * per_photo,
                                                                       2 * per_photo)


def test_plan_without_photos_counts_no_inversion(tmp_path: Path) -> None:
    from cfspec.stages.options import GenerateOptions
    from cfspec.stages.plan import describe, make_plan

    plan, _ = make_plan(compiled_out(tmp_path, [None]), GenerateOptions(steps=10))
    assert (plan.photos, plan.inversion_calls, plan.inversion_rows) == (0, 0, 0)
    assert "inversion" not in describe(plan)


def test_run_hands_images_to_compile(tmp_path: Path) -> None:
    import inspect

    from cfspec.cli.app import compile_command
    from cfspec.pipeline import RunOptions, arguments

    takes = inspect.signature(compile_command).parameters
    args, kwargs = arguments("compile", RunOptions(("specs",), tmp_path, {}, images="coco"),
                             takes)
    assert kwargs["images"] == "coco"
    inspect.signature(compile_command).bind(*args, **kwargs)  # every argument is compile's
