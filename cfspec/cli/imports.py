"""`cfspec import FILE... -o DIR`: the command line of the importers. Registered by cli.py as
`app.command(name="import")(import_command)`. It lives outside cfspec/importers/ so that
registering it imports none of the importers: `cfspec lint` starts without them."""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, fail

if TYPE_CHECKING:
    from cfspec.importers import ImportedItem

INPUT_SUFFIXES = (".json", ".jsonl", ".ndjson", ".txt", ".md", ".csv", ".tsv", ".tab",
                  ".parquet", ".pq")
# A folder's own documents are not answers (named on the command line, they are read).
_NOT_ANSWERS = re.compile(r"(readme|license|licence|changelog|changes|contributing|notice|"
                          r"authors|citation)(\.|$)", re.I)


def _inputs(files: list[str]) -> list[str]:
    """Files as given; folders expanded to the answers inside them."""
    out: list[str] = []
    for name in files:
        path = Path(name)
        if name == "-":
            out.append(name)
        elif path.is_dir():
            out += sorted(str(p) for p in path.rglob("*")
                          if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
                          and not _NOT_ANSWERS.match(p.name))
        elif path.is_file():
            out.append(name)
        else:
            raise fail(f"{name}: no such file or folder")
    return out


def import_command(
    files: Annotated[
        list[str],
        typer.Argument(help="LLM answers or caption-pair files (or folders); - reads stdin."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the .scm files.")],
    shape: Annotated[
        str, typer.Option("--from", help="auto, llm-json, llm-text, coco-cf (caption pairs in "
                          "JSON), csv, tsv or parquet.", metavar="SHAPE")
    ] = "auto",
    columns: Annotated[
        str | None,
        typer.Option("--columns", metavar="ID,FACTUAL,COUNTERFACTUAL",
                     help="Caption pairs: the columns holding the id and the two captions "
                     "(FACTUAL,COUNTERFACTUAL without an id; more counterfactual columns make "
                     "each row a caption set). Default: the columns of COCO-Counterfactuals, "
                     "SugarCrepe, Winoground, ARO and SocialCounterfactuals."),
    ] = None,
    fix: Annotated[
        bool,
        typer.Option("--fix", help="Apply safe repairs: repeated edges, arrow forms, whitespace."),
    ] = False,
    output_format: Annotated[
        str, typer.Option("--format", help="text, concise, json, sarif or github.",
                          metavar="FORMAT")
    ] = "text",
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="The original prompt, when the answer lacks it.")
    ] = None,
    counterfactual_prompt: Annotated[
        str | None,
        typer.Option("--counterfactual-prompt",
                     help="The counterfactual prompt, when the answer lacks it."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")
    ] = False,
    images: Annotated[
        Path | None,
        typer.Option("--images", metavar="DIR",
                     help="A folder of the rows' photos (COCO's, any naming): a row's photo "
                     "found there by file name or COCO image id is written as its spec's "
                     "`image`."),
    ] = None,
) -> None:
    """Turn LLM answers and caption-pair datasets into .scm specs, one per item, written even
    when they have errors (listed at the top of each). Exit 0: no errors; 1: errors; 2: usage."""
    from cfspec.diagnostics.records import has_errors
    from cfspec.diagnostics.views import FORMATS, render
    from cfspec.importers import SHAPES, ImportOptions, import_file, write_items
    from cfspec.importers.answer import Columns
    from cfspec.importers.tables import NeedsPackage
    from cfspec.lang.config import ConfigError, load_config
    from cfspec.lint import UsageError, resolve_tokenizer

    if output_format not in FORMATS:
        raise fail(f"unknown --format {output_format!r}; choose one of {', '.join(FORMATS)}")
    if shape != "auto" and shape not in SHAPES:
        raise fail(f"unknown --from {shape!r}; choose auto, {', '.join(SHAPES)}")
    try:
        chosen = Columns.parse(columns) if columns is not None else None
    except ValueError as error:
        raise fail(str(error)) from None
    names = _inputs(files)
    try:
        config = load_config()
        tokenizer = resolve_tokenizer(config.tokenizer)
    except (UsageError, ConfigError) as error:
        raise fail(str(error)) from None
    photos = None
    if images is not None:
        from cfspec.importers.photos import PhotoFolder

        if not images.is_dir():
            raise fail(f"--images {images}: no such folder; name the folder that holds the "
                       "photos")
        try:
            photos = PhotoFolder.scan(images)
        except OSError as error:
            raise fail(f"--images {images}: {error.strerror or error}") from None
    options = ImportOptions(fix=fix, prompt=prompt, counterfactual_prompt=counterfactual_prompt,
                            config=config, tokenizer=tokenizer, columns=chosen, images=photos)
    items = []
    for name in _progress(names, quiet):
        try:
            items += import_file(name, shape, options)
        except OSError as error:
            raise fail(f"{name}: {error.strerror or error}") from None
        except NeedsPackage as error:
            raise fail(str(error)) from None
    try:
        written = write_items(items, out)
    except (OSError, ValueError) as error:
        raise fail(f"{out}: {getattr(error, 'strerror', None) or error}") from None
    diagnostics = [d for item in items for d in item.diagnostics]
    color = "NO_COLOR" not in os.environ and sys.stdout.isatty()
    sys.stdout.write(render(diagnostics, output_format, color=color))
    if output_format in ("text", "concise") and not quiet:
        typer.echo(summary(items, len(names), len(written), out), err=True)
    raise typer.Exit(EXIT_ERRORS if has_errors(diagnostics) else EXIT_OK)


def _progress(names: list[str], quiet: bool) -> Iterable[str]:
    if quiet or len(names) < 2 or not sys.stderr.isatty():
        return names
    from rich.console import Console
    from rich.progress import track

    return track(names, description="importing", console=Console(stderr=True), transient=True)


def summary(items: list[ImportedItem], files: int, written: int, out: Path) -> str:
    """The closing lines: a table of items and one of diagnostics by name when there are
    several items, then the totals."""
    from cfspec.diagnostics.codes import Severity

    clean = sum(1 for i in items if not i.errors)
    lines: list[str] = []
    if len(items) > 1:
        width = max(len("item"), *(len(i.item_id) for i in items))
        # Caption sets write several counterfactuals per item: then the table counts them.
        sets = any(len(i.written) > 1 for i in items)
        lines.append(f"{'item':<{width}}  {'counterfactuals  ' if sets else ''}verdict")
        lines += [f"{i.item_id:<{width}}  {f'{len(i.written):>15}  ' if sets else ''}"
                  f"{'unreadable: ' if i.scm is None else ''}{i.verdict}" for i in items]
        counts: Counter[tuple[str, Severity]] = Counter(
            (d.code.name, d.level) for i in items for d in i.diagnostics)
        if counts:
            names = sorted({n for n, _ in counts})
            wide = max(len("diagnostic"), *(len(n) for n in names))
            lines.append("")
            lines.append(f"{'diagnostic':<{wide}}  errors  warnings  notes")
            for n in names:
                e, w, o = (counts[n, s] for s in (Severity.ERROR, Severity.WARNING,
                                                   Severity.NOTE))
                lines.append(f"{n:<{wide}}  {e:>6}  {w:>8}  {o:>5}")
            lines.append("")
    plural = "s" if files != 1 else ""
    many = sum(len(i.written) for i in items if i.path is not None)
    holding = f" holding {many} counterfactuals" if any(len(i.written) > 1 for i in items) \
        else ""
    lines.append(f"{clean} of {len(items)} item{'s' if len(items) != 1 else ''} clean "
                 f"({files} file{plural} read); wrote {written} .scm file"
                 f"{'s' if written != 1 else ''}{holding} to {out}")
    return "\n".join(lines)
