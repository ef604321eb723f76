"""Jinja2, sandboxed: the output templates in templates/ (the HTML report, the dataset card).

Prompt templates are not rendered here: `cfspec.lang.prompt.render` is their one renderer. Their
language is a strict subset of Jinja's (`{{ VAR }}` and `{{ VAR | filter }}`, anything else is a
`template-error`), and that renderer only looks names up and applies the fixed FILTERS, so a
prompt can never run code; the tests check against Jinja that the subset means what it means
there. A second renderer that must agree with the first is how captions with their own
whitespace became internal errors (Jinja drops a trailing newline, normalizes `\r\n`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from cfspec import resources


def templates_dir() -> Path:
    return resources.require("templates")


@functools.cache
def output_env() -> SandboxedEnvironment:
    """The environment for templates/: sandboxed, strict, HTML autoescaped by file name."""
    from jinja2 import FileSystemLoader, select_autoescape

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        # select_autoescape looks at the last suffix only: `report.html.j2` must be named.
        autoescape=select_autoescape(
            ("html", "htm", "xml", "svg", "html.j2", "htm.j2", "xml.j2", "svg.j2")
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["dot"] = dot_string
    return env


def dot_string(value: object) -> str:
    """A Graphviz double-quoted string: quotes and backslashes escaped, newlines as \\n."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def render_template(template: str, **context: object) -> str:
    return output_env().get_template(template).render(**context)
