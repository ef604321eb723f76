"""Caption pairs as datasets publish them: JSON (a list, JSON Lines, or one object keyed by the
rows' ids), CSV, TSV and Parquet. This module only reads: it turns each row into a `Row` (its
id, its factual caption and its counterfactual caption or captions, each with its position in
the input) and reports what keeps a row from being a pair; `coco_cf.py` judges the rows.

Columns are found by name. Known datasets' names are recognised (`key_form`: case, `-`, `_`
and spaces aside):

- COCO-Counterfactuals: `caption_0`/`caption_1` or `original_caption`/`counterfactual_caption`,
  id `id` or `coco-counterfactual-index`;
- Winoground: `caption_0`/`caption_1`, id `id`;
- SugarCrepe: one object keyed by id, each row `caption`/`negative_caption` (and `filename`,
  its image: the key is the id);
- ARO (VG-Relation, VG-Attribution): `true_caption`/`false_caption`, id `image_id`;
- SocialCounterfactuals: `caption` and `output_1` ... `output_N` (a caption set), id `filename`.

Other names are given with `--columns ID,FACTUAL,COUNTERFACTUAL` (`Columns`).

Positions: line and column in the file for JSON, CSV and TSV. Parquet is binary, so its rows
are shown as JSON Lines, one row a line: there the line is the row number (1-based).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.importers.answer import Columns, Failure, Piece
from cfspec.importers.jsonpos import JObj, JStr, JValue, key_form, kind
from cfspec.importers.llm_json import raw_id, span_of, values

FACTUAL = ("caption_0", "original_caption", "original_prompt", "caption", "true_caption")
COUNTERFACTUAL = ("caption_1", "counterfactual_caption", "counterfactual_prompt",
                  "negative_caption", "false_caption", "output_1")
# SocialCounterfactuals: `output_1` ... `output_N`, one counterfactual each.
MORE_OUTPUTS = re.compile(r"output[-_ ]?(\d+)$", re.I)
KNOWN = frozenset(key_form(k) for k in (*FACTUAL, *COUNTERFACTUAL))
TABLE_SHAPES = ("csv", "tsv", "parquet")
DELIMITERS = {"csv": ",", "tsv": "\t"}
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}

_COLUMNS_HELP = "name the columns: `cfspec import FILE -o DIR --columns ID,FACTUAL,COUNTERFACTUAL`"


class NeedsPackage(Exception):
    """A format whose reader is an optional package that is not installed (Parquet: pyarrow).
    The message is the whole line to show."""


@dataclass
class Row:
    """One caption pair (or caption set) read from a row. `item` is the row as an object of its
    cells, with positions in the input (a CSV row is made into one)."""

    number: int  # 1-based among the input's rows
    item: JObj
    span: Span
    raw_id: str | None
    factual: JStr
    counterfactual: JStr | None  # None for a caption set
    outputs: list[tuple[JStr, JValue]] | None = None  # a caption set's counterfactuals


def shape_of_path(name: str) -> str | None:
    """The table shape a file's suffix names (`.csv` -> csv), or None."""
    return SUFFIXES.get(Path(name).suffix.lower())


def sniff(text: str, columns: Columns | None = None) -> str | None:
    """`csv` or `tsv` when the first line is a header naming a known caption column (or one
    `columns` names), else None: how `--from auto` tells a table on stdin from an answer in
    free text."""
    known = KNOWN | ({key_form(columns.factual)} if columns is not None else set())
    head = text.lstrip("\ufeff")
    first = head.split("\n", 1)[0].rstrip("\r")
    if first.lstrip()[:1] in ("{", "[", ""):
        return None
    for shape in ("tsv", "csv"):
        cells = [c.strip().strip('"') for c in first.split(DELIMITERS[shape])]
        if len(cells) > 1 and any(key_form(c) in known for c in cells):
            return shape
    return None


