"""`cfspec lint ...` without the CLI machinery: editors and pre-commit run it on every save.

Typer builds a Pydantic adapter for each option when a command runs, and importing typer and
pydantic costs more than parsing and checking a spec. The plain forms of `cfspec lint` are
read here with the standard library and run through the same body as the Typer command
(lint_run.py). Anything else (help, an unknown option, a missing or bad value, `--`) is left
to Typer, so its messages and exit codes stay the only ones a user sees for a mistake.
tests/test_startup.py runs a matrix of command lines both ways and compares the results."""

from __future__ import annotations

from collections.abc import Sequence

# option -> the keyword of run_lint it sets; flags take no value.
_VALUED = {"--format": "fmt", "--select": "select", "--ignore": "ignore",
           "--tokenizer": "tokenizer", "--max-interventions": "max_interventions",
           "--images": "images"}
_REPEATED = {"select", "ignore"}
_FLAGS = {"--quiet": "quiet", "-q": "quiet", "--no-color": "no_color"}


def parse_lint(args: Sequence[str]) -> dict[str, object] | None:
    """The run_lint keywords for `cfspec lint ARGS`, or None to leave the line to Typer."""
    kwargs: dict[str, object] = {}
    paths: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, eq, inline = arg.partition("=")
        if name in _VALUED:
            if eq:
                value = inline
            elif rest and not rest[0].startswith("-"):
                value = rest.pop(0)
            else:
                return None
            key = _VALUED[name]
            if key in _REPEATED:
                kwargs.setdefault(key, [])
                kwargs[key].append(value)  # type: ignore[attr-defined]
            elif key == "max_interventions":
                if not (value.isascii() and value.isdigit()) or int(value) < 1:
                    return None
                kwargs[key] = int(value)
            else:
                kwargs[key] = value
        elif arg in _FLAGS and not eq:
            kwargs[_FLAGS[arg]] = True
        elif arg == "-" or not arg.startswith("-"):
            paths.append(arg)
        else:
            return None  # --help, --, an unknown or misspelt option: Typer says what is wrong
    if not paths:
        return None
    return {"paths": paths, **kwargs}


def try_fast(argv: Sequence[str]) -> int | None:
    """The exit status of `cfspec ARGV` when it could be run here, else None."""
    if not argv or argv[0] != "lint":
        return None
    kwargs = parse_lint(argv[1:])
    if kwargs is None:
        return None
    from cfspec.cli.lint_run import run_lint

    return run_lint(**kwargs)  # type: ignore[arg-type]
