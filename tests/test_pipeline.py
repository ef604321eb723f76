"""`cfspec run`'s plan (cfspec/pipeline.py): the order, what each stage is given, when the run
stops. The end-to-end run itself is in tests/test_run.py."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from cfspec.cli.app import compile_command, run_command
from cfspec.cli.generate import generate_command
from cfspec.cli.options import borrow_flags
from cfspec.cli.stages import evaluate_command, export_command, filter_command, report_command
from cfspec.pipeline import (
    FLAG_STAGES,
    NOT_RUN_FLAGS,
    STAGES,
    RunOptions,
    arguments,
    final_status,
    stop_after,
)

COMMANDS = {"compile": compile_command, "generate": generate_command,
            "evaluate": evaluate_command, "filter": filter_command, "export": export_command,
            "report": report_command}


def run_flags(**given: object) -> dict[str, object]:
    """Every flag `cfspec run` borrowed at its default (as Typer passes them), then `given`."""
    return {name: p.default for name, p in inspect.signature(run_command).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "quiet"} | given


@pytest.mark.parametrize("stage", STAGES)
def test_run_gives_each_command_only_what_it_takes(stage: str, tmp_path: Path) -> None:
    """A renamed or dropped option of a stage's command breaks run here, not at a user's."""
    signature = inspect.signature(COMMANDS[stage])
    args, kwargs = arguments(stage, RunOptions(("specs",), tmp_path, run_flags()),
                             signature.parameters)
    bound = signature.bind(*args, **kwargs)  # raises TypeError on an unknown keyword
    missing = [name for name, p in signature.parameters.items()
               if p.default is inspect.Parameter.empty and name not in bound.arguments]
    assert missing == []


def test_every_run_option_reaches_a_stage(tmp_path: Path) -> None:
    """Each option `cfspec run` takes is passed on to some stage (none is silently dropped)."""
    options = RunOptions(("specs",), tmp_path, run_flags())
    given = {key for stage in STAGES for key in arguments(
        stage, options, inspect.signature(COMMANDS[stage]).parameters)[1]}
    run_options = set(inspect.signature(run_command).parameters) - {"paths", "out"}
    assert run_options - given == set()


def test_the_run_stops_on_usage_errors_and_when_nothing_compiled(tmp_path: Path) -> None:
    assert stop_after("generate", 2, tmp_path) == 2
    assert stop_after("compile", 1, tmp_path) == 1  # no pairs.jsonl: nothing to generate
    (tmp_path / "pairs.jsonl").write_text("\n")
    assert stop_after("compile", 0, tmp_path) == 1  # an empty one neither
    (tmp_path / "pairs.jsonl").write_text('{"id": "a"}\n')
    assert stop_after("compile", 1, tmp_path) is None  # some specs compiled: go on
    assert stop_after("evaluate", 1, tmp_path) is None
    # every pair failed in generate, so evaluate finds no images: run exits as generate did
    assert stop_after("evaluate", 2, tmp_path, {"compile": 0, "generate": 1}) == 1
    assert stop_after("evaluate", 2, tmp_path, {"compile": 0, "generate": 0}) == 2
    assert final_status({"compile": 1, "generate": 0, "evaluate": 1}) == 1
    assert final_status({"compile": 0, "generate": 0, "filter": 1}) == 0
    # Nothing exported: no dataset, so not a success (as `cfspec export` alone exits 1).
    done = {"compile": 0, "generate": 0, "evaluate": 0, "filter": 0, "export": 1, "report": 0}
    assert final_status(done, nothing_exported=True) == 1
    assert final_status({**done, "generate": 1}, nothing_exported=True) == 1
    assert final_status(done) == 0


def test_run_defaults_are_generate_and_evaluate_defaults(tmp_path: Path) -> None:
    """`cfspec run`, generate and evaluate share one default model, CLIP model and device: a
    real SD 1.5 from the local cache, the real CLIP ViT-L/14, and auto."""
    run = inspect.signature(run_command).parameters
    generate = inspect.signature(generate_command).parameters
    evaluate = inspect.signature(evaluate_command).parameters
    assert run["model"].default == generate["model"].default == \
        "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert run["clip_model"].default == evaluate["clip_model"].default \
        == "openai/clip-vit-large-patch14"
    assert run["device"].default == generate["device"].default == \
        evaluate["device"].default == "auto"
    assert run["overwrite"].default is generate["overwrite"].default is False


def test_an_unknown_stage_is_named() -> None:
    with pytest.raises(ValueError, match="the stages are compile, generate"):
        arguments("upload", RunOptions((), Path(".")), ())


def test_run_takes_the_options_of_generate_and_evaluate() -> None:
    """CONTRACT: `cfspec run` takes the options of generate and evaluate. The exceptions: the
    output folder and diagnostics format are run's own, and a shard of a whole run would
    evaluate and export a part of the data (run generate --shard, then run on the whole)."""
    run_options = set(inspect.signature(run_command).parameters)
    own = {"out", "fmt", "no_color", "shard"}
    for command in (generate_command, evaluate_command):
        missing = set(inspect.signature(command).parameters) - own - run_options
        assert missing == set(), (command.__name__, missing)


@pytest.mark.parametrize("stage", FLAG_STAGES)
def test_run_declares_no_flag_of_a_stage_again(stage: str) -> None:
    """Each flag of generate, evaluate and filter that run takes is, as the user sees it, the
    stage's own: the same option names, default and help (run borrows the declarations)."""
    from cfspec.cli.app import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    run = {param.name: param for param in commands["run"].params}
    assert not {"shard", "fmt", "no_color"} & set(run)
    for param in commands[stage].params:
        if param.name in NOT_RUN_FLAGS:  # run's own (OUT, --quiet) or not run's (--shard)
            continue
        assert param.name in run, (stage, param.name)
        ours = run[param.name]
        assert (ours.opts, ours.default, ours.help) == (param.opts, param.default, param.help)


