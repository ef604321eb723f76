"""Many files, one repeated finding: text output shows a few and counts the rest, the machine
formats keep every item, and compile takes lint's --select/--ignore."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.diagnostics.views import FOLD_EACH, FOLD_FILES

runner = CliRunner()

# No edges: `empty-graph`, a warning, and nothing else.
NO_GRAPH = ('scm s{i} {{\n  id "p{i}"\n  prompt "a {{{{ D }}}} on a sofa"\n  var D = "dog"\n'
            '  counterfactual cat {{ do(D = "cat") }}\n}}\n')


def many_specs(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        (folder / f"s{i:03}.scm").write_text(NO_GRAPH.format(i=i), encoding="utf-8")
    return folder


def test_compile_of_300_specs_with_one_shared_warning_is_short(tmp_path: Path) -> None:
    specs = many_specs(tmp_path / "specs", 300)
    result = runner.invoke(app, ["compile", str(specs), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) < 60
    assert lines.count("warning[SCM205]: the causal graph has no edges  [empty-graph]") \
        == FOLD_FILES or sum("[empty-graph]" in line for line in lines) == FOLD_FILES
    [summary] = [line for line in lines if line.startswith("... and ")]
    assert summary.startswith(f"... and {300 - FOLD_FILES:,} more `empty-graph` warnings")
    assert "--ignore empty-graph hides them" in summary
    assert "wrote 300 pair(s)" in result.output


def test_ignore_hides_and_json_keeps_every_item(tmp_path: Path) -> None:
    specs = many_specs(tmp_path / "specs", 12)
    quiet = runner.invoke(app, ["compile", str(specs), "-o", str(tmp_path / "a"),
                                "--ignore", "empty-graph"])
    assert quiet.exit_code == 0, quiet.output
    assert "empty-graph" not in quiet.output
    assert "All checks passed." in quiet.output
    full = runner.invoke(app, ["compile", str(specs), "-o", str(tmp_path / "b"),
                               "--format", "json", "--quiet"])
    assert len(json.loads(full.stdout)) == 12
    concise = runner.invoke(app, ["compile", str(specs), "-o", str(tmp_path / "c"),
                                  "--format", "concise", "--quiet"])
    assert sum("empty-graph" in line for line in concise.stdout.splitlines()) == 12


def test_select_is_checked_as_lints(tmp_path: Path) -> None:
    specs = many_specs(tmp_path / "specs", 2)
    typo = runner.invoke(app, ["compile", str(specs), "-o", str(tmp_path / "o"),
                               "--ignore", "empty-grahp"])
    assert typo.exit_code == 2
    assert "empty-grahp" in typo.output
    only = runner.invoke(app, ["compile", str(specs), "-o", str(tmp_path / "o"),
                               "--select", "cycle"])
    assert only.exit_code == 0 and "empty-graph" not in only.output


def test_one_code_many_times_in_one_file_is_shown_then_counted(tmp_path: Path) -> None:
    """An imported answer with 60 variables the caption does not show: 60 warnings of one code
    in one file are shown FOLD_EACH times and counted; concise and JSON keep them all."""
    edges = [f"V{i} -> V{i + 1}: x" for i in range(59)]
    answer = tmp_path / "chain.json"
    answer.write_text(json.dumps({"original_prompt": "A woman cuts a cake.",
                                  "counterfactual_prompt": "A man cuts a cake.",
                                  "SCM": edges}), encoding="utf-8")
    text = runner.invoke(app, ["import", str(answer), "-o", str(tmp_path / "a")])
    assert text.output.count("[span-not-in-prompt]") == FOLD_EACH, text.output
    [summary] = [line for line in text.output.splitlines() if line.startswith("... and ")]
    assert summary.startswith(f"... and {60 - FOLD_EACH} more `span-not-in-prompt` warnings")
    assert "in chain.json" in summary or str(answer) in summary
    concise = runner.invoke(app, ["import", str(answer), "-o", str(tmp_path / "b"),
                                  "--format", "concise"])
    assert concise.output.count("span-not-in-prompt") == 60
    few = runner.invoke(app, ["import", str(answer), "-o", str(tmp_path / "c"),
                              "--select", "non-minimal-change"])
    assert "... and" not in few.output


def test_few_files_are_never_folded(tmp_path: Path) -> None:
    specs = many_specs(tmp_path / "specs", FOLD_FILES)
    result = runner.invoke(app, ["lint", str(specs)])
    assert "... and" not in result.output
    assert result.output.count("[empty-graph]") == FOLD_FILES


def test_an_ignored_error_is_shown_and_its_spec_not_written(
        tmp_path: Path) -> None:
    spec = tmp_path / "u.scm"  # a placeholder with no variable: no words to put in
    spec.write_text('scm u {\n  prompt "a {{ D }} on a {{ K }}"\n  var D = "dog"\n'
                    '  counterfactual c { do(D = "cat") }\n}\n', encoding="utf-8")
    result = runner.invoke(app, ["compile", str(spec), "-o", str(tmp_path / "o"),
                                 "--ignore", "undefined-variable"])
    assert result.exit_code == 1
    assert "[undefined-variable]" in result.output
    assert "shown although ignored" in result.output
    assert "internal-error" not in result.output
