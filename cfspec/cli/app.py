"""Command line: arguments -> cfspec API -> report. Thin on purpose; heavy modules are
imported inside the commands that need them so `cfspec lint` starts fast."""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cfspec import __version__
from cfspec.cli.common import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    check_format,
    fail,
    io_fail,
    use_color,
)
from cfspec.cli.generate import generate_command
from cfspec.cli.options import (
    FormatOption,
    IgnoreOption,
    ImagesOption,
    SelectOption,
    borrow_flags,
)
from cfspec.cli.stages import evaluate_command, export_command, filter_command, report_command
from cfspec.pipeline import NOT_RUN_FLAGS

app = typer.Typer(
    name="cfspec",
    help="Declarative, checked structural causal models for counterfactual image-text data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich's panels show a `<bool>` or `<list[str]>` type column for
    # every option, which says nothing to a user; `tidy_help` gives placeholders that do.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"cfspec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """cfspec: lint, format and compile .scm specs."""


def _why_not_written(path: Path, error: OSError) -> str:
    """An OSError on writing `path`, said the way a user can act on it."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder"
            break
    return str(error.strerror or error)




@app.command()
def lint(
    paths: Annotated[list[str], typer.Argument(help=".scm files or folders; - reads stdin.")],
    fmt: FormatOption = "text",
    select: SelectOption = None,
    ignore: IgnoreOption = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="CLIP tokenizer folder or cached hub id, for exact counts.")
    ] = None,
    max_interventions: Annotated[
        int | None,
        typer.Option(min=1, help="Independent interventions allowed per counterfactual."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="Never colour the output.")] = False,
    fix: Annotated[bool, typer.Option("--fix", help="Apply the safe fixes, rewriting the files; "
                                      "report what remains.")] = False,
    unsafe_fixes: Annotated[bool, typer.Option(
        "--unsafe-fixes", help="Apply the unsafe fixes too (implies --fix).")] = False,
    images: ImagesOption = None,
) -> None:
    """Parse and check .scm files. Exit 0: no errors; 1: errors; 2: usage or I/O error.
    With --fix, the exit status is by what remains after fixing."""
    from cfspec.cli.lint_run import run_lint

    raise typer.Exit(run_lint(paths, fmt, select, ignore, tokenizer, max_interventions, quiet,
                              no_color, fix, unsafe_fixes, images))


@app.command()
def fmt(
    paths: Annotated[list[str], typer.Argument(help=".scm files or folders; - reads stdin.")],
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if a file would change.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Print a diff instead of writing.")] = False,
    output_format: FormatOption = "text",
) -> None:
    """Format .scm files canonically, in place (keeps comments; refuses files that do not
    parse, and any result not proven equivalent and stable). Exit 1 with --check/--diff when a
    file would change; 2 when one cannot be read, does not parse or is refused."""
    import difflib

    from cfspec.diagnostics.views import render
    from cfspec.fmt import format_source
    from cfspec.lang.config import ConfigError, load_config
    from cfspec.lint import STDIN, UsageError, discover, read
    from cfspec.workspace.atomic import rewrite_in_place

    check_format(output_format)
    try:
        config = load_config()
        names = list(discover(paths, config))
    except (UsageError, ConfigError) as error:
        raise fail(str(error)) from None
    changed, broken = [], []
    for name in names:
        try:
            parsed = read(name, config)
        except UsageError as error:
            raise fail(str(error)) from None
        formatted, problems = (None, parsed.diagnostics) if parsed.diagnostics \
            else format_source(parsed.source)
        if formatted is None:
            broken.extend(problems)
            continue
        original = parsed.source.text
        if name == STDIN and not (check or diff):
            sys.stdout.write(formatted)
            continue
        if formatted == original:
            continue
        changed.append(name)
        if diff:
            sys.stdout.writelines(difflib.unified_diff(
                original.splitlines(keepends=True), formatted.splitlines(keepends=True),
                fromfile=f"{name} (original)", tofile=f"{name} (formatted)"))
        elif check:
            typer.echo(f"would reformat {name}")
        else:
            try:
                rewrite_in_place(Path(name), formatted)
            except OSError as error:
                raise io_fail(error) from None
    if broken:
        sys.stderr.write(render(broken, output_format, color=use_color(False)))
    failed = len({d.file for d in broken})
    refused = len({d.file for d in broken if d.code.name == "internal-error"})
    if output_format in ("text", "concise") and names != [STDIN]:
        verb = "would be reformatted" if (check or diff) else "reformatted"
        typer.echo(
            f"{len(changed)} file(s) {verb}, {len(names) - len(changed) - failed} unchanged"
            + (f", {failed - refused} not formatted (they do not parse)"
               if failed - refused else "")
            + (f", {refused} refused (a formatter bug, left untouched)" if refused else ""),
            err=True,
        )
    if broken:
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(EXIT_ERRORS if changed and (check or diff) else EXIT_OK)


@app.command()
def codes(
    output_format: Annotated[
        str, typer.Option("--format", help="text, json or markdown.")
    ] = "text",
) -> None:
    """List every diagnostic code."""
    import json

    from cfspec.diagnostics.codes import ALL_CODES, markdown_table

    if output_format == "markdown":
        typer.echo(markdown_table(), nl=False)
        return
    if output_format == "json":
        typer.echo(json.dumps([
            {"code": c.code, "name": c.name, "severity": c.severity.value, "summary": c.summary}
            for c in ALL_CODES
        ], indent=2))
        return
    if output_format != "text":
        raise fail(f"unknown --format {output_format!r}; choose text, json or markdown")
    for c in ALL_CODES:
        typer.echo(f"{c.code}  {c.name:<30} {c.severity.value:<8} {c.summary}")


@app.command()
def explain(
    code: Annotated[str, typer.Argument(help="A code (SCM201) or a name (cycle).")],
) -> None:
    """Explain a diagnostic, with a failing and a fixed example."""
    from cfspec.diagnostics.codes import lookup
    from cfspec.diagnostics.explain import explanation

    found = lookup(code)
    if found is None:
        raise fail(f"unknown code {code!r}; `cfspec codes` lists them all")
    typer.echo(explanation(found))


@app.command(name="compile")
def compile_command(
    paths: Annotated[list[str], typer.Argument(help=".scm files or folders; - reads stdin.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for pairs.jsonl.")],
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Compile the valid specs even if others fail.")
    ] = False,
    fmt: FormatOption = "text",
    select: SelectOption = None,
    ignore: IgnoreOption = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="CLIP tokenizer folder or cached hub id, for token maps.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="Never colour the output.")] = False,
    images: ImagesOption = None,
) -> None:
    """Compile specs into OUT/pairs.jsonl: paired prompts and Prompt-to-Prompt edit maps.
    Exit as lint; nothing is written when a spec has errors, unless --keep-going. --select and
    --ignore choose the checks as in lint (an ignored error no longer stops a spec)."""
    from cfspec.cli.lint_run import selected_config
    from cfspec.compile.stage import compile_paths
    from cfspec.diagnostics.records import has_errors
    from cfspec.diagnostics.views import render, summary_line
    from cfspec.lang.config import ConfigError
    from cfspec.lint import UsageError

    check_format(fmt)
    try:
        result = compile_paths(paths, selected_config(select, ignore, images=images), out,
                               keep_going=keep_going, tokenizer=tokenizer)
    except (UsageError, ConfigError) as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"{out}: {error.strerror or error}") from None
    sys.stdout.write(render(result.diagnostics, fmt, color=use_color(no_color)))
    if fmt in ("text", "concise") and not quiet:
        typer.echo(summary_line(result.diagnostics), err=True)
        if result.written is not None:
            typer.echo(f"wrote {len(result.pairs)} pair(s) to {result.written}", err=True)
        else:
            typer.echo("nothing written: fix the errors or pass --keep-going", err=True)
    raise typer.Exit(EXIT_ERRORS if has_errors(result.diagnostics) else EXIT_OK)


@app.command()
def graph(
    spec_file: Annotated[Path, typer.Argument(help="A .scm file.", metavar="SPEC")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=".dot, .svg or .png; default: stdout.")
    ] = None,
    spec_name: Annotated[
        str | None, typer.Option("--spec", help="Which spec of the file (default: the first).")
    ] = None,
) -> None:
    """Draw a spec's causal graph with each counterfactual overlaid, as Graphviz DOT (SVG or PNG
    when Graphviz's `dot` is installed)."""
    from cfspec.compile.dot import GraphvizMissing, spec_dot, write_graph
    from cfspec.diagnostics.records import has_errors
    from cfspec.diagnostics.views import render
    from cfspec.lang.config import load_config
    from cfspec.lint import UsageError, read
    from cfspec.lint import check as run_check

    config = load_config()
    try:
        parsed = read(str(spec_file), config)
    except UsageError as error:
        raise fail(str(error)) from None
    if not parsed.diagnostics:
        parsed = run_check(parsed.source, config)
    if parsed.module is None:
        sys.stderr.write(render(parsed.diagnostics, "text"))
        raise typer.Exit(EXIT_ERRORS)
    models = [m for m in parsed.models if spec_name in (None, m.spec.name.text, m.spec.spec_id)]
    if not models:
        raise fail(f"{spec_file}: no spec named {spec_name!r}" if spec_name
                    else f"{spec_file}: no spec in the file")
    dot = spec_dot(models[0])
    # The graph is drawn even when the spec has errors (a cycle is easiest to see drawn), but
    # the errors are reported and the exit status says so, as lint's would.
    problems = [d for d in parsed.diagnostics
                if models[0].spec.span.start <= d.span.start < models[0].spec.span.end]
    if problems:
        sys.stderr.write(render(problems, "text"))
    status = EXIT_ERRORS if has_errors(problems) else EXIT_OK
    if output is None:
        sys.stdout.write(dot)
        raise typer.Exit(status)
    try:
        write_graph(dot, output)
    except GraphvizMissing as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"{output}: {_why_not_written(output, error)}") from None
    typer.echo(f"wrote {output}", err=True)
    raise typer.Exit(status)


