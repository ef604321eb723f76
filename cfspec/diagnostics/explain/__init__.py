"""Long explanations of each diagnostic (`cfspec explain`), one Markdown file per code name.
Each holds a failing and a fixed example in ```scm blocks; tests lint both."""

from __future__ import annotations

from importlib import resources

from cfspec.diagnostics.codes import Code


def explanation_text(code: Code) -> str:
    path = resources.files(__package__).joinpath(f"{code.name}.md")
    return path.read_text(encoding="utf-8")


def explanation(code: Code) -> str:
    return f"{code.code} {code.name} ({code.severity.value}): {code.summary}\n\n" + \
        explanation_text(code).strip() + "\n"
