"""`cfspec generate OUT`: the Typer command. Importing this module imports neither torch nor
diffusers (the CLI registers it at start-up); they load when the command runs.

Register it with `app.command("generate")(generate_command)`; `python -m cfspec.cli.generate`
runs it on its own (that is also what `torchrun --nproc_per_node N -m cfspec.cli.generate OUT`
launches). Exit status: 0 done, 1 some pairs failed (listed on stderr), 2 usage or I/O error
(a device that is not here, a model that cannot load, images of other settings that only
`--overwrite` may replace: said before any work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, fail
from cfspec.cli.options import DeviceOption, GuidanceOption, flag_values
from cfspec.gpu.models import DEFAULT_INVERSION, DEFAULT_MODEL

# The settings that decide the images, shared by generate, plan and run.
ModelOption = Annotated[str, typer.Option(
    help="A Stable Diffusion 1.x, 2.x or SDXL pipeline: a hub id (read from the local cache "
         "when HF_HUB_OFFLINE is set) or a saved folder; tiny or tiny-sdxl are built in, with "
         "random weights (noise images), for tests and a trial run.")]
SchedulerOption = Annotated[str, typer.Option(help="ddim, pndm, euler, euler-a, dpm or ddpm.")]
HeightOption = Annotated[int | None, typer.Option(help="Image height (default: the model's).")]
WidthOption = Annotated[int | None, typer.Option(help="Image width (default: the model's).")]
DtypeOption = Annotated[str, typer.Option(
    help="auto (fp16 on CUDA, else fp32), fp32, fp16 or bf16.")]
BlendStartOption = Annotated[float | None, typer.Option(
    help="Fraction of the schedule before LocalBlend starts (default: 0.2, or 0 with "
         "--p2p-compat published); a pair's `blend_start` wins.")]
P2PCompatOption = Annotated[str, typer.Option(
    help="cfspec (default: cfspec's fixes) or published (google/prompt-to-prompt's behaviour "
         "exactly; see the README's differences table).")]
CompileOption = Annotated[bool, typer.Option(
    "--compile", help="Compile the UNet (torch.compile: CUDA graphs, fused kernels). Faster after "
    "a one-time compile per batch shape (cached); the same images within the dtype's rounding.")]
OverwriteOption = Annotated[bool, typer.Option(
    "--overwrite", help="Replace images OUT holds that were made with other settings (another "
                        "model, steps, guidance, ...); without it such a run stops before "
                        "touching anything and lists what differs.")]


def generate_command(
    out: Annotated[Path, typer.Argument(help="The folder `cfspec compile` wrote pairs.jsonl to.")],
    model: ModelOption = DEFAULT_MODEL,
    seeds: Annotated[int, typer.Option(help="Candidate image pairs per pair (seeds 0..K-1).")] = 1,
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 50,
    device: DeviceOption = "auto",
    batch_pairs: Annotated[int, typer.Option(
        help="Pairs' worth of rows per UNet call: 2 x B images. Counterfactuals of one factual "
             "prompt share its row (K of them take K + 1 rows).")] = 1,
    guidance: GuidanceOption = "7.5",
    scheduler: SchedulerOption = "ddim",
    height: HeightOption = None,
    width: WidthOption = None,
    dtype: DtypeOption = "auto",
    seed_base: Annotated[int, typer.Option(help="The first seed.")] = 0,
    blend_start: BlendStartOption = None,
    p2p_compat: P2PCompatOption = "cfspec",
    shard: Annotated[
        str | None,
        typer.Option(metavar="I/N", help="Only part I of N (0 <= I < N) of pairs.jsonl, for "
                     "SLURM arrays or several machines: disjoint, together complete."),
    ] = None,
    overwrite: OverwriteOption = False,
    compile_unet: CompileOption = False,
    inversion: Annotated[str, typer.Option(
        help="For pairs with a photo (`image` in the spec): null-text (as published: exact "
             "reconstructions, ~10x the UNet calls), negative-prompt (fast: no optimisation) "
             "or ddim (plain DDIM inversion, the baseline). Needs --scheduler ddim.")
    ] = DEFAULT_INVERSION,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Images for every pair in OUT/pairs.jsonl (OUT/images/<id>/<seed>_0.png, _1.png and
    OUT/manifest.jsonl); re-running skips what is done."""
    import os

    from cfspec.gpu.device import DeviceError, pick
    from cfspec.workspace.outdir import describe_os_error, prepare_out

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        pick(device)  # before anything else: one line, not torch's traceback
    except DeviceError as error:
        raise fail(str(error)) from None
    try:
        if out.is_dir():  # a missing OUT is reported by generate itself (no pairs.jsonl)
            prepare_out(out, "images")  # writable, no one else's link: before any model loads
    except OSError as error:
        typer.echo(f"cfspec: error: {describe_os_error(error)}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    from cfspec.workspace.shards import ALL, parse_shard

    try:
        part = ALL if shard is None else parse_shard(shard)
    except ValueError as error:
        raise fail(str(error)) from None
    from cfspec.gpu.models import random_weights_warning
    from cfspec.stages.preflight import model_problems

    problems = model_problems(model)  # a path with nothing there, not in the cache, ...
    if problems:
        raise fail(problems[0])
    warning = random_weights_warning("--model", model)
    if warning is not None and os.environ.get("RANK", "0") == "0":  # once under torchrun
        typer.echo(f"cfspec: warning: {warning}", err=True)
    from cfspec.stages.options import GenerateOptions, OptionError

    # Every flag but OUT, by name (tests/test_options.py: each flag is a field), checked once
    # here, before any model loads.
    flags = {**flag_values(generate_command, locals()), "shard": part}
    options = GenerateOptions(**flags)
    try:
        options.check(pick(device))
    except OptionError as error:
        raise fail(str(error)) from None
    from cfspec.gpu.generate.stage import GenerateError, generate
    from cfspec.gpu.generate.weights import ModelLoadError

    try:
        result = generate(out, options)
    except (GenerateError, ModelLoadError, ValueError) as error:
        typer.echo(f"cfspec: error: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as error:  # e.g. the disk filled up: what is finished stays, re-run resumes
        typer.echo(f"cfspec: error: {describe_os_error(error)}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if not _is_main_process():
        raise typer.Exit(EXIT_OK if result.ok else EXIT_ERRORS)
    for problem in result.invalid:
        typer.echo(f"cfspec: skipped: {problem}", err=True)
    for failure in result.failed:
        typer.echo(f"cfspec: failed: {failure.id} seed {failure.seed}: {failure.error}", err=True)
    if not quiet:
        typer.echo(
            f"{result.generated} generated, {result.skipped} already done, "
            f"{len(result.failed)} failed, of {result.total} image pair(s) in {out}"
            + ("" if part.count == 1 else f" (shard {part})"),
            err=True,
        )
    raise typer.Exit(EXIT_OK if result.ok else EXIT_ERRORS)


def _is_main_process() -> bool:
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(generate_command)
    app()


if __name__ == "__main__":
    main()
