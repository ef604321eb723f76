"""`cfspec questions SPEC...`: the yes/no questions each counterfactual's images are asked
(cfspec.questions), for a user to read and correct with `ask`. Exit codes as lint's."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, fail

QUESTION_FORMATS = ("text", "json")


def questions_command(
    paths: Annotated[list[str], typer.Argument(help=".scm files or folders; - reads stdin.",
                                               metavar="SPEC...")],
    fmt: Annotated[str, typer.Option("--format", help="text or json.", metavar="FORMAT")]
    = "text",
) -> None:
    """Print the yes/no questions about each counterfactual's images, built from the spec:
    per variable in a prompt, asked with the factual and the counterfactual words, with the
    questions it depends on and what the causal graph expects. A spec with errors gets none;
    its diagnostics go to stderr. Exit 0: no errors; 1: errors; 2: usage or I/O error."""
    from cfspec.compile.pairs import pair_id
    from cfspec.diagnostics.records import has_errors
    from cfspec.diagnostics.views import render
    from cfspec.lang.config import ConfigError, load_config
    from cfspec.lint import UsageError, lint
    from cfspec.questions.build import build
    from cfspec.questions.view import Asked, render_text

    if fmt not in QUESTION_FORMATS:
        raise fail(f"unknown --format {fmt!r}; choose one of {', '.join(QUESTION_FORMATS)}")
    try:
        result = lint(paths, load_config())
    except (UsageError, ConfigError) as problem:
        raise fail(str(problem)) from None
    entries = [
        Asked(parsed.source.name, model.spec.name.text,
              pair_id(model.spec.spec_id, cm.node.name.text), cm.node.name.text,
              model.prompt_0.text, cm.prompt_1.text, build(model, cm))
        for parsed in result.files for model in parsed.models
        if not parsed.spec_has_errors(model.spec)
        for cm in model.counterfactuals
        if model.prompt_0 is not None and cm.prompt_1 is not None
    ]
    diagnostics = result.diagnostics
    if fmt == "json":
        sys.stdout.write(json.dumps({"pairs": [e.to_json() for e in entries],
                                     "diagnostics": json.loads(render(diagnostics, "json"))},
                                    ensure_ascii=False, indent=2) + "\n")
    else:
        if diagnostics:  # apart from the questions, as lint's blocks are from each other
            sys.stderr.write(render(diagnostics, "text") + "\n")
        sys.stdout.write(render_text(entries))
    raise typer.Exit(EXIT_ERRORS if has_errors(diagnostics) else EXIT_OK)
