"""Jinja2, sandboxed: prompt templates and the output templates in templates/.

Prompt templates were already restricted to `{{ VAR }}` / `{{ VAR | filter }}` by the checks;
rendering them here again in a SandboxedEnvironment with StrictUndefined is the second wall, so
a template that slipped through can still only fail, never run code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from cfspec import resources
from cfspec.lang.prompt import FILTERS, REMOVED, close_gaps


def templates_dir() -> Path:
    return resources.require("templates")


class RenderError(ValueError):
    pass


@functools.cache
def _prompt_env() -> SandboxedEnvironment:
    # A caption may end with a newline; Jinja would drop it, and the two renderers disagree.
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                               keep_trailing_newline=True)
    # Nothing else is reachable. A removed variable's mark passes through its filters.
    env.filters = {name: _keep_removed(FILTERS[name]) for name in FILTERS}
    env.globals = {}
    return env


def _keep_removed(fn: Callable[[str], str]) -> Callable[[str], str]:
    return lambda value: value if value == REMOVED else fn(value)


def render_prompt(template: str, values: Mapping[str, str | None]) -> str:
    """Render a prompt template. The text is kept as written; a removed variable (None) takes
    one space with it, by the same rule as cfspec's own renderer (`prompt.close_gaps`)."""
    try:
        text = _prompt_env().from_string(template).render(
            {k: (REMOVED if v is None else v) for k, v in values.items()}
        )
    except TemplateError as error:
        raise RenderError(f"the prompt template does not render: {error}") from error
    return close_gaps(text)[0]


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
