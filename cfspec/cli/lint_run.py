"""The body of `cfspec lint`, shared by the Typer command and the fast path (fast.py).

Typer-free: editors and pre-commit run `cfspec lint` on every save, and loading the CLI
machinery (typer, and pydantic through it) would cost more than the lint itself."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, error, format_problem, use_color

if TYPE_CHECKING:
    from cfspec.lang.config import Config


def split_selectors(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """`--select A,B --select C` -> ("A", "B", "C"); None when not given."""
    if not values:
        return None
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def selected_config(select: Sequence[str] | None, ignore: Sequence[str] | None,
                    max_interventions: int | None = None, images: str | None = None) -> Config:
    """The project's configuration with the command line's --select, --ignore,
    --max-interventions and --images on top (lint and compile take the same flags). Raises
    ConfigError."""
    from pathlib import Path

    from cfspec.lang.config import ConfigError, check_selectors, load_config

    for flag, given in (("--select", select), ("--ignore", ignore)):
        if given and not split_selectors(given):  # `--select ""` would silence every check
            raise ConfigError(f"{flag}: empty; name codes, names or prefixes "
                              f"(e.g. {flag} cycle)")
    check_selectors(split_selectors(select), "--select")
    check_selectors(split_selectors(ignore), "--ignore")
    if images is not None and not Path(images).is_dir():
        raise ConfigError(f"--images {images}: no such folder; name the folder that holds the "
                          "specs' photos")
    return load_config().merged(select=split_selectors(select), ignore=split_selectors(ignore),
                                max_interventions=max_interventions,
                                images=None if images is None else Path(images))


def run_lint(paths: Sequence[str], fmt: str = "text", select: Sequence[str] | None = None,
             ignore: Sequence[str] | None = None, tokenizer: str | None = None,
             max_interventions: int | None = None, quiet: bool = False,
             no_color: bool = False, fix: bool = False, unsafe_fixes: bool = False,
             images: str | None = None) -> int:
    """Lint `paths`, print the diagnostics (and a summary line); the exit status. With `fix`
    (or `unsafe_fixes`, which implies it), apply the fixes first and report what remains."""
    from cfspec.diagnostics.records import has_errors
    from cfspec.diagnostics.views import render, summary_line
    from cfspec.lang.config import ConfigError
    from cfspec.lint import UsageError, lint, lint_fix

    problem = format_problem(fmt)
    if problem is not None:
        return error(problem)
    try:
        config = selected_config(select, ignore, max_interventions, images)
        if fix or unsafe_fixes:
            fixed = lint_fix(list(paths), config, tokenizer, unsafe=unsafe_fixes)
            result, applied = fixed.result, fixed.applied
        else:
            result, applied = lint(list(paths), config, tokenizer), {}
    except (UsageError, ConfigError) as problem:
        return error(str(problem))
    diagnostics = result.diagnostics
    sys.stdout.write(render(diagnostics, fmt, color=use_color(no_color)))
    if fmt in ("text", "concise") and not quiet:
        checked = len(result.files)
        plural = "s" if checked != 1 else ""
        if fix or unsafe_fixes:
            count = sum(applied.values())
            # An unsafe fix left unapplied is worth a word: the user may want it.
            unsafe = 0 if unsafe_fixes else sum(
                1 for d in diagnostics if d.fix is not None and not d.fix.safe)
            more = f" ({unsafe} more with --unsafe-fixes)" if unsafe else ""
            sys.stdout.write(f"fixed {count} problem{'s' if count != 1 else ''} in "
                             f"{len(applied)} file{'s' if len(applied) != 1 else ''}{more}\n")
        sys.stdout.write(f"{summary_line(diagnostics)} ({checked} file{plural} checked)\n")
    sys.stdout.flush()
    return EXIT_ERRORS if has_errors(diagnostics) else EXIT_OK
