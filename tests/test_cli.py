"""The command line as users and CI call it: exit codes, formats, stdin, config, entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.diagnostics.codes import ALL_CODES

ROOT = Path(__file__).resolve().parent.parent
CAKE = str(ROOT / "specs" / "cake.scm")
CYCLE = str(ROOT / "specs" / "invalid" / "cycle.scm")
runner = CliRunner()


def test_lint_exit_codes() -> None:
    assert runner.invoke(app, ["lint", CAKE]).exit_code == 0
    assert runner.invoke(app, ["lint", CYCLE]).exit_code == 1
    missing = runner.invoke(app, ["lint", "no/such/file.scm"])
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert runner.invoke(app, ["lint", CAKE, "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["lint"]).exit_code == 2


def test_warnings_alone_exit_zero(tmp_path: Path) -> None:
    spec = tmp_path / "w.scm"
    spec.write_text('scm w { prompt "A {{ X }}." var X = "cat" var Y = "y"\n'
                    '  counterfactual c { do(X = "dog") } }', encoding="utf-8")
    result = runner.invoke(app, ["lint", str(spec), "--format", "json"])
    assert result.exit_code == 0
    assert {d["severity"] for d in json.loads(result.stdout)} == {"warning"}


def test_json_format_is_the_contract_shape() -> None:
    result = runner.invoke(app, ["lint", CYCLE, "--format", "json"])
    (diag,) = json.loads(result.stdout)
    assert {"code", "name", "severity", "message", "file", "line", "column", "end_line",
            "end_column", "notes", "help"} <= set(diag)
    assert (diag["code"], diag["name"], diag["line"], diag["column"]) == ("SCM201", "cycle", 7, 3)
    assert diag["message"] == "cycle W -> A -> K -> W"


def test_stdin_is_read_with_a_dash() -> None:
    text = (ROOT / "specs" / "invalid" / "self-loop.scm").read_text(encoding="utf-8")
    result = runner.invoke(app, ["lint", "-", "--format", "concise"], input=text)
    assert result.exit_code == 1
    assert result.stdout.startswith("<stdin>:") and "[self-loop]" in result.stdout


def test_folders_are_walked_and_invalid_fixtures_excluded_by_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)  # picks up [tool.cfspec] exclude = ["specs/invalid"]
    result = runner.invoke(app, ["lint", "specs"])
    assert result.exit_code == 0, result.stdout
    assert "All checks passed." in result.stdout
    # Named explicitly, an excluded file is still linted.
    assert runner.invoke(app, ["lint", "specs/invalid/cycle.scm"]).exit_code == 1


def test_select_and_ignore_flags() -> None:
    ignored = runner.invoke(app, ["lint", CYCLE, "--ignore", "cycle"])
    assert ignored.exit_code == 0
    prefix = runner.invoke(app, ["lint", CYCLE, "--ignore", "SCM2", "--format", "json"])
    assert json.loads(prefix.stdout) == []
    only = runner.invoke(app, ["lint", CYCLE, "--select", "self-loop,duplicate-edge"])
    assert only.exit_code == 0


def test_config_from_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "two.scm"
    spec.write_text(
        'scm two { prompt "A {{ X }} and a {{ Y }}." var X = "cat" var Y = "dog" var L: latent = '
        '"l" L -> X L -> Y\n  counterfactual both { do(X = "cow", Y = "pig") } }',
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["lint", "two.scm"]).exit_code == 1  # too-many-interventions
    (tmp_path / "pyproject.toml").write_text("[tool.cfspec]\nmax-interventions = 2\n")
    assert runner.invoke(app, ["lint", "two.scm"]).exit_code == 0
    assert runner.invoke(app, ["lint", "two.scm", "--max-interventions", "1"]).exit_code == 1
    (tmp_path / "pyproject.toml").write_text("[tool.cfspec]\nmax-interventions = 'two'\n")
    bad = runner.invoke(app, ["lint", "two.scm"])
    assert bad.exit_code == 2 and "max-interventions" in bad.output
    (tmp_path / "pyproject.toml").write_text("[tool.cfspec]\nselct = ['ALL']\n")
    typo = runner.invoke(app, ["lint", "two.scm"])
    assert typo.exit_code == 2 and "unknown key `selct`" in typo.output


def test_tokenizer_option_gives_exact_counts(tmp_path: Path) -> None:
    from test_tokens import write_tokenizer

    tok = write_tokenizer(tmp_path / "clip")
    # 40 words of 3 unmerged letters: the estimate says 42, the real BPE count is 122.
    words = " ".join(["xyz"] * 40)
    spec = tmp_path / "long.scm"
    spec.write_text(f'scm l {{ prompt "A {{{{ X }}}} {words}" var X = "cat" var L: latent = "l"'
                    ' L -> X counterfactual c { do(X = "dog") } }', encoding="utf-8")
    estimated = runner.invoke(app, ["lint", str(spec)])
    assert estimated.exit_code == 0
    exact = runner.invoke(app, ["lint", str(spec), "--tokenizer", str(tok), "--format", "json"])
    assert exact.exit_code == 1
    messages = [d["message"] for d in json.loads(exact.stdout) if d["name"] == "prompt-too-long"]
    assert messages and "estimated" not in messages[0]
    missing = runner.invoke(app, ["lint", str(spec), "--tokenizer", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "tokenizer" in missing.output


def test_codes_lists_every_code() -> None:
    result = runner.invoke(app, ["codes", "--format", "json"])
    listed = json.loads(result.stdout)
    assert [c["code"] for c in listed] == [c.code for c in ALL_CODES]
    assert {c["name"] for c in listed} >= {
        "syntax-error", "undefined-variable", "duplicate-variable", "duplicate-edge",
        "self-loop", "cycle", "empty-graph", "unknown-intervention-target", "no-op-intervention",
        "too-many-interventions", "non-minimal-change", "unexplained-graph-change",
        "span-not-in-prompt", "replace-length-mismatch", "prompt-too-long"}
    assert all(c["severity"] in ("error", "warning", "note") for c in listed)


@pytest.mark.parametrize("entry", [
    [sys.executable, "cli.py"],
    [sys.executable, "-m", "cfspec"],
    [str(Path(sys.executable).parent / "cfspec")],
])
def test_entry_points_agree(entry: list[str]) -> None:
    result = subprocess.run([*entry, "lint", "specs/invalid/cycle.scm", "--format", "concise"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        "specs/invalid/cycle.scm:7:3: SCM201 [cycle] cycle W -> A -> K -> W")

# The codes table of the docs (docs/codes.md) is checked in tests/test_docs.py.
