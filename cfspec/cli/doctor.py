"""`cfspec doctor`: versions, device, dtypes, which model kinds load, and whether cfspec's
attention processors work on this diffusers (cfspec.gpu.generate.doctor does the checks).
Exit status: 0 no problem, 1 something generation needs is broken, 2 usage."""

from __future__ import annotations

from typing import Annotated

import typer

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, fail
from cfspec.cli.options import DeviceOption


def doctor_command(
    device: DeviceOption = "auto",
    output_format: Annotated[
        str, typer.Option("--format", help="text or json.")
    ] = "text",
) -> None:
    """Check that this machine can generate: versions, device, dtypes, the embedded models and
    the P2P attention processors on this diffusers."""
    from cfspec.gpu.device import DeviceError, check_name
    from cfspec.gpu.generate.doctor import ok, render_json, render_text, run_checks

    if output_format not in ("text", "json"):
        raise fail(f"--format {output_format!r}: choose text or json")
    try:
        check_name(device)  # not a device name: usage (2); a device not here: a FAIL check (1)
    except DeviceError as error:
        raise fail(str(error)) from None
    checks = run_checks(device)
    typer.echo((render_json if output_format == "json" else render_text)(checks), nl=False)
    raise typer.Exit(EXIT_OK if ok(checks) else EXIT_ERRORS)
