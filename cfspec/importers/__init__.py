"""`cfspec import`: LLM answers and caption-pair datasets -> .scm specs, with every problem
reported at its place in the input.

Shapes (`detect` picks one for `--from auto`):

- `llm-json`: the reference study's JSON (`original_prompt`, `counterfactual_prompt`, `SCM`,
  `SCM_aug`), one object, a list or JSON Lines (`llm_json.py`);
- `llm-text`: free text with a `Variables:` list and edges (`llm_text.py`);
- `coco-cf`: caption pairs in JSON or JSON Lines, a row per pair, in the columns of
  COCO-Counterfactuals, SugarCrepe (one object keyed by id), Winoground or ARO, or those
  `--columns` names; and caption sets, one caption with `output_1` ... `output_N`
  (SocialCounterfactuals), each row one spec with a counterfactual per output, or one
  `counterfactuals` set when the outputs are every combination of the values (`sets.py`);
- `csv`, `tsv`, `parquet`: the same caption pairs in those files (read by `tables.py`; chosen
  by the file's suffix under `--from auto`, Parquet needs pyarrow).

Each reader turns its input into `Answer` records; `analysis.py` judges them (a pair by the
passes of `passes/`, composed in `pair.py`; a caption set by `sets.py`) and writes the .scm
text; `write_items` puts the files in the output folder and nowhere else.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from cfspec.diagnostics.records import Diagnostic, DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.gcpause import gc_paused
from cfspec.importers import tables
from cfspec.importers.analysis import analyze
from cfspec.importers.answer import (
    GRAPH_CHOICE,
    SHAPES,
    Answer,
    Failure,
    ImportedItem,
    ImportOptions,
)
from cfspec.workspace.atomic import write_text_atomic

__all__ = [
    "GRAPH_CHOICE",
    "SHAPES",
    "ImportOptions",
    "ImportedItem",
    "detect",
    "import_file",
    "import_source",
    "safe_id",
    "write_items",
]

_MAX_ID = 100
# Keys that say what a JSON input is. Caption pairs: COCO-Counterfactuals (`caption_0`, or
# `original_caption` and `counterfactual_caption` as published), SocialCounterfactuals
# (`caption` with `output_1` ...). LLM answers: the reference study's graph and prompt keys.
_COCO_KEY = re.compile(r'"(?:caption[-_]?[01]|(?:original|counterfactual|negative|true|false)'
                       r'[-_]caption|output[-_]?1)"\s*:', re.I)
_LLM_KEY = re.compile(r'"(?:scm|scm[-_]aug|original[-_]prompt|counterfactual[-_]prompt)"\s*:',
                      re.I)


def detect(text: str) -> str:
    """The shape of an input: JSON with caption keys and no graph or prompt keys is a
    caption-pair file, other JSON (or a ```json fence) an LLM's JSON answer, a header line
    naming a caption column a CSV or TSV table, anything else a free-text answer."""
    head = text[:20000]
    table = tables.sniff(head)
    if table is not None:
        return table
    stripped = head.lstrip()
    looks_json = stripped[:1] in ("{", "[") or re.search(r"^[ \t]*```[ \t]*json", head, re.M | re.I)
    if looks_json or _LLM_KEY.search(head):
        if _COCO_KEY.search(head) and not _LLM_KEY.search(head):
            return "coco-cf"
        return "llm-json"
    return "llm-text"


def safe_id(raw: str, fallback: str = "item") -> str:
    """A file name stem from an item id: `[A-Za-z0-9._-]` only, starting with a letter or a
    digit, never `.` or `..`, at most 100 characters. `../../x` becomes `x`."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", raw)
    name = re.sub(r"\.{2,}", ".", name)
    name = name.lstrip("._-")[:_MAX_ID].rstrip("._-")
    return name or fallback


def read_source(path: str, max_bytes: int | None = None) -> SourceFile | ImportedItem:
    """The input as text, or an item holding the reason it cannot be read as text (too large,
    not UTF-8: read as lint reads a .scm, `cfspec.lint.load`). OSError: the caller's usage
    error."""
    from cfspec.lint import load

    read = load(path, max_bytes)
    return _failed(read.source, read.diagnostics) if read.diagnostics else read.source


def item_id_for(raw_id: str | None, stem: str, line: int | None) -> tuple[str, str | None]:
    """An item's spec id, and a note when it is not the input's own id as written.

    The input's id is kept (`158956_0`), made path-safe when it must be. A bare number (`"id":
    1`) names nothing across files, so it is prefixed with the file's stem (`answers_1`).
    Without an id: the file's stem, and the item's line when the file holds several items."""
    fallback = f"{stem}_line{line}" if line is not None else stem
    if raw_id is None or not raw_id.strip():
        return fallback, None
    safe = safe_id(raw_id, "")
    if not safe:
        return fallback, f"the id {raw_id!r} has nothing path-safe in it: written as {fallback!r}"
    if safe.isdigit():
        return f"{stem}_{safe}", f"the id {raw_id!r} is a bare number: written as `{stem}_{safe}`"
    if safe != raw_id:
        return safe, f"the id {raw_id!r} is not path-safe: written as {safe!r}"
    return safe, None


def _too_large(name: str, size: int, limit: int, what: str = "the file") -> ImportedItem:
    """`file-too-large`, as lint reports it: nothing of the file is read."""
    from cfspec.lint import too_large

    return _failed(*too_large("<stdin>" if name == "-" else name, size, limit, what))


def _failed(source: SourceFile, diagnostics: Sequence[Diagnostic]) -> ImportedItem:
    stem = safe_id(Path(source.name).stem, "input")
    return ImportedItem(source, "unknown", stem, source.whole(), None, list(diagnostics))


def import_source(source: SourceFile, shape: str = "auto",
                  options: ImportOptions | None = None) -> list[ImportedItem]:
    """Import every item of one input text."""
    options = options or ImportOptions()
    stem = safe_id(Path(source.name).stem, "input")
    if not source.text.strip():
        bag = DiagnosticBag(source)
        bag.report("syntax-error", source.span(0, len(source.text)), "the file is empty",
                   label="nothing here", help="an answer, or one caption pair per line")
        return [_failed(source, bag.items)]
    if shape == "auto":
        shape = detect(source.text)
        if options.columns is not None and shape in ("llm-json", "llm-text"):
            # --columns names caption columns: the input is caption pairs
            shape = tables.sniff(source.text, options.columns) or "coco-cf"
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose auto or one of {', '.join(SHAPES)}")
    with gc_paused():
        records = _read(source, shape, options)
    if not records:
        bag = DiagnosticBag(source)
        first = len(source.text) - len(source.text.lstrip())
        bag.report("syntax-error", source.span(first, first + 1),
                   "the input holds no answers", label="empty",
                   help="an answer object, or one caption pair per line")
        return [_failed(source, bag.items)]
    many = sum(1 for r in records if r.number > 0) > 1
    items: list[ImportedItem] = []
    for record in records:
        item_id, note = item_id_for(record.raw_id, stem, record.span.line if many else None)
        if note and isinstance(record, Answer):
            record.notes.append(note)
        if isinstance(record, Failure):
            items.append(ImportedItem(source, shape, item_id, record.span, None,
                                      list(record.diagnostics)))
            continue
        record.item_id = item_id
        with gc_paused():  # per item: what one leaves behind is collected before the next
            items.append(analyze(record, options))
    return items


def _read(source: SourceFile, shape: str, options: ImportOptions) -> list[Answer | Failure]:
    if shape == "llm-json":
        from cfspec.importers import llm_json

        return llm_json.read(source)
    if shape == "llm-text":
        from cfspec.importers import llm_text

        return llm_text.read(source)
    from cfspec.importers import coco_cf

    return coco_cf.read(source, options.columns, shape if shape in ("csv", "tsv") else "json")


def import_file(path: str | os.PathLike[str], shape: str = "auto",
                options: ImportOptions | None = None) -> list[ImportedItem]:
    """Import one file (`-`: stdin). Raises OSError when it cannot be read at all, and
    `tables.NeedsPackage` for Parquet without pyarrow. Under `--from auto` a `.csv`, `.tsv`
    or `.parquet` suffix names the table shape."""
    options = options or ImportOptions()
    name = os.fspath(path)
    if shape == "auto" and name != "-":
        shape = tables.shape_of_path(name) or shape
    if shape == "parquet":
        limit = options.config.max_file_bytes
        data = sys.stdin.buffer.read(limit + 1 if limit is not None else -1) \
            if name == "-" else None
        size = len(data) if data is not None else os.path.getsize(name)
        if limit is not None and size > limit:
            return [_too_large(name, size, limit)]
        source = tables.parquet_source(name, data)
        if limit is not None and len(source.text) > limit:  # the rows as text, decompressed
            return [_too_large(name, len(source.text), limit, "its rows as text")]
        return import_source(source, "parquet", options)
    read = read_source(name, options.config.max_file_bytes)
    if isinstance(read, ImportedItem):
        return [read]
    return import_source(read, shape, options)


def write_items(items: Iterable[ImportedItem], out_dir: Path) -> list[Path]:
    """Write each item's .scm into `out_dir` (created), one file per item named after its id;
    names taken twice get `-2`, `-3`. Nothing is written outside `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()
    taken: set[str] = set()
    written: list[Path] = []
    for item in items:
        if item.scm is None:
            continue
        stem = safe_id(item.item_id)
        name, n = f"{stem}.scm", 2
        while name.lower() in taken:
            name, n = f"{stem}-{n}.scm", n + 1
        taken.add(name.lower())
        # The folder itself may be a link (to a scratch disk: the user's choice), but a file
        # in it is never written through: a link at its place is replaced by the file (the
        # rename swaps the link itself), so nothing lands outside the folder.
        target = root / name
        if target.parent.resolve() != root:  # safe_id makes this impossible; keep the wall
            raise ValueError(f"refusing to write outside {out_dir}: {name}")
        write_text_atomic(target, item.scm)
        item.path = out_dir / name
        written.append(item.path)
    return written