def rows(source: SourceFile, columns: Columns | None = None, table: str = "json"
         ) -> list[Row | Failure]:
    """Every row of a caption-pair input, or the reason it is not a pair (a `Failure` holding
    the diagnostics, at their positions)."""
    bag = DiagnosticBag(source)
    found: list[tuple[JValue | Failure, str | None]]
    if table in DELIMITERS:
        found = _csv_rows(source, DELIMITERS[table], columns, bag)
    else:
        found = _json_rows(source, bag)
    out: list[Row | Failure] = []
    if bag.items:
        out.append(Failure(source, 0, bag.items[0].span, list(bag.items)))
    for number, (item, key) in enumerate(found, start=1):
        if isinstance(item, Failure):
            item.number = number
            out.append(item)
        else:
            out.append(_row(source, number, item, key, columns))
    return out


def _json_rows(source: SourceFile, bag: DiagnosticBag) -> list[tuple[JValue | Failure, str | None]]:
    """A list, JSON Lines, or one object keyed by id (SugarCrepe: `{"0": {...}, "1": ...}`):
    then each member is a row and its key is the row's id."""
    items = values(source, bag, 'caption pairs: {"id", "caption_0", "caption_1"} per line')
    if len(items) == 1 and isinstance(items[0], JObj) and items[0].members \
            and not any(k in KNOWN for k in items[0].keys()) \
            and all(isinstance(v, JObj) for _, v in items[0].members):
        return [(v, k.value) for k, v in items[0].members]
    return [(item, None) for item in items]


def _row(source: SourceFile, number: int, item: JValue, key: str | None,
         columns: Columns | None) -> Row | Failure:
    span = span_of(source, item)
    bag = DiagnosticBag(source)
    if not isinstance(item, JObj):
        bag.report("syntax-error", span, f"expected a caption pair, found {kind(item)}",
                   label="not an object",
                   help='one pair per row: {"id": ..., "caption_0": ..., "caption_1": ...}')
        return Failure(source, number, span, bag.items)
    row_id = key if key is not None else _id(item, columns)
    start = Span(span.line, span.column, span.line, span.column + 1, span.start, span.start + 1)
    if columns is not None:
        factual = _caption(source, bag, item, (columns.factual,), start, "factual")
        wanted = [_caption(source, bag, item, (c,), start, "counterfactual")
                  for c in columns.counterfactuals]
        if bag.items or factual is None:
            return Failure(source, number, span, bag.items, row_id)
        if len(wanted) > 1:
            keys = [item.get(c) for c in columns.counterfactuals]
            return Row(number, item, span, row_id, factual, None,
                       [(k, v) for k, v in (f for f in keys if f is not None)])
        return Row(number, item, span, row_id, factual, wanted[0])
    outputs = _outputs(item)
    first = item.get(*FACTUAL)
    if len(outputs) > 1 and first is not None and isinstance(first[1], JStr):
        factual = _caption(source, bag, item, FACTUAL, start, "factual")
        if factual is None:
            return Failure(source, number, span, bag.items, row_id)
        return Row(number, item, span, row_id, factual, None, outputs)
    factual = _caption(source, bag, item, FACTUAL, start, "factual")
    counterfactual = _caption(source, bag, item, COUNTERFACTUAL, start, "counterfactual")
    if factual is None or counterfactual is None:
        return Failure(source, number, span, bag.items, row_id)
    return Row(number, item, span, row_id, factual, counterfactual)


def _id(item: JObj, columns: Columns | None) -> str | None:
    if columns is None:
        return raw_id(item)
    return raw_id(item, (columns.id,)) if columns.id is not None else None


def _caption(source: SourceFile, bag: DiagnosticBag, item: JObj, keys: tuple[str, ...],
             start: Span, what: str) -> JStr | None:
    """The caption under the first of `keys`, reported when it is missing, not a string or
    empty."""
    found = item.get(*keys)
    if found is None:
        named = f"column `{keys[0]}`" if len(keys) == 1 else \
            f"{what} caption (none of {', '.join(f'`{k}`' for k in keys)})"
        bag.report("syntax-error", start, f"the row has no {named}", label="this row",
                   notes=["its columns: " + ", ".join(k.value for k, _ in item.members)],
                   help=f'add "{keys[0]}": "the caption", or {_COLUMNS_HELP}')
        return None
    key, value = found
    if not isinstance(value, JStr):
        bag.report("syntax-error", span_of(source, value),
                   f"`{key.value}` must be a string (the {what} caption), found {kind(value)}",
                   label="not a caption", help=f'write it as "{key.value}": "the caption"')
        return None
    if not value.value.strip():
        bag.report("syntax-error", Piece.of_string(value).span(source),
                   f"the {what} caption `{key.value}` is empty", label="empty",
                   help="write the caption, or leave the row out")
        return None
    return value