def test_a_new_stage_flag_reaches_run_and_its_stage() -> None:
    """A flag added to a stage's command (and its options class) is a flag of `cfspec run`,
    shown in its help and handed to the stage, with no change to run or cfspec/pipeline.py."""
    received: dict[str, object] = {}

    def evaluate_plus(out: Path, device: str = "auto", vqa_model: Annotated[str, typer.Option(
            help="The VQA model.")] = "tiny", fmt: str = "text", quiet: bool = False,
                      no_color: bool = False) -> None:
        received.update(device=device, vqa_model=vqa_model)

    @borrow_flags(evaluate_plus, skip=NOT_RUN_FLAGS)
    def run(paths: Annotated[list[str], typer.Argument()], out: Annotated[Path, typer.Option()],
            quiet: bool = False, **flags: object) -> None:
        options = RunOptions(tuple(paths), out, flags, quiet)
        args, kwargs = arguments("evaluate", options, inspect.signature(evaluate_plus).parameters)
        evaluate_plus(*args, **kwargs)

    app = typer.Typer()
    app.command()(run)
    app.command()(lambda: None)  # two commands: `run` is a subcommand, as in cfspec
    shown = CliRunner().invoke(app, ["run", "--help"])
    assert "--vqa-model" in shown.output and "The VQA model." in shown.output
    done = CliRunner().invoke(app, ["run", "a.scm", "--out", "o", "--vqa-model", "big"])
    assert done.exit_code == 0, done.output
    assert received == {"device": "auto", "vqa_model": "big"}


@pytest.mark.parametrize(("flag", "message"), [
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--scheduler", "nope"], "unknown --scheduler 'nope'"),
    (["--batch-size", "0"], "--batch-size"),
    (["--gate", "nope"], "--gate 'nope': expected NAME>=VALUE or NAME<=VALUE"),
    (["--min-clip", "5"], "--min-clip must be between"),
])
def test_run_checks_the_stage_options_before_compiling(flag: list[str], message: str,
                                                       tmp_path: Path) -> None:
    """A bad generate, evaluate or filter option stops run before anything is compiled, with
    the message the stage's own check gives."""
    from cfspec.cli.app import app

    out = tmp_path / "out"
    spec = Path(__file__).resolve().parent.parent / "specs" / "cake.scm"
    result = CliRunner().invoke(app, ["run", str(spec), "-o", str(out), "--device", "cpu",
                                      *flag])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()
