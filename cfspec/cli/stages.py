"""The Typer commands of the stages after generation: `evaluate`, `filter`, `export`, `report`.

Thin: arguments -> the stage's function -> diagnostics on stdout (`--format`), a summary on
stderr. Importing this module imports neither torch nor any stage module; each command imports
what it needs when it runs. Register them with `app.command("evaluate")(evaluate_command)` etc.

Exit status, for all four: 0 done; 1 some lines or files of OUT were invalid or damaged
(reported as diagnostics; what was valid was still processed), or `export` had nothing to
export, or every image `evaluate` had to score was damaged (nothing written); 2 usage or I/O
error (a missing input file, a bad option, an unloadable model), nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cfspec.cli.common import (
    EXIT_ERRORS,
    EXIT_OK,
    check_format,
    check_out,
    emit,
    fail,
    io_fail,
    say,
)
from cfspec.cli.generate import (
    BlendStartOption,
    DtypeOption,
    HeightOption,
    ModelOption,
    P2PCompatOption,
    SchedulerOption,
    WidthOption,
)
from cfspec.cli.options import (
    DeviceOption,
    FormatOption,
    GuidanceOption,
    NoColorOption,
    OutArgument,
    QuietOption,
    flag_values,
)
from cfspec.gpu.models import DEFAULT_CLIP, DEFAULT_MODEL, DEFAULT_VQA


def evaluate_command(
    out: OutArgument,
    clip_model: Annotated[
        str, typer.Option("--clip-model",
                          help="tiny (built in, random weights: for tests), a saved CLIP folder "
                               "or a hub id (read from the local cache when offline).")
    ] = DEFAULT_CLIP,
    vqa_model: Annotated[
        str | None, typer.Option("--vqa-model",
                                 help="Ask the spec's questions of both images and add "
                                      "intervention_success, factual_fidelity, held_fixed, "
                                      "descendants_followed: a BLIP VQA folder or hub id "
                                      f"(such as {DEFAULT_VQA}), or tiny (random weights).")
    ] = None,
    inception_weights: Annotated[
        Path | None, typer.Option("--inception-weights",
                                  help="Local FID Inception weights file "
                                       "(pt_inception-2015-12-05-6726825d.pth): adds KID, and "
                                       "FID from 50 images up.")
    ] = None,
    device: DeviceOption = "auto",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="(pair, seed)s scored per CLIP batch.")
    ] = 32,
    shard: Annotated[
        str | None,
        typer.Option(metavar="I/N", help="Only part I of N (0 <= I < N) of pairs.jsonl, as "
                     "generate --shard, to OUT/metrics.shard-I-of-N.jsonl (no KID/FID). A "
                     "later run without --shard reuses those rows and writes metrics.jsonl.")
    ] = None,
    fmt: FormatOption = "text",
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """Per-pair metrics (CLIP score, directional and image-image similarity, effectiveness,
    latent divergence, background preservation; CLD with 20+ seeds) and set-level KID/FID:
    OUT/metrics.jsonl and OUT/metrics_summary.json. Rows of `--shard` runs whose images and
    settings are unchanged are reused, not recomputed."""
    from cfspec.stages.options import EvaluateOptions, OptionError
    from cfspec.workspace.shards import ALL, parse_shard

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    check_format(fmt)
    _check_device(device)
    try:
        part = ALL if shard is None else parse_shard(shard)
        # Every flag but OUT and how the output looks, by name, checked once, first.
        options = EvaluateOptions(**{**flag_values(evaluate_command, locals(),
                                                   ("out", *EvaluateOptions.CLI_ONLY)),
                                     "shard": part}).check()
    except (ValueError, OptionError) as error:
        raise fail(str(error)) from None
    check_out(out)
    _warn_random_weights("--clip-model", clip_model)
    if vqa_model is not None:
        _warn_random_weights("--vqa-model", vqa_model)
    try:
        from cfspec.gpu.evaluate.stage import EvaluateError, evaluate
        from cfspec.gpu.evaluate.summary import summary_table
    except ImportError as error:
        raise fail(f"`cfspec evaluate` needs the gpu extra (pip install 'cfspec[gpu]'): "
                    f"{error}") from None
    from cfspec.workspace.reading import StageError

    try:
        result = evaluate(out, options)
    except EvaluateError as error:
        if error.diagnostics:  # every (pair, seed) was damaged: what was found, exit 1
            emit(error.diagnostics, fmt, no_color)
            typer.echo(f"cfspec: {error}", err=True)
            raise typer.Exit(EXIT_ERRORS) from None
        raise fail(str(error)) from None
    except (StageError, ValueError) as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise io_fail(error) from None
    status = emit(result.diagnostics, fmt, no_color)
    if not quiet:
        from rich.console import Console

        Console(stderr=True, no_color=no_color or "NO_COLOR" in os.environ).print(
            summary_table(result.summary))
        for note in result.summary.get("notes", []):
            typer.echo(f"note: {note}", err=True)
        if result.damaged:
            keys = sorted({(d.id, d.seed) for d in result.damaged})
            shown = ", ".join(f"{pid} seed {seed}" for pid, seed in keys[:5])
            more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
            typer.echo(f"error: {len(keys)} (pair, seed)(s) not scored, their files damaged: "
                       f"{shown}{more} (see the damaged-file diagnostics)", err=True)
        if result.not_generated:
            shown = ", ".join(result.not_generated[:5])
            more = f" and {len(result.not_generated) - 5} more" if len(
                result.not_generated) > 5 else ""
            typer.echo(f"warning: {len(result.not_generated)} pair(s) have no images yet: "
                       f"{shown}{more} (run `cfspec generate {out}`)", err=True)
        if result.reused or (result.shard_files and result.summary_path is not None):
            typer.echo(f"reused {result.reused} row(s) from {len(result.shard_files)} shard "
                       f"file(s) (their images and settings unchanged); computed "
                       f"{len(result.rows) - result.reused}", err=True)
        if result.summary_path is None:
            typer.echo(f"wrote {len(result.rows)} row(s) of shard {part} to "
                       f"{result.metrics_path}; after every shard, `cfspec evaluate {out}` "
                       "without --shard merges them into metrics.jsonl and adds KID/FID",
                       err=True)
        else:
            typer.echo(f"wrote {len(result.rows)} row(s) to {result.metrics_path} and the "
                       f"summary to {result.summary_path}", err=True)
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
    keep: Annotated[
        int, typer.Option("--keep", metavar="K", min=1,
                          help="Keep the K best passing seeds per pair (fewer when fewer "
                               "pass); export writes one row per kept (pair, seed).")
    ] = 1,
    fmt: FormatOption = "text",
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """Keep the best seed per pair (or the K best, --keep K): of the seeds passing
    InstructPix2Pix's CLIP gates, the one(s) with the highest directional similarity. Every
    decision and reason goes to OUT/filter.jsonl. Defaults come from [tool.cfspec]
    filter-min-clip, filter-min-directional and filter-min-image-similarity in pyproject.toml."""
    from cfspec.stages.filter import load_gates, run_filter
    from cfspec.workspace.reading import StageError

    check_format(fmt)
    check_out(out)
    try:
        gates = load_gates(bounds=tuple(gate or ()), min_clip=min_clip,
                           min_directional=min_directional,
                           min_image_similarity=min_image_similarity)
        result = run_filter(out, gates, keep)
    except StageError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise io_fail(error) from None
    status = emit(result.diagnostics, fmt, no_color)
    failures = result.failure_counts()
    failed_text = ", ".join(f"{gate} {n}" for gate, n in sorted(failures.items())) or "none"
    say(f"gates ({gates.source}): {gates.describe()}", quiet)
    rows = ""
    if keep > 1:
        short = f"; {result.short} pair(s) kept fewer (fewer passed)" if result.short else ""
        rows = f" ({result.kept_rows} (pair, seed)s: up to {keep} per pair{short})"
    say(f"kept {result.kept} of {len(result.decisions)} pair(s){rows}; (pair, seed)s failing "
        f"each gate: {failed_text}; wrote {result.path}", quiet)
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
    from cfspec.workspace.reading import StageError

    check_format(fmt)
    check_out(out, writes=False)  # export writes only to -o DIR
    if to not in FORMATS:
        raise fail(f"unknown --to {to!r}; choose one of {', '.join(FORMATS)}")
    try:
        result = export(out, to, output)
    except NothingToExport as error:
        emit(error.selection.diagnostics, fmt, no_color)
        typer.echo(f"cfspec: {error}", err=True)
        raise typer.Exit(EXIT_ERRORS) from None
    except (ExportError, StageError) as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise io_fail(error) from None
    status = emit(result.diagnostics, fmt, no_color)
    say(f"exported {result.selection.description}", quiet)
    left_out = result.selection.left_out
    if left_out:
        say(f"left out {len(left_out)} pair(s):", quiet)
        for line in left_out[:10]:
            say(f"  {line}", quiet)
        if len(left_out) > 10:
            say(f"  ... and {len(left_out) - 10} more", quiet)
    say(f"wrote {result.rows} row(s) as {to} to {result.dest} ({len(result.files)} file(s))",
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
    from cfspec.workspace.reading import StageError

    check_format(fmt)
    check_out(out)
    try:
        result = build_report(out, max_pairs=max_pairs)
    except StageError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise io_fail(error) from None
    status = emit(result.diagnostics, fmt, no_color)
    for note in result.notes:
        say(f"note: {note}", quiet)
    damaged = f", {result.damaged} of them as damaged" if result.damaged else ""
    say(f"wrote {result.path} ({result.shown} of {result.total} pair(s) shown{damaged})", quiet)
    raise typer.Exit(status)


def plan_command(
    out: OutArgument,
    model: ModelOption = DEFAULT_MODEL,
    seeds: Annotated[int, typer.Option(help="Candidate image pairs per pair.")] = 1,
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 50,
    device: DeviceOption = "auto",
    batch_pairs: Annotated[int, typer.Option(help="Pairs denoised together per UNet call.")] = 1,
    guidance: GuidanceOption = "7.5",
    scheduler: SchedulerOption = "ddim",
    height: HeightOption = None,
    width: WidthOption = None,
    dtype: DtypeOption = "auto",
    seed_base: Annotated[int, typer.Option(help="The first seed.")] = 0,
    blend_start: BlendStartOption = None,
    p2p_compat: P2PCompatOption = "cfspec",
    shard: Annotated[
        str | None, typer.Option(metavar="I/N", help="Only part I of N, as generate --shard.")
    ] = None,
    its: Annotated[
        str | None, typer.Option(help="UNet calls per second for one batch of this size (the "
                                 "it/s generate's progress bar shows), or a "
                                 "benchmarks/generate_bench.py --json report to read it from.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Jobs, UNet rows and a GPU-hour estimate for `cfspec generate OUT` with these settings,
    before any model loads; how many images it would redo, and how many of those were made
    with other settings (which generate replaces only with --overwrite)."""
    import json

    from cfspec.stages.options import GenerateOptions
    from cfspec.stages.plan import describe, make_plan
    from cfspec.workspace.reading import StageError
    from cfspec.workspace.shards import ALL, parse_shard

    if fmt not in ("text", "json"):
        raise fail(f"--format {fmt!r}: choose text or json")
    device = _check_device(device)  # what --dtype auto means depends on it
    check_out(out, writes=False)
    try:
        rate = None
        if its is not None:
            try:
                rate = float(its)
            except ValueError:  # not a number: a benchmark's measurement
                from cfspec.stages.plan import its_from_bench

                rate = its_from_bench(Path(its), batch_pairs)
        # Generate's options, by name, on the device generate would pick.
        flags = flag_values(plan_command, locals(), ("out", "its", "fmt", "shard"))
        options = GenerateOptions(**{**flags, "device": device,
                                     "shard": ALL if shard is None else parse_shard(shard)})
        plan, problems = make_plan(out, options, its=rate)
    except (StageError, ValueError) as error:
        raise fail(str(error)) from None
    for problem in problems:
        say(f"warning: {problem.message}", False)
    typer.echo(json.dumps(plan.as_dict()) if fmt == "json" else describe(plan), nl=fmt == "json")
    raise typer.Exit(EXIT_OK)


def _check_device(device: str) -> str:
    """The device `--device` means here (cfspec.gpu.device); one line and exit 2 when it is
    not a device or not on this machine."""
    from cfspec.gpu.device import DeviceError, pick

    try:
        return pick(device)
    except DeviceError as error:
        raise fail(str(error)) from None


def _warn_random_weights(option: str, name: str) -> None:
    from cfspec.gpu.models import random_weights_warning

    warning = random_weights_warning(option, name)
    if warning is not None:
        say(f"cfspec: warning: {warning}", False)