@app.command()
def prompt(
    caption: Annotated[str, typer.Argument(help="The image caption to model.")],
    shape: Annotated[str, typer.Option(help="Answer shape asked for: scm or json.")] = "scm",
    counterfactuals: Annotated[int, typer.Option(min=1, max=5, help="How many to ask for.")] = 1,
    examples: Annotated[int, typer.Option(min=0, max=5, help="Few-shot examples.")] = 2,
) -> None:
    """Print the instruction that asks an LLM for a spec of CAPTION (few-shot from specs/)."""
    from cfspec.importers.instruction import instruction

    if shape not in ("scm", "json"):
        raise fail(f"unknown --shape {shape!r}; choose scm or json")
    if shape == "json" and counterfactuals > 1:
        raise fail("the JSON shape holds one counterfactual; use --shape scm for more")
    sys.stdout.write(instruction(caption, shape=shape, count=counterfactuals, examples=examples))


@app.command(name="run")
@borrow_flags(generate_command, evaluate_command, filter_command, skip=NOT_RUN_FLAGS)
def run_command(
    paths: Annotated[list[str], typer.Argument(help=".scm files or folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The run folder.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    images: ImagesOption = None,
    **flags: Any,
) -> None:
    """Lint, compile, generate, evaluate, filter, export (hf, to OUT/dataset) and report, in
    one go; takes the options of generate, evaluate and filter. Checks the device and those
    options before anything, and the models and OUT before the first image. Stops at the first
    stage that cannot go on; exits as compile and generate, and 1 when nothing is exported."""
    from cfspec.pipeline import (
        STAGES,
        RunOptions,
        arguments,
        final_status,
        nothing_exported,
        stop_after,
    )
    from cfspec.workspace.layout import DATASET_DIR, REPORT_FILE

    commands: dict[str, Callable[..., None]] = {
        "compile": compile_command, "generate": generate_command,
        "evaluate": evaluate_command, "filter": filter_command,
        "export": export_command, "report": report_command}
    options = RunOptions(tuple(paths), out, flags, quiet, images)
    _check_device(flags["device"])  # before anything is compiled: the cheapest way to be wrong
    _check_options(flags)
    statuses: dict[str, int] = {}
    for name in STAGES:
        if name == "generate":  # everything the later stages need, before the first image
            _check_run(out, flags)
        typer.echo(f"== {name}", err=True)
        command = commands[name]
        args, kwargs = arguments(name, options, inspect.signature(command).parameters)
        try:
            command(*args, **kwargs)
            statuses[name] = EXIT_OK
        except typer.Exit as done:
            statuses[name] = int(done.exit_code)
        stop = stop_after(name, statuses[name], out, statuses)
        if stop is not None:
            raise typer.Exit(stop)
    empty = statuses.get("export") == EXIT_ERRORS and nothing_exported(out)
    if empty:
        typer.echo(f"cfspec: nothing exported to {out / DATASET_DIR}: every pair was left out "
                   "(see the export's reasons above and the report)", err=True)
    typer.echo(f"report: {out / REPORT_FILE}", err=True)
    raise typer.Exit(final_status(statuses, nothing_exported=empty))


def _check_options(flags: dict[str, Any]) -> None:
    """Generate's and evaluate's options pass their class's check (stages.options), and the
    filter's gates parse, or run stops before compile with the message each of those commands
    would give."""
    from cfspec.gpu.device import pick
    from cfspec.stages.filter import load_gates
    from cfspec.stages.options import EvaluateOptions, GenerateOptions, OptionError
    from cfspec.workspace.reading import StageError

    def fields_of(options: type[Any]) -> dict[str, Any]:
        names = {f.name for f in dataclasses.fields(options)}
        return {name: value for name, value in flags.items() if name in names}

    try:
        GenerateOptions(**fields_of(GenerateOptions)).check(pick(flags["device"]))
        # (A missing --inception-weights file is run_problems', listed with the models'.)
        EvaluateOptions(**{**fields_of(EvaluateOptions), "inception_weights": None}).check()
        load_gates(bounds=tuple(flags["gate"] or ()), min_clip=flags["min_clip"],
                   min_directional=flags["min_directional"],
                   min_image_similarity=flags["min_image_similarity"])
    except (OptionError, StageError) as error:
        raise fail(str(error)) from None


def _check_device(device: str) -> None:
    """`--device` is one this machine has (stages.preflight), or run stops before compile."""
    from cfspec.stages.preflight import device_problems

    problems = device_problems(device)
    if problems:  # one line, as in every command that takes --device
        raise fail(problems[0])


def _check_run(out: Path, flags: dict[str, Any]) -> None:
    """Everything the later stages need, checked before the first image (stages.preflight)."""
    from cfspec.stages.preflight import run_problems

    problems = run_problems(out, model=flags["model"], clip_model=flags["clip_model"],
                            vqa_model=flags["vqa_model"],
                            inception_weights=flags["inception_weights"])
    for problem in problems:
        typer.echo(f"cfspec: error: {problem}", err=True)
    if problems:
        typer.echo("nothing generated: fix the above, then run again", err=True)
        raise typer.Exit(EXIT_USAGE)


@app.command()
def lsp() -> None:
    """Run the language server over stdin and stdout, for editors."""
    try:
        from cfspec.lsp.server import main as serve
    except ImportError as error:
        raise fail(f"the language server needs pygls: pip install 'cfspec[lsp]' ({error})") \
            from error
    serve()


def _register_stage_commands() -> None:
    # Each lives beside its stage; importing them is cheap (their heavy imports are lazy).
    from cfspec.cli.doctor import doctor_command
    from cfspec.cli.imports import import_command
    from cfspec.cli.stages import plan_command

    app.command(name="import")(import_command)
    from cfspec.cli.questions import questions_command

    app.command(name="questions")(questions_command)
    from cfspec.cli.ask import ask_command, grammar_command

    app.command(name="grammar")(grammar_command)
    app.command(name="ask")(ask_command)
    app.command(name="plan")(plan_command)
    app.command(name="generate")(generate_command)
    app.command(name="evaluate")(evaluate_command)
    app.command(name="filter")(filter_command)
    app.command(name="export")(export_command)
    app.command(name="report")(report_command)
    app.command(name="doctor")(doctor_command)


_register_stage_commands()


def tidy_help(command: Any) -> Any:
    """Help a user reads: docstrings and option help reflowed (no hard-wrapped lines or doubled
    spaces), and a NAME placeholder for every option and argument that takes a value (flags
    take none)."""
    if command.help:
        command.help = " ".join(command.help.split())
    for param in command.params:
        # typer vendors its own click: tell options from arguments by their kind, not class.
        if param.param_type_name == "option":
            param.help = " ".join((param.help or "").split()) or None
            if getattr(param, "is_flag", False):
                continue
        if param.metavar is None and param.name:
            many = param.nargs == -1 or getattr(param, "multiple", False)
            param.metavar = param.name.upper() + ("..." if many else "")
        if param.param_type_name == "argument":
            # typer's usage line writes `{PATHS...}...` and its help adds the Python type
            # (`<list[str]>`): show the placeholder alone.
            shown = param.metavar or ""
            param.get_usage_pieces = lambda *_a, _shown=shown: [_shown]  # type: ignore[method-assign]
            param.display_type_rich = lambda *_a, **_k: ""  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)
    return command


def main() -> None:
    tidy_help(typer.main.get_command(app))(prog_name="cfspec")


if __name__ == "__main__":
    main()