def _outputs(item: JObj) -> list[tuple[JStr, JValue]]:
    """`output_1` ... `output_N` (SocialCounterfactuals), by their number."""
    found = [(int(m.group(1)), n, k, v) for n, (k, v) in enumerate(item.members)
             if (m := MORE_OUTPUTS.match(k.value.strip()))]
    return [(k, v) for _, _, k, v in sorted(found, key=lambda o: (o[0], o[1]))]


# --- CSV and TSV ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cell:
    value: JStr
    quoted: bool


def _cell(text: str, start: int, end: int, quoted: bool) -> JStr:
    """A cell as a JSON string would be: `start` and `end` are its quotes' offsets. An unquoted
    cell has none, so they are one before and one after it; either way `Piece.of_string`
    points at exactly its characters. Doubled quotes (`""`) map back to their offsets."""
    if not quoted:
        return JStr(text[start:end], start - 1, end + 1)
    inner = text[start + 1:end - 1]
    if '""' not in inner:
        return JStr(inner, start, end)
    chars: list[str] = []
    offsets: list[int] = []
    i = 0
    while i < len(inner):
        chars.append(inner[i])
        offsets.append(start + 1 + i)
        i += 2 if inner.startswith('""', i) else 1
    return JStr("".join(chars), start, end, tuple(offsets))


_UNQUOTED = {d: re.compile(rf"[^{re.escape(d)}\"\r\n]*") for d in DELIMITERS.values()}
_TO_DELIMITER = {d: re.compile(rf"[^{re.escape(d)}\r\n]*") for d in DELIMITERS.values()}
_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_LINE_END = re.compile(r"\r?\n|\r")


def _records(source: SourceFile, delimiter: str, bag: DiagnosticBag
             ) -> Iterator[tuple[int, int, list[_Cell]] | Failure]:
    """RFC 4180 records: (start, end, cells), or a Failure for a malformed line (reported at
    its place; reading resumes on the next line). Blank lines are skipped."""
    text = source.text
    unquoted = _UNQUOTED[delimiter]
    pos = 1 if text.startswith("\ufeff") else 0
    while pos < len(text):
        start = pos
        cells: list[_Cell] = []
        problem: tuple[int, int, str, str] | None = None
        while True:
            if text.startswith('"', pos):
                m = _QUOTED.match(text, pos)
                if m is None:
                    problem = (pos, pos + 1, "a quoted cell is not closed",
                               'close it with `"`; a quote inside a quoted cell is written `""`')
                    break
                cells.append(_Cell(_cell(text, pos, m.end(), True), True))
                pos = m.end()
            else:
                m = unquoted.match(text, pos)
                assert m is not None  # `*` always matches
                end = m.end()
                if text.startswith('"', end):  # a quote inside an unquoted cell: literal
                    rest = _TO_DELIMITER[delimiter].match(text, end)
                    assert rest is not None
                    end = rest.end()
                cells.append(_Cell(_cell(text, pos, end, False), False))
                pos = end
            if pos >= len(text):
                break
            if text[pos] == delimiter:
                pos += 1
                continue
            line_end = _LINE_END.match(text, pos)
            if line_end is not None:
                pos = line_end.end()
                break
            problem = (pos, pos + 1, f"text after the closing quote of a cell: {text[pos]!r}",
                       'a quote inside a quoted cell is written `""`; put the whole cell in '
                       "quotes")
            break
        if problem is not None:
            at, to, message, help = problem
            line_bag = DiagnosticBag(source)
            line_bag.report("syntax-error", source.span(at, to), message, label="here",
                            help=help)
            line = source.position(at)[0]
            yield Failure(source, 0, source.line_span(line), line_bag.items)
            nxt = _LINE_END.search(text, at)
            pos = nxt.end() if nxt is not None else len(text)
            continue
        if len(cells) == 1 and not cells[0].quoted and not cells[0].value.value.strip():
            continue  # a blank line
        end = pos
        while end > start and text[end - 1] in "\r\n":
            end -= 1
        yield start, end, cells


