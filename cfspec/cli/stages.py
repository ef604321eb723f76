"""The Typer commands of the stages after generation: `evaluate`, `filter`, `export`, `report`.

Thin: arguments -> the stage's function -> diagnostics on stdout (`--format`), a summary on
stderr. Importing this module imports neither torch nor any stage module; each command imports
what it needs when it runs. Register them with `app.command("evaluate")(evaluate_command)` etc.

Exit status, for all four: 0 done; 1 some lines or files of OUT were invalid (reported as
diagnostics; what was valid was still processed), or `export` had nothing to export (nothing
written); 2 usage or I/O error (a missing input file, a bad option, an unloadable model),
nothing written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cfspec.diagnostics.records import Diagnostic

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
DEFAULT_CLIP = "openai/clip-vit-large-patch14"  # = clip.DEFAULT_CLIP, without torch

OutArgument = Annotated[
    Path, typer.Argument(help="The output folder of `cfspec compile` and `cfspec generate`.")
]
FormatOption = Annotated[
    str, typer.Option("--format", help="Diagnostics as text, concise, json, sarif or github.",
                      metavar="FORMAT"),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no summary on stderr.")
]
NoColorOption = Annotated[bool, typer.Option("--no-color", help="Never colour the output.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"cfspec: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _check_format(fmt: str) -> None:
    from cfspec.diagnostics.views import FORMATS

    if fmt not in FORMATS:
        raise _fail(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _check_out(out: Path, writes: bool = True) -> None:
    """OUT exists and, when the stage `writes` into it, can be written (checked before any
    model loads or work starts)."""
    from cfspec.workspace.outdir import prepare_out

    if not out.is_dir():
        raise _fail(f"{out}: not a folder (run `cfspec compile SPECS -o {out}` first)")
    if not writes:
        return
    try:
        prepare_out(out)
    except OSError as error:
        raise _io_fail(error) from None


def _io_fail(error: OSError) -> typer.Exit:
    """An I/O failure as a message naming the path and a way out (exit 2), not a traceback."""
    from cfspec.workspace.outdir import describe_os_error

    return _fail(describe_os_error(error))


def _emit(diagnostics: Sequence[Diagnostic], fmt: str, no_color: bool) -> int:
    """Diagnostics on stdout; the exit status they call for."""
    from cfspec.diagnostics.records import has_errors
    from cfspec.diagnostics.views import render

    color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    sys.stdout.write(render(list(diagnostics), fmt, color=color))
    return EXIT_ERRORS if has_errors(list(diagnostics)) else EXIT_OK


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(message, err=True)


def evaluate_command(
    out: OutArgument,
    clip_model: Annotated[
        str, typer.Option("--clip-model",
                          help="tiny (built in, random weights: for tests), a saved CLIP folder "
                               "or a hub id (read from the local cache when offline).")
    ] = DEFAULT_CLIP,
    inception_weights: Annotated[
        Path | None, typer.Option("--inception-weights",
                                  help="Local FID Inception weights file "
                                       "(pt_inception-2015-12-05-6726825d.pth): adds KID, and "
                                       "FID from 50 images up.")
    ] = None,
    device: Annotated[
        str, typer.Option(help="cpu, cuda, cuda:1, mps, or auto (CUDA when there is one).")
    ] = "cpu",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="(pair, seed)s scored per CLIP batch.")
    ] = 32,
    fmt: FormatOption = "text",
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """Per-pair metrics (CLIP score, directional and image-image similarity, effectiveness,
    latent divergence, background preservation; CLD with 20+ seeds) and set-level KID/FID:
    OUT/metrics.jsonl and OUT/metrics_summary.json."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _check_format(fmt)
    _check_out(out)
    try:
        from cfspec.stages.evaluate.stage import EvaluateError, evaluate, summary_table
    except ImportError as error:
        raise _fail(f"`cfspec evaluate` needs the gpu extra (pip install 'cfspec[gpu]'): "
                    f"{error}") from None
    from cfspec.workspace.records import StageError

    try:
        result = evaluate(out, clip_model, inception_weights=inception_weights, device=device,
                          batch_size=batch_size, quiet=quiet)
    except (EvaluateError, StageError, ValueError) as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _io_fail(error) from None
    status = _emit(result.diagnostics, fmt, no_color)
    if not quiet:
        from rich.console import Console

        Console(stderr=True, no_color=no_color or "NO_COLOR" in os.environ).print(
            summary_table(result.summary))
        for note in result.summary.get("notes", []):
            typer.echo(f"note: {note}", err=True)
        if result.not_generated:
            shown = ", ".join(result.not_generated[:5])
            more = f" and {len(result.not_generated) - 5} more" if len(
                result.not_generated) > 5 else ""
            typer.echo(f"warning: {len(result.not_generated)} pair(s) have no images yet: "
                       f"{shown}{more} (run `cfspec generate {out}`)", err=True)
        typer.echo(f"wrote {len(result.rows)} row(s) to {result.metrics_path} and the summary "
                   f"to {result.summary_path}", err=True)
    raise typer.Exit(status)


