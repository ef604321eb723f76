"""`cfspec explain`: every code has an explanation with a failing and a fixed example, and the
examples do what they say."""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

import pytest
from photo_files import png_bytes
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.diagnostics.codes import ALL_CODES, BY_NAME, Code, Severity
from cfspec.diagnostics.explain import explanation, explanation_text
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lint import check

# Codes that no .scm text can trigger, so their examples are not linted:
NOT_FROM_SCM_TEXT = {
    "invalid-encoding",  # the bytes of a file, before there is text
    "file-too-large",  # the size of a file, before it is read
    "unexplained-graph-change",  # only `cfspec import` of an LLM's JSON answer
    "multiple-graphs",  # only `cfspec import` of an LLM's free-text answer
    "extra-counterfactuals",  # only `cfspec import` of a row with several counterfactuals
    "internal-error",  # a bug in cfspec, not a property of any spec
    "invalid-pairs-file",  # pairs.jsonl, read back by the generator
    "invalid-manifest",  # manifest.jsonl, read back by evaluate, filter, export and report
    "invalid-metrics-file",  # metrics.jsonl, read back by filter, export and report
    "invalid-filter-file",  # filter.jsonl, read back by export and report
    "damaged-file",  # an image or .npz under OUT/images, checked by evaluate, export, report
    "invalid-answers-file",  # answers.jsonl, read back by export and report
}

_EXAMPLES = tempfile.TemporaryDirectory(prefix="cfspec-explain-")
FAILING, FIXED = "## Failing example", "## Fixed example"
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.M | re.S)


def sections(code: Code) -> tuple[str, str, str]:
    """(prose, failing section, fixed section) of a code's explanation."""
    text = explanation_text(code)
    assert text.count(FAILING) == 1 and text.count(FIXED) == 1, code.name
    prose, rest = text.split(FAILING)
    failing, fixed = rest.split(FIXED)
    return prose, failing, fixed


def blocks(section: str, lang: str | None = None) -> list[str]:
    return [m["body"] for m in _FENCE.finditer(section) if lang is None or m["lang"] == lang]


@functools.cache
def example_folder() -> Path:
    """Where the examples are linted: the files their `image` lines name (a photo, a text
    file) lie there, so a fixed example's photo is found and a failing one's is not. Removed
    when the test run ends (the cached object holds it)."""
    folder = Path(_EXAMPLES.name)
    (folder / "000000158956.jpg").write_bytes(png_bytes())
    (folder / "captions.txt").write_text("a woman is cutting a cake\n", encoding="utf-8")
    return folder


def lint(text: str) -> list[tuple[str, Severity]]:
    parsed = check(SourceFile(str(example_folder() / "example.scm"), text), Config())
    return [(d.code.name, d.level) for d in parsed.diagnostics]


SCM_CODES = [c for c in ALL_CODES if c.name not in NOT_FROM_SCM_TEXT]


def test_exempt_codes_exist() -> None:
    assert NOT_FROM_SCM_TEXT <= {c.name for c in ALL_CODES}


@pytest.mark.parametrize("code", ALL_CODES, ids=lambda c: c.name)
def test_explanation_shape(code: Code) -> None:
    prose, failing, fixed = sections(code)
    assert len(prose.split()) >= 25, f"{code.name}: say what it means and why it matters"
    assert blocks(failing) and blocks(fixed), f"{code.name}: each example needs a fenced block"
    assert blocks(failing, "scm") and blocks(fixed, "scm"), f"{code.name}: show the spec"
    assert text_ends_cleanly(explanation_text(code))


def text_ends_cleanly(text: str) -> bool:
    return text.endswith("```\n") and "\t" not in text


@pytest.mark.parametrize("code", ALL_CODES, ids=lambda c: c.name)
def test_cli_explain_by_code_and_name(code: Code) -> None:
    runner = CliRunner()
    for key in (code.code, code.name, code.code.lower(), code.name.upper()):
        result = runner.invoke(app, ["explain", key])
        assert result.exit_code == 0, result.output
        assert result.output == explanation(code) + "\n"
        assert result.output.startswith(f"{code.code} {code.name} ({code.severity.value})")
        assert FAILING in result.output and FIXED in result.output


@pytest.mark.parametrize("key", ["SCM999", "no-such-code", "SCM"])
def test_cli_explain_unknown(key: str) -> None:
    result = CliRunner().invoke(app, ["explain", key])
    assert result.exit_code == 2
    assert "unknown code" in result.output


@pytest.mark.parametrize("code", SCM_CODES, ids=lambda c: c.name)
def test_failing_example_fires(code: Code) -> None:
    _, failing, _ = sections(code)
    (example,) = blocks(failing, "scm")
    names = [name for name, _ in lint(example)]
    assert code.name in names, f"{code.name}'s failing example gives {names}"


@pytest.mark.parametrize("code", SCM_CODES, ids=lambda c: c.name)
def test_fixed_example_is_clean(code: Code) -> None:
    _, _, fixed = sections(code)
    (example,) = blocks(fixed, "scm")
    found = lint(example)
    assert code.name not in [name for name, _ in found], found
    assert not [f for f in found if f[1] is Severity.ERROR], found


@pytest.mark.parametrize("code", [c for c in ALL_CODES if c.name in NOT_FROM_SCM_TEXT],
                         ids=lambda c: c.name)
def test_other_examples_are_valid_specs(code: Code) -> None:
    """Their problem is not in the spec, so every spec they show lints without errors."""
    _, failing, fixed = sections(code)
    for example in blocks(failing, "scm") + blocks(fixed, "scm"):
        found = lint(example)
        assert not [f for f in found if f[1] is Severity.ERROR], found


# Codes that only `cfspec import` reports: their examples show the LLM's own answer.
IMPORTED = {"unexplained-graph-change": "json", "multiple-graphs": "text"}


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_imported_examples_fire_through_the_importer(name: str) -> None:
    from cfspec.importers import import_source

    text = explanation_text(BY_NAME[name])
    failing, fixed = text.split(FIXED, 1)
    lang = IMPORTED[name]

    def names(section: str) -> set[str]:
        block = next(m.group("body") for m in _FENCE.finditer(section) if m.group("lang") == lang)
        source = SourceFile(f"answer.{'json' if lang == 'json' else 'txt'}", block)
        items = import_source(source, options=None)
        return {d.code.name for item in items for d in item.diagnostics}

    assert name in names(failing)
    assert name not in names(fixed)
