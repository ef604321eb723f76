"""The `cfspec` command line: one Typer app (app.py) and the commands it registers; the plain
forms of `cfspec lint` skip Typer (fast.py)."""

from __future__ import annotations

import sys


def main() -> None:
    from cfspec.cli.fast import try_fast

    try:
        status = try_fast(sys.argv[1:])
    except BrokenPipeError:  # `cfspec lint ... | head`: as click does, quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("Aborted!\n")
        sys.exit(1)
    if status is not None:
        sys.exit(status)
    from cfspec.cli.app import main as typer_main
    from cfspec.workspace.usercache import UnsafeCacheError

    try:
        typer_main()
    except UnsafeCacheError as unsafe:
        sys.stderr.write(f"cfspec: error: {unsafe}\n")
        sys.exit(2)
    except ModuleNotFoundError as missing:
        extra = EXTRA_OF.get((missing.name or "").split(".")[0])
        if extra is None:
            raise
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), "this command")
        sys.stderr.write(f"cfspec: error: `cfspec {command}` needs the {extra} extra ({missing}):"
                         f" pip install 'cfspec[{extra}]'\n")
        sys.exit(2)


# The libraries each extra brings (pyproject.toml): a command that imports one on a base
# install says which extra to install, in one line, instead of a traceback.
EXTRA_OF = {
    **dict.fromkeys(("torch", "diffusers", "transformers", "torchmetrics", "accelerate", "PIL",
                     "numpy", "pyarrow", "datasets", "matplotlib", "safetensors"), "gpu"),
    **dict.fromkeys(("pygls", "lsprotocol"), "lsp"),
    **dict.fromkeys(("openai", "llguidance"), "llm"),
}


__all__ = ["main"]