def _csv_rows(source: SourceFile, delimiter: str, columns: Columns | None, bag: DiagnosticBag
              ) -> list[tuple[JValue | Failure, str | None]]:
    """The header names the columns; every other record is a row, as an object of its cells."""
    records = _records(source, delimiter, bag)
    header: tuple[int, int, list[_Cell]] | None = None
    for record in records:
        if isinstance(record, Failure):
            bag.items.extend(record.diagnostics)
            return []
        header = record
        break
    if header is None:
        return []
    h_start, h_end, names = header
    keys = [JStr(c.value.value.strip(), c.value.start, c.value.end) for c in names]
    header_span = source.span(h_start, h_end)
    named = JObj(tuple((k, k) for k in keys), h_start, h_end)
    if columns is not None:
        wanted = [*([columns.id] if columns.id else []), columns.factual,
                  *columns.counterfactuals]
        missing = [c for c in wanted if named.get(c) is None]
    else:
        missing = [] if any(key_form(k.value) in KNOWN for k in keys) else ["caption"]
    if missing:
        what = "no column " + ", ".join(f"`{m}`" for m in missing) if columns \
            else "no caption column this reader knows"
        bag.report("syntax-error", header_span, f"the header has {what}", label="the header",
                   notes=["its columns: " + ", ".join(k.value for k in keys)],
                   help=_COLUMNS_HELP if columns is None else
                   "give --columns names from this header (ID,FACTUAL,COUNTERFACTUAL)")
        return []
    out: list[tuple[JValue | Failure, str | None]] = []
    for record in records:
        if isinstance(record, Failure):
            out.append((record, None))
            continue
        start, end, cells = record
        if len(cells) != len(keys):
            row_bag = DiagnosticBag(source)
            row_bag.report("syntax-error", source.span(start, end),
                           f"the row has {len(cells)} cell{'s' if len(cells) != 1 else ''}; "
                           f"the header has {len(keys)}", label="this row",
                           notes=[f"the header is line {header_span.line}"],
                           help="quote a cell that holds the delimiter "
                           f"({'a tab' if delimiter == chr(9) else repr(delimiter)}), or add "
                           "the missing cells")
            out.append((Failure(source, 0, source.span(start, end), row_bag.items), None))
            continue
        members = tuple((k, c.value) for k, c in zip(keys, cells, strict=True))
        out.append((JObj(members, start, end), None))
    return out


# --- Parquet --------------------------------------------------------------------------------


def parquet_source(path: str, data: bytes | None = None) -> SourceFile:
    """A Parquet file as JSON Lines text, one row a line (so a diagnostic's line is the row's
    number), named after the file. Columns that are not text, numbers or booleans (images,
    lists) are shown as null: they hold no caption. `data`: the file's bytes (stdin). OSError
    when it cannot be read."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise NeedsPackage(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") \
            from None
    try:
        table = pq.ParquetFile(pa.BufferReader(data) if data is not None else path)
    except (pa.ArrowException, ValueError) as error:
        raise OSError(f"not a Parquet file ({error})") from None
    schema = table.schema_arrow
    scalar = [f.name for f in schema
              if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
              or pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
              or pa.types.is_boolean(f.type)]
    lines: list[str] = []
    for batch in table.iter_batches(columns=scalar):
        for row in batch.to_pylist():
            shown = {name: _plain(row.get(name)) for name in schema.names}
            lines.append(json.dumps(shown, ensure_ascii=False))
    return SourceFile("<stdin>" if path == "-" else path, "\n".join(lines) + "\n" if lines else "")


def _plain(value: object) -> object:
    """A cell as JSON writes it: NaN and infinities (no JSON number) as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
