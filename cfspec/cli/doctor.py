"""`cfspec doctor`: versions, device, dtypes, which model kinds load, and whether cfspec's
attention processors work on this diffusers (cfspec.gpu.generate.doctor does the checks).
Exit status: 0 no problem, 1 something generation needs is broken, 2 usage."""

from __future__ import annotations

from typing import Annotated

import typer

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, fail


def doctor_command(
    device: Annotated[
        str, typer.Option(help="auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps.")
    ] = "auto",
    output_format: Annotated[
        str, typer.Option("--format", help="text or json.")
    ] = "text",
) -> None:
    """Check that this machine can generate: versions, device, dtypes, the embedded models and
    the P2P attention processors on this diffusers."""
    from cfspec.gpu.generate.doctor import DEVICES, ok, render_json, render_text, run_checks

    if output_format not in ("text", "json"):
        raise fail(f"--format {output_format!r}: choose text or json")
    if device.split(":")[0] not in DEVICES:
        raise fail(f"--device {device!r}: choose {', '.join(DEVICES)} (cuda:N for one GPU)")
    checks = run_checks(device)
    typer.echo((render_json if output_format == "json" else render_text)(checks), nl=False)
    raise typer.Exit(EXIT_OK if ok(checks) else EXIT_ERRORS)
