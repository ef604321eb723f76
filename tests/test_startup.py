"""The lint path stays light: linting imports none of the compiler's or the GPU stack's
libraries, and the console script runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAKE = ROOT / "specs" / "cake.scm"

# The GPU stack, and what only the compiler needs (templates, the pair schema).
HEAVY = ("torch", "diffusers", "transformers", "torchmetrics", "accelerate", "jinja2",
         "jsonschema", "PIL", "numpy", "pygls", "lsprotocol")

# Everything `cfspec lint` touches, in one fresh interpreter: the CLI module, the API, every
# reporter and the formatter, then a lint of cake.scm through the API and through the CLI.
PROBE = """
import contextlib, io, json, sys
from cfspec.cli.app import main
import cfspec.lint, cfspec.diagnostics.views, cfspec.fmt
from cfspec.lint import lint
from cfspec.lang.config import load_config
from cfspec.diagnostics.views import FORMATS, render

path = sys.argv[1]
result = lint([path], load_config())
for fmt in FORMATS:
    render(result.diagnostics, fmt)
sys.argv = ["cfspec", "lint", path]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit as stop:
        code = stop.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"heavy": heavy, "diagnostics": len(result.diagnostics), "exit": code}))
"""


def console_script() -> str:
    beside = Path(sys.executable).with_name("cfspec")
    if beside.is_file():
        return str(beside)
    found = shutil.which("cfspec")
    if found is None:
        pytest.skip("the cfspec console script is not installed (pip install -e .)")
    return found


def test_lint_imports_no_heavy_library() -> None:
    probe = f"HEAVY = {HEAVY!r}\n{PROBE}"
    result = subprocess.run([sys.executable, "-c", probe, str(CAKE)], cwd=ROOT,
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], f"the lint path imported {report['heavy']}"
    assert report["diagnostics"] == 0
    assert report["exit"] in (0, None)


def test_console_script_lints_cake() -> None:
    result = subprocess.run([console_script(), "lint", str(CAKE.relative_to(ROOT))], cwd=ROOT,
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_registering_commands_imports_no_stage() -> None:
    """`cfspec lint` must not pay for import, generate or evaluate: importing the CLI (which
    registers every command) loads none of their modules, nor the lint pipeline itself."""
    # cfspec.cli.generate (typer only) is allowed: it is how `generate` is registered.
    code = (
        "import sys, cfspec.cli.app; "
        "print(sorted(m for m in sys.modules if m.startswith(('cfspec.importers', 'cfspec.stages',"
        " 'cfspec.lint', 'networkx', 'lark', 'jinja2', 'torch', 'diffusers', 'transformers'))"
        " and m != 'cfspec.cli.generate'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