def filter_command(
    out: OutArgument,
    min_clip: Annotated[
        float | None, typer.Option("--min-clip",
                                   help="Each image's CLIP cosine similarity to its own prompt "
                                        "(clip_score / 100) must reach this [default: 0.2].")
    ] = None,
    min_directional: Annotated[
        float | None, typer.Option("--min-directional",
                                   help="Minimum CLIP directional similarity [default: 0.2].")
    ] = None,
    min_image_similarity: Annotated[
        float | None, typer.Option("--min-image-similarity",
                                   help="Minimum image-image CLIP similarity [default: 0.7].")
    ] = None,
    gate: Annotated[
        list[str] | None, typer.Option("--gate", metavar="NAME>=X|NAME<=X",
                                       help="Also bound any numeric metric of metrics.jsonl, "
                                            "e.g. --gate latent_l2_outside_edit<=0.1 "
                                            "(repeatable).")
    ] = None,
    fmt: FormatOption = "text",
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """Keep the best seed per pair: of the seeds passing InstructPix2Pix's CLIP gates, the one
    with the highest directional similarity. Every decision and reason goes to
    OUT/filter.jsonl. Defaults come from [tool.cfspec] filter-min-clip, filter-min-directional
    and filter-min-image-similarity in pyproject.toml."""
    from cfspec.stages.filter import load_gates, run_filter
    from cfspec.workspace.records import StageError

    _check_format(fmt)
    _check_out(out)
    try:
        gates = load_gates(bounds=tuple(gate or ()), min_clip=min_clip,
                           min_directional=min_directional,
                           min_image_similarity=min_image_similarity)
        result = run_filter(out, gates)
    except StageError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _io_fail(error) from None
    status = _emit(result.diagnostics, fmt, no_color)
    failures = result.failure_counts()
    failed_text = ", ".join(f"{gate} {n}" for gate, n in sorted(failures.items())) or "none"
    _say(f"gates ({gates.source}): {gates.describe()}", quiet)
    _say(f"kept {result.kept} of {len(result.decisions)} pair(s); (pair, seed)s failing each "
         f"gate: {failed_text}; wrote {result.path}", quiet)
    raise typer.Exit(status)


def export_command(
    out: OutArgument,
    to: Annotated[str, typer.Option("--to", help="hf, coco-cf or cf-json.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The folder to write.")],
    fmt: FormatOption = "text",
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """Export the filter's kept candidates (or, without OUT/filter.jsonl, every pair's first
    seed) as a Hugging Face dataset (Parquet + dataset card), COCO-Counterfactuals JSON Lines or
    the reference study's counterfactual_dataset.json, with the images."""
    from cfspec.stages.export import FORMATS, ExportError, NothingToExport, export
    from cfspec.workspace.records import StageError

    _check_format(fmt)
    _check_out(out, writes=False)  # export writes only to -o DIR
    if to not in FORMATS:
        raise _fail(f"unknown --to {to!r}; choose one of {', '.join(FORMATS)}")
    try:
        result = export(out, to, output)
    except NothingToExport as error:
        _emit(error.selection.diagnostics, fmt, no_color)
        typer.echo(f"cfspec: {error}", err=True)
        raise typer.Exit(EXIT_ERRORS) from None
    except (ExportError, StageError) as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _io_fail(error) from None
    status = _emit(result.diagnostics, fmt, no_color)
    _say(f"exported {result.selection.description}", quiet)
    left_out = result.selection.left_out
    if left_out:
        _say(f"left out {len(left_out)} pair(s):", quiet)
        for line in left_out[:10]:
            _say(f"  {line}", quiet)
        if len(left_out) > 10:
            _say(f"  ... and {len(left_out) - 10} more", quiet)
    _say(f"wrote {result.rows} row(s) as {to} to {result.dest} ({len(result.files)} file(s))",
         quiet)
    raise typer.Exit(status)


def report_command(
    out: OutArgument,
    max_pairs: Annotated[
        int, typer.Option("--max-pairs", min=1, help="Show at most this many pairs.")
    ] = 200,
    fmt: FormatOption = "text",
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """One self-contained OUT/report.html: every pair's images side by side with the changed
    words highlighted, its causal graphs, metrics and filter decisions, and summary plots."""
    from cfspec.stages.html_report import build_report
    from cfspec.workspace.records import StageError

    _check_format(fmt)
    _check_out(out)
    try:
        result = build_report(out, max_pairs=max_pairs)
    except StageError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _io_fail(error) from None
    status = _emit(result.diagnostics, fmt, no_color)
    for note in result.notes:
        _say(f"note: {note}", quiet)
    _say(f"wrote {result.path} ({result.shown} of {result.total} pair(s) shown)", quiet)
    raise typer.Exit(status)
