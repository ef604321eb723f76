"""`cfspec generate OUT`: the Typer command. Importing this module imports neither torch nor
diffusers (the CLI registers it at start-up); they load when the command runs.

Register it with `app.command("generate")(generate_command)`; `python -m cfspec.cli.generate`
runs it on its own (that is also what `torchrun --nproc_per_node N -m cfspec.cli.generate OUT`
launches). Exit status: 0 done, 1 some pairs failed (listed on stderr), 2 usage or I/O error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, fail
from cfspec.cli.options import GuidanceOption


def generate_command(
    out: Annotated[Path, typer.Argument(help="The folder `cfspec compile` wrote pairs.jsonl to.")],
    model: Annotated[
        str, typer.Option(help="tiny or tiny-sdxl (built in, random weights), or an SD 1.x, "
                          "SD 2.x or SDXL pipeline folder or hub id.")
    ] = "tiny",
    seeds: Annotated[int, typer.Option(help="Candidate image pairs per pair (seeds 0..K-1).")] = 1,
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 50,
    device: Annotated[
        str, typer.Option(help="cpu, cuda, cuda:1, mps, or auto (CUDA when there is one).")
    ] = "cpu",
    batch_pairs: Annotated[int, typer.Option(
        help="Pairs' worth of rows per UNet call: 2 x B images. Counterfactuals of one factual "
             "prompt share its row (K of them take K + 1 rows).")] = 1,
    guidance: GuidanceOption = "7.5",
    scheduler: Annotated[
        str, typer.Option(help="ddim, pndm, euler, euler-a, dpm or ddpm.")
    ] = "ddim",
    height: Annotated[int | None, typer.Option(help="Image height (default: the model's).")] = None,
    width: Annotated[int | None, typer.Option(help="Image width (default: the model's).")] = None,
    dtype: Annotated[
        str, typer.Option(help="auto (fp16 on CUDA, else fp32), fp32, fp16 or bf16.")
    ] = "auto",
    seed_base: Annotated[int, typer.Option(help="The first seed.")] = 0,
    blend_start: Annotated[
        float | None,
        typer.Option(help="Fraction of the schedule before LocalBlend starts (default: 0.2, "
                     "or 0 with --p2p-compat published); a pair's `blend_start` wins."),
    ] = None,
    p2p_compat: Annotated[
        str,
        typer.Option(help="cfspec (default: cfspec's fixes) or published (google/prompt-to-"
                     "prompt's behaviour exactly; see the README's differences table)."),
    ] = "cfspec",
    shard: Annotated[
        str | None,
        typer.Option(metavar="I/N", help="Only part I of N (0 <= I < N) of pairs.jsonl, for "
                     "SLURM arrays or several machines: disjoint, together complete."),
    ] = None,
    compile_unet: Annotated[bool, typer.Option(
        "--compile", help="Compile the UNet (torch.compile: CUDA graphs, fused kernels). "
        "Faster after a one-time compile per batch shape (cached); the same images within "
        "the dtype's rounding.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Images for every pair in OUT/pairs.jsonl (OUT/images/<id>/<seed>_0.png, _1.png and
    OUT/manifest.jsonl); re-running skips what is done."""
    import os

    from cfspec.workspace.outdir import describe_os_error, prepare_out

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
    from cfspec.gpu.generate.stage import GenerateError, generate
    from cfspec.gpu.generate.weights import ModelLoadError

    try:
        result = generate(
            out, model=model, seeds=seeds, steps=steps, guidance=guidance, device=device,
            batch_pairs=batch_pairs, height=height, width=width, quiet=quiet,
            scheduler=scheduler, dtype=dtype, seed_base=seed_base, blend_start=blend_start,
            p2p_compat=p2p_compat, shard=part, compile=compile_unet,
        )
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
