"""Caption pairs in every common shape (issue 23): JSON lists, JSON Lines and objects keyed by
id (SugarCrepe), CSV, TSV and Parquet, with the columns of known datasets (COCO-CF, SugarCrepe,
Winoground, ARO) or those `--columns` names. Every problem is a diagnostic at its place in the
file, with a way out; never a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic
from cfspec.diagnostics.source import SourceFile
from cfspec.importers import ImportedItem, ImportOptions, detect, import_file, import_source
from cfspec.importers.answer import Columns
from cfspec.lang.config import Config
from cfspec.lint import check

ROOT = Path(__file__).resolve().parent.parent
SUGARCREPE = ROOT.parent / "shared" / "data" / "real" / "sugarcrepe_1-100"
needs_real = pytest.mark.skipif(not SUGARCREPE.is_dir(), reason="../shared/data/real is absent")


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["import", *args])


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _columns(text: str) -> ImportOptions:
    return ImportOptions(columns=Columns.parse(text))


def _errors(item: ImportedItem) -> list[Diagnostic]:
    return [d for d in item.diagnostics if d.level is Severity.ERROR]


def _at(d: Diagnostic) -> tuple[int, int]:
    return d.span.line, d.span.column


def _checked_position(d: Diagnostic) -> None:
    span = d.span
    assert 0 <= span.start <= span.end <= len(d.source.text)
    assert d.source.position(span.start) == (span.line, span.column)


# --- known datasets, no options -------------------------------------------------------------


@needs_real
def test_sugarcrepe_imports_without_a_converter_and_keeps_its_keys(tmp_path: Path) -> None:
    path = SUGARCREPE / "swap_att.json"
    keys = list(json.loads(path.read_text(encoding="utf-8")))
    result = _run(str(path), "-o", str(tmp_path / "out"), "--format", "json")
    assert result.exit_code in (0, 1), result.output
    written = sorted(p.stem for p in (tmp_path / "out").glob("*.scm"))
    # The key is each row's id (`filename`, its image, is not); a bare number names nothing
    # across files, so the file's stem goes in front of it, as for any numeric id.
    assert written == sorted(f"swap_att_{k}" for k in keys)
    items = import_file(path)
    assert [i.item_id for i in items] == [f"swap_att_{k}" for k in keys]
    assert all(i.scm is not None and "syntax-error" not in i.errors for i in items)
    first = json.loads(path.read_text(encoding="utf-8"))[keys[0]]
    assert first["caption"].strip() in items[0].scm or "{{" in items[0].scm  # type: ignore[operator]


@needs_real
@pytest.mark.parametrize("name", ["add_att", "add_obj", "replace_att", "replace_obj",
                                  "replace_rel", "swap_att", "swap_obj"])
def test_every_sugarcrepe_file_reads_as_pairs(name: str) -> None:
    path = SUGARCREPE / f"{name}.json"
    assert detect(path.read_text(encoding="utf-8")) == "coco-cf"
    items = import_file(path)
    assert len(items) == 100
    for item in items:
        assert item.scm is not None and item.counterfactual is not None, item.diagnostics
        relinted = check(SourceFile(f"{item.item_id}.scm", item.scm), Config())
        assert relinted.module is not None


def test_winoground_rows(tmp_path: Path) -> None:
    rows = [{"id": 0, "caption_0": "an old person kisses a young person",
             "caption_1": "a young person kisses an old person", "image_0": "ex_0_img_0",
             "image_1": "ex_0_img_1", "tag": "Noun", "secondary_tag": "", "num_main_preds": 1,
             "collapsed_tag": "Object"},
            {"id": 1, "caption_0": "the dog is on the left", "caption_1": "the cat is on the left",
             "image_0": "ex_1_img_0", "image_1": "ex_1_img_1", "tag": "Noun",
             "secondary_tag": "", "num_main_preds": 1, "collapsed_tag": "Object"}]
    path = _write(tmp_path, "winoground.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    items = import_file(path)
    assert [i.item_id for i in items] == ["winoground_0", "winoground_1"]
    assert items[1].interventions == {"Dog": "cat"}
    assert all(i.scm is not None for i in items)


def test_aro_rows(tmp_path: Path) -> None:
    rows = [{"image_id": "2315375", "relation_name": "sitting on",
             "true_caption": "the man is sitting on the bench",
             "false_caption": "the bench is sitting on the man", "image_path": "x.jpg"},
            {"image_id": "2315376", "relation_name": "wearing",
             "true_caption": "the woman is wearing a red hat",
             "false_caption": "the woman is wearing a blue hat", "image_path": "y.jpg"}]
    path = _write(tmp_path, "vg_relation.json", json.dumps(rows))
    items = import_file(path)
    assert [i.item_id for i in items] == ["vg_relation_2315375", "vg_relation_2315376"]
    assert items[1].interventions == {"Red": "blue"}
    assert items[1].verdict == "clean"


def test_a_keyed_object_s_key_is_the_id_even_when_rows_have_one(tmp_path: Path) -> None:
    rows = {"cat-1": {"id": "other", "caption": "A dog runs.", "negative_caption": "A cat runs."},
            "cat-2": {"id": "else", "caption": "A red car.", "negative_caption": "A blue car."}}
    items = import_file(_write(tmp_path, "keyed.json", json.dumps(rows, indent=1)))
    assert [i.item_id for i in items] == ["cat-1", "cat-2"]
    # Each item starts at its own row, on its key's line.
    assert [i.span.line for i in items] == [2, 7]


# --- tables -----------------------------------------------------------------------------------

CSV = (
    "pair_id,before,after\n"
    "r1,A dog runs on the grass.,A cat runs on the grass.\n"
    '"r2","A red car, parked.","A blue car, parked."\n'
    'r3,"The ""big"" red dog and a cat.","The ""big"" blue dog and a fox."\n'
    'r4,"A long\ncaption.",A short caption.\n'
    "r5,A man sits.,A woman sits.\n"
)


def test_csv_with_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "pairs.csv", CSV)
    items = import_file(path, options=_columns("pair_id,before,after"))
    assert [i.item_id for i in items] == ["r1", "r2", "r3", "r4", "r5"]
    assert items[0].interventions == {"Dog": "cat"}
    assert items[1].interventions == {"Red": "blue"}  # the comma inside quotes is text
    assert 'prompt "A {{ Red }} car, parked."' in items[1].scm  # type: ignore[operator]
    # A quoted cell over two lines: the rows after it keep their own line numbers.
    assert [i.span.line for i in items] == [2, 3, 4, 5, 7]
    # Doubled quotes are one quote in the caption, and positions still point at the file.
    too_many = next(d for d in items[2].diagnostics if d.code.name == "too-many-interventions")
    text = too_many.source.text
    shown = [text[s.start:s.end] for s in (too_many.span, *(lb.span for lb in too_many.labels))]
    assert set(shown) <= {"blue", "red", "cat", "fox"} and "blue" in shown
    for item in items:
        for d in item.diagnostics:
            _checked_position(d)


def test_tsv_with_two_columns_names_rows_by_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "pairs.tsv", "x\tone\ttwo\n7\tA dog runs.\tA cat runs.\n"
                  "8\tA red car.\tA blue car.\n")
    result = _run(str(path), "-o", str(tmp_path / "out"), "--columns", "one,two")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["pairs_line2.scm", "pairs_line3.scm"]
    # With an id column named, the id comes from it.
    items = import_file(path, options=_columns("x,one,two"))
    assert [i.item_id for i in items] == ["pairs_7", "pairs_8"]


def test_crlf_csv_and_a_byte_order_mark(tmp_path: Path) -> None:
    text = ("\ufeffid,caption_0,caption_1\r\na,A dog runs.,A cat runs.\r\n"
            "b,A red car.,A blue car.\r\n")
    items = import_file(_write(tmp_path, "w.csv", text))
    assert [i.item_id for i in items] == ["a", "b"]
    assert [i.interventions for i in items] == [{"Dog": "cat"}, {"Red": "blue"}]


def test_several_counterfactual_columns_make_a_caption_set(tmp_path: Path) -> None:
    path = _write(tmp_path, "sets.csv", "id,c,n1,n2\ns1,A red car.,A blue car.,A green car.\n")
    (item,) = import_file(path, options=_columns("id,c,n1,n2"))
    assert item.item_id == "s1"
    assert sorted(v for w in item.written.values() for v in w.values()) == ["blue", "green"]


def test_a_table_on_stdin_and_an_explicit_from(tmp_path: Path) -> None:
    assert detect("id,caption_0,caption_1\na,x,y\n") == "csv"
    assert detect("id\tcaption\tnegative_caption\na\tx\ty\n") == "tsv"
    assert detect("A woman cuts a cake -> nothing, really\n") == "llm-text"
    path = _write(tmp_path, "pairs.txt", "k;a;b\n")  # neither suffix nor header says CSV
    path.write_text("k,a,b\nz,A dog runs.,A cat runs.\n", encoding="utf-8")
    items = import_file(path, "csv", _columns("k,a,b"))
    assert [i.item_id for i in items] == ["z"]
    result = CliRunner().invoke(app, ["import", "-", "-o", str(tmp_path / "o"), "--columns",
                                      "k,a,b"], input="k,a,b\nz,A dog runs.,A cat runs.\n")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "z.scm").is_file()


def test_a_folder_holds_tables_too(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _write(folder, "a.csv", "id,caption_0,caption_1\na,A dog runs.,A cat runs.\n")
    _write(folder, "b.tsv", "id\tcaption_0\tcaption_1\nb\tA red car.\tA blue car.\n")
    result = _run(str(folder), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.scm", "b.scm"]


def _parquet(path: Path, **columns: list[Any]) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "pairs.parquet",
                    id=["a1", "a2", "a3"],
                    caption=["A dog runs.", "A red car.", None],
                    negative_caption=["A cat runs.", "A blue car.", "A car."],
                    image=[b"\x89PNG", b"\x89PNG", b"\x89PNG"],
                    score=[1.0, float("nan"), 2.0])
    items = import_file(path)
    assert [i.item_id for i in items] == ["a1", "a2", "a3"]
    assert [i.interventions for i in items[:2]] == [{"Dog": "cat"}, {"Red": "blue"}]
    (error,) = _errors(items[2])
    # Parquet has no text: a row is a line, so the line is the row number (1-based).
    assert error.span.line == 3 and error.file == str(path)
    assert error.message == "`caption` must be a string (the factual caption), found null"
    result = _run(str(path), "-o", str(tmp_path / "out"), "--format", "json")
    assert result.exit_code == 1
    assert [d["line"] for d in json.loads(result.stdout) if d["severity"] == "error"] == [3]


def test_parquet_without_pyarrow_says_how_to_get_it(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "pairs.parquet", "PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = _run(str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "pip install pyarrow" in lines[0], result.output
    assert "Traceback" not in result.output


def test_a_file_that_is_not_parquet_is_a_usage_error(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = _write(tmp_path, "broken.parquet", "this is not parquet")
    result = _run(str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2 and "not a Parquet file" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("given", ["one", "a,,b", ",", "a, "])
def test_bad_columns_option(tmp_path: Path, given: str) -> None:
    path = _write(tmp_path, "p.csv", "a,b\nx,y\n")
    result = _run(str(path), "-o", str(tmp_path / "out"), "--columns", given)
    assert result.exit_code == 2 and "--columns" in result.output


def test_columns_parse() -> None:
    assert Columns.parse("f,c") == Columns(None, "f", ("c",))
    assert Columns.parse(",f,c") == Columns(None, "f", ("c",))
    assert Columns.parse(" id , f , c ") == Columns("id", "f", ("c",))
    assert Columns.parse("id,f,c1,c2") == Columns("id", "f", ("c1", "c2"))


# --- every bad input: a diagnostic at its place, with a way out -------------------------------

# (file name, text, --columns, the error's line and column, the text it points at (None: the
# point is enough), words of its message)
BAD: list[tuple[str, str, str | None, tuple[int, int], str | None, str]] = [
    ("missing_column.csv", "id,before,after\na,x y,x z\n", "id,before,later", (1, 1),
     "id,before,after", "no column `later`"),
    ("unknown_columns.csv", "id,one,two\na,x y,x z\n", None, (1, 1), "id,one,two",
     "no caption column"),
    ("short_row.csv", "id,caption_0,caption_1\na,A dog.,A cat.\nb,only this\n", None, (3, 1),
     "b,only this", "2 cells; the header has 3"),
    ("unclosed.csv", 'id,caption_0,caption_1\na,"A dog.,A cat.\n', None, (2, 3), '"',
     "not closed"),
    ("after_quote.csv", 'id,caption_0,caption_1\na,"A dog."x,A cat.\n', None, (2, 11), "x",
     "after the closing quote"),
    ("empty_cell.csv", "id,caption_0,caption_1\na,A dog runs.,  \n", None, (2, 15), "  ",
     "caption `caption_1` is empty"),
    ("empty.json", '[{"id": "a", "caption_0": "A dog runs.", "caption_1": ""}]', None, (1, 56),
     "", "caption `caption_1` is empty"),
    ("not_a_row.json", '[{"id": "a", "caption_0": "x y", "caption_1": "x z"},\n'
     ' ["A dog runs.", "A cat runs."]]', None, (2, 2), '["A dog runs.", "A cat runs."]',
     "expected a caption pair, found a list"),
    ("missing.jsonl", '{"caption": "A dog.", "negative_caption": "A cat."}\n'
     '{"id": "b", "caption": "A cat."}\n', None, (2, 1), "{", "no counterfactual caption"),
    ("missing_named.jsonl", '{"k": "a", "f": "A dog.", "c": "A cat."}\n{"k": "b", "f": "x"}\n',
     "k,f,c", (2, 1), "{", "no column `c`"),
    ("number.json", '{"0": {"caption": 3, "negative_caption": "A cat."}}', None, (1, 19), "3",
     "must be a string"),
    ("truncated.json", '[{"id": "a", "caption_0": "A dog.", "caption_1": "A c', None, (1, 50),
     None, "unterminated string"),
]


@pytest.mark.parametrize("name, text, columns, at, points_at, words", BAD,
                         ids=[b[0] for b in BAD])
def test_bad_input_is_a_diagnostic_at_its_place(tmp_path: Path, name: str, text: str,
                                                columns: str | None, at: tuple[int, int],
                                                points_at: str | None, words: str) -> None:
    path = _write(tmp_path, name, text)
    options = _columns(columns) if columns else ImportOptions()
    errors = [d for item in import_file(path, options=options) for d in _errors(item)]
    assert errors, name
    first = errors[0]
    assert first.code.name == "syntax-error" and words in first.message, first.message
    assert _at(first) == at, (first.message, _at(first))
    if points_at is not None:
        assert first.source.text[first.span.start:first.span.end] == points_at
    assert first.help, "every problem says what to do about it"
    for d in errors:
        _checked_position(d)
    # The command line reports it, exits 1, and never shows a traceback.
    args = [str(path), "-o", str(tmp_path / "out")] + (["--columns", columns] if columns else [])
    result = _run(*args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{name}:{at[0]}:{at[1]}" in result.output


def test_one_bad_line_keeps_the_others(tmp_path: Path) -> None:
    text = ("id,caption_0,caption_1\na,A dog runs.,A cat runs.\nb,\"broken\"x,y\n"
            "c,A red car.,A blue car.\n")
    items = import_file(_write(tmp_path, "p.csv", text))
    assert [i.item_id for i in items if i.scm is not None] == ["a", "c"]
    assert [i.verdict for i in items] == ["clean", "syntax-error", "clean"]


def test_rows_in_a_keyed_object_that_are_not_rows(tmp_path: Path) -> None:
    """An object whose values are not all rows is one row itself (then it lacks captions)."""
    text = json.dumps({"0": {"caption": "A dog.", "negative_caption": "A cat."}, "note": "x"})
    (item,) = import_source(SourceFile("k.json", text))
    assert item.verdict == "syntax-error"
    assert "no factual caption" in _errors(item)[0].message
