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


# --- the lint fast path (cfspec/cli/fast.py) ---------------------------------------------------

# The same command line through `cfspec` (the fast path when it applies) and through the Typer
# app alone must print the same and exit the same.
THROUGH_TYPER = ("import sys; from cfspec.cli.app import main; "
                 "sys.argv = ['cfspec', *sys.argv[1:]]; main()")
LINES = [
    ["lint", "specs/cake.scm"],
    ["lint", "specs/invalid/cycle.scm", "--format", "json"],
    ["lint", "--format=concise", "specs/invalid/cycle.scm", "--select", "cycle,SCM3",
     "--ignore", "unused-variable"],
    ["lint", "specs/invalid/cycle.scm", "-q", "--no-color", "--max-interventions", "2"],
    ["lint", "specs/cake.scm", "specs/invalid/self-loop.scm", "--format", "github"],
    ["lint", "specs/cake.scm", "--format", "yaml"],
    ["lint", "no/such/file.scm"],
    ["lint", "specs/cake.scm", "--select", "no-such-code"],
    ["lint", "-"],
    ["lint", "specs/invalid/cycle.scm", "--select", ","],  # empty: a usage error, not silence
    ["lint", "specs/invalid/cycle.scm", "--ignore="],
    # left to Typer by the fast path: help, a bad value, an unknown option, no path
    ["lint", "--help"],
    ["lint", "specs/cake.scm", "--max-interventions", "0"],
    ["lint", "specs/cake.scm", "--max-interventions", "²"],  # a digit to str.isdigit only
    ["lint", "specs/cake.scm", "--bogus"],
    ["lint", "specs/cake.scm", "--format"],
    ["lint"],
]


def _run(prefix: list[str], line: list[str]) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, *prefix, *line], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=120, input=CAKE.read_text())
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("line", LINES, ids=lambda line: " ".join(line[1:]) or "(none)")
def test_the_fast_path_answers_as_typer_does(line: list[str]) -> None:
    fast = _run(["-m", "cfspec"], line)
    typer_only = _run(["-c", THROUGH_TYPER], line)
    assert fast == typer_only


def test_plain_lint_loads_no_cli_machinery() -> None:
    code = ("import contextlib, io, sys; from cfspec.cli import main; "
            "sys.argv = ['cfspec', 'lint', sys.argv[1], '--format', 'concise'];\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main()\n    except SystemExit as stop:\n        code = stop.code\n"
            "print(code, sorted({m.split('.')[0] for m in sys.modules} & "
            "{'typer', 'pydantic', 'click', 'rich'}))")
    done = subprocess.run([sys.executable, "-c", code, str(CAKE)], cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split(maxsplit=1) == ["0", "[]\n"]


def test_an_empty_selector_is_a_usage_error() -> None:
    """`--select ""` would match no code and silence every check: exit 2, never a quiet 0."""
    code, out, err = _run(["-m", "cfspec"], ["lint", "specs/invalid/cycle.scm", "--select", ""])
    assert code == 2 and out == "" and "--select: empty" in err


def test_a_closed_pipe_ends_quietly() -> None:
    """`cfspec lint specs --format json | head -c1`: no traceback on stderr."""
    done = subprocess.Popen([sys.executable, "-m", "cfspec", "lint", "specs", "specs/invalid",
                             "--format", "json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert done.stdout is not None and done.stderr is not None
    done.stdout.read(1)
    done.stdout.close()
    err = done.stderr.read().decode()
    assert done.wait(timeout=120) in (0, 1) and "Traceback" not in err
