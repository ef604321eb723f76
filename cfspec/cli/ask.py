"""`cfspec grammar` and `cfspec ask`: thin command lines over cfspec/lang/grammar_export.py and
cfspec/ask/. Importing this module imports nothing heavy (the commands import what they need
when they run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cfspec.cli.common import EXIT_ERRORS, EXIT_OK, fail


def grammar_command(
    target: Annotated[str, typer.Option(
        "--target", help="lark, llguidance, xgrammar or gbnf.", metavar="TARGET")] = "lark",
    one_spec: Annotated[bool, typer.Option(
        "--one-spec", help="Exactly one spec (the file's `start: spec*` allows none).")] = False,
) -> None:
    """Print grammar/scm.lark as a constrained-decoding backend takes it: lark (the file),
    llguidance (Lark with its options), xgrammar or gbnf (llama.cpp). Generated, never
    copied: every export accepts only what `cfspec lint` parses."""
    from cfspec.lang.grammar_export import TARGETS, ExportError, export

    if target not in TARGETS:
        raise fail(f"unknown --target {target!r}; choose one of {', '.join(TARGETS)}")
    try:
        sys.stdout.write(export(target, one_spec=one_spec))
    except ExportError as error:
        raise fail(str(error)) from None


def ask_command(
    captions: Annotated[list[str], typer.Argument(
        help="Captions: text files (one a line), caption-pair JSON Lines (COCO-CF shapes), "
        "or captions in quotes.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the .scm files.")],
    model: Annotated[str, typer.Option(
        "--model", help="Model name at the server, or a local transformers model folder.")],
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="An OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")]
    = None,
    backend: Annotated[str, typer.Option(
        "--backend", help="auto, openai or local (auto: local when --model is a folder and "
        "no --base-url is given).")] = "auto",
    server_grammar: Annotated[str, typer.Option(
        "--server-grammar", help="How a server takes the grammar: none, structured-outputs "
        "(vLLM), guided-grammar (older vLLM), ebnf (SGLang) or grammar (llama.cpp).")] = "none",
    api_key_env: Annotated[str, typer.Option(
        "--api-key-env", help="The environment variable that holds the API key.")]
    = "OPENAI_API_KEY",
    no_grammar: Annotated[bool, typer.Option(
        "--no-grammar", help="Local backend: sample without the grammar.")] = False,
    repairs: Annotated[int, typer.Option(
        min=0, max=10, help="Rounds that send the diagnostics back.")] = 2,
    max_tokens: Annotated[int, typer.Option(min=16, help="Tokens per answer.")] = 1024,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.0,
    seed: Annotated[int, typer.Option(help="Sampling seed (part of the cache key).")] = 0,
    examples: Annotated[int, typer.Option(min=0, max=5, help="Few-shot examples.")] = 2,
    shape: Annotated[str, typer.Option(
        "--shape", help="Answer asked for: scm, or json (the reference study's shape, "
        "imported; no grammar).")] = "scm",
    jobs: Annotated[int, typer.Option(min=1, max=64, help="Requests in flight.")] = 4,
    retries: Annotated[int, typer.Option(min=0, max=20, help="Tries after a transient error.")]
    = 4,
    rpm: Annotated[float | None, typer.Option(
        min=0.1, help="At most this many requests a minute.")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="text, concise, json, sarif or github.", metavar="FORMAT")] = "text",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary.")]
    = False,
) -> None:
    """Ask an LLM for a spec of each caption: the instruction of `cfspec prompt`, the answer
    linted (imported first when it is JSON or free text), the diagnostics sent back for up to
    --repairs rounds. Writes OUT/<id>.scm and OUT/ask.jsonl; answers are cached in OUT, so a
    re-run (or a run after a kill) asks only what is missing. Exit 0: no errors; 1: errors."""
    from cfspec.ask.backends import RequestError, TransientError
    from cfspec.ask.captions import CaptionError, read_captions
    from cfspec.ask.runner import Options, Runner
    from cfspec.diagnostics.views import render
    from cfspec.lang.config import ConfigError, load_config

    _check_choices(output_format, server_grammar, shape, backend)
    try:
        config = load_config()
        read = read_captions(captions)
    except (CaptionError, ConfigError) as error:
        raise fail(str(error)) from None
    color = "NO_COLOR" not in os.environ and sys.stderr.isatty()
    if read.diagnostics:
        sys.stderr.write(render(read.diagnostics, "text", color=color))
    if not read.items:
        raise fail("no caption to ask about")
    kind = _backend_kind(backend, model, base_url, api_key_env)
    from cfspec.workspace.outdir import prepare_out

    try:
        prepare_out(out)  # before a model is loaded: a bad OUT fails in a second, not later
    except OSError as error:
        raise fail(f"{out}: {getattr(error, 'strerror', None) or error}") from None
    try:
        engine = _backend(kind, model, base_url, server_grammar, api_key_env,
                          no_grammar or shape == "json")
    except ImportError as error:
        extra = "gpu,llm" if kind == "local" else "llm"
        raise fail(f"{error.name or error}: not installed (pip install 'cfspec[{extra}]')") \
            from None
    except (OSError, ValueError) as error:
        raise fail(f"--model {model}: {' '.join(str(error).split())}") from None
    options = Options(repairs=repairs, max_tokens=max_tokens, temperature=temperature,
                      seed=seed, examples=examples, jobs=1 if kind == "local" else jobs,
                      retries=retries, rpm=rpm, shape=shape)
    progress = _Progress(len(read.items), quiet)
    try:
        runner = Runner(engine, out, config, options, model, on_done=progress.advance)
        totals = runner.run(read.items)
    except (RequestError, TransientError) as error:
        raise fail(f"{error}; the answers so far are cached in {out}: run again to go on") \
            from None
    except OSError as error:
        raise fail(f"{out}: {getattr(error, 'strerror', None) or error}") from None
    finally:
        progress.close()
    _report(totals, out, output_format, quiet, color, bool(read.diagnostics))


def _check_choices(output_format: str, server_grammar: str, shape: str, backend: str) -> None:
    """Each choice flag is one of its choices (and they fit together), before anything is
    read."""
    from cfspec.ask.backends import SERVER_GRAMMAR
    from cfspec.diagnostics.views import FORMATS

    if output_format not in FORMATS:
        raise fail(f"unknown --format {output_format!r}; choose one of {', '.join(FORMATS)}")
    if server_grammar not in SERVER_GRAMMAR:
        raise fail(f"unknown --server-grammar {server_grammar!r}; choose one of "
                    f"{', '.join(SERVER_GRAMMAR)}")
    if shape not in ("scm", "json"):
        raise fail(f"unknown --shape {shape!r}; choose scm or json")
    if shape == "json" and server_grammar != "none":
        raise fail("--shape json: the grammar is for .scm answers; drop --server-grammar")
    if backend not in ("auto", "openai", "local"):
        raise fail(f"unknown --backend {backend!r}; choose auto, openai or local")


def _backend_kind(backend: str, model: str, base_url: str | None, api_key_env: str) -> str:
    """local or openai, as --backend says (auto: local for a model folder without
    --base-url); what is needed for it is there."""
    kind = backend
    if kind == "auto":
        kind = "local" if base_url is None and Path(model).is_dir() else "openai"
    if kind == "local" and not Path(model).is_dir():
        raise fail(f"--model {model}: not a model folder (give --base-url for a server)")
    if kind == "openai" and base_url is None and not os.environ.get(api_key_env):
        raise fail(f"--model {model} is not a local folder; give --base-url URL for a "
                    f"server, or set {api_key_env} for the hosted API")
    return kind


def _backend(kind: str, model: str, base_url: str | None, server_grammar: str,
             api_key_env: str, no_grammar: bool) -> Any:
    from cfspec.ask.backends import LocalBackend, OpenAIBackend

    if kind == "local":
        return LocalBackend(model, constrained=not no_grammar)
    return OpenAIBackend(model, base_url, api_key=os.environ.get(api_key_env),
                         server_grammar=server_grammar)


class _Progress:
    def __init__(self, total: int, quiet: bool) -> None:
        self.bar = None
        if quiet or total < 2 or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task("asking", total=total)

    def advance(self, _outcome: object) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _report(totals: object, out: Path, fmt: str, quiet: bool, color: bool,
            unreadable: bool) -> None:
    from cfspec.ask.runner import Totals
    from cfspec.diagnostics.records import has_errors
    from cfspec.diagnostics.views import render
    from cfspec.lang.config import load_config
    from cfspec.lint import lint

    assert isinstance(totals, Totals)
    written = [str(o.path) for o in totals.outcomes if o.path is not None]
    # What is on disk, linted again: positions point into the written files.
    result = lint(written, load_config()) if written else None
    diagnostics = result.diagnostics if result else []
    sys.stdout.write(render(diagnostics, fmt, color=color and fmt == "text"))
    if fmt in ("text", "concise") and not quiet:
        rows = totals.outcomes
        width = max(len("caption"), *(len(o.caption.item_id) for o in rows))
        lines = [f"{'caption':<{width}}  rounds  verdict"]
        lines += [f"{o.caption.item_id:<{width}}  {o.rounds:>6}  "
                  f"{o.verdict if o.path else 'no spec: ' + o.verdict}" for o in rows]
        lines.append(totals.line() + f"; wrote {len(written)} .scm file"
                     f"{'s' if len(written) != 1 else ''} to {out}")
        typer.echo("\n".join(lines), err=True)
    failed = has_errors(diagnostics) or unreadable or len(written) < len(totals.outcomes) \
        or any(o.judged.errors for o in totals.outcomes)
    raise typer.Exit(EXIT_ERRORS if failed else EXIT_OK)
