"""`cfspec run`'s plan (cfspec/pipeline.py): the order, what each stage is given, when the run
stops. The end-to-end run itself is in tests/test_run.py."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from cfspec.cli.app import compile_command, run_command
from cfspec.cli.generate import generate_command
from cfspec.cli.stages import evaluate_command, export_command, filter_command, report_command
from cfspec.pipeline import STAGES, RunOptions, arguments, final_status, stop_after

COMMANDS = {"compile": compile_command, "generate": generate_command,
            "evaluate": evaluate_command, "filter": filter_command, "export": export_command,
            "report": report_command}


@pytest.mark.parametrize("stage", STAGES)
def test_run_gives_each_command_only_what_it_takes(stage: str, tmp_path: Path) -> None:
    """A renamed or dropped option of a stage's command breaks run here, not at a user's."""
    args, kwargs = arguments(stage, RunOptions(("specs",), tmp_path))
    signature = inspect.signature(COMMANDS[stage])
    bound = signature.bind(*args, **kwargs)  # raises TypeError on an unknown keyword
    missing = [name for name, p in signature.parameters.items()
               if p.default is inspect.Parameter.empty and name not in bound.arguments]
    assert missing == []


def test_every_run_option_reaches_a_stage(tmp_path: Path) -> None:
    """Each option `cfspec run` takes is passed on to some stage (none is silently dropped)."""
    options = RunOptions(("specs",), tmp_path)
    given = {key for stage in STAGES for key in arguments(stage, options)[1]}
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
    """RunOptions, `cfspec run`, generate and evaluate share one default model, CLIP model and
    device: a real SD 1.5 from the local cache, the real CLIP ViT-L/14, and auto."""
    defaults = RunOptions(("specs",), tmp_path)
    run = inspect.signature(run_command).parameters
    generate = inspect.signature(generate_command).parameters
    evaluate = inspect.signature(evaluate_command).parameters
    assert defaults.model == run["model"].default == generate["model"].default == \
        "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert defaults.clip_model == run["clip_model"].default == evaluate["clip_model"].default \
        == "openai/clip-vit-large-patch14"
    assert defaults.device == run["device"].default == generate["device"].default == \
        evaluate["device"].default == "auto"
    assert defaults.overwrite is run["overwrite"].default is generate["overwrite"].default \
        is False


def test_an_unknown_stage_is_named() -> None:
    with pytest.raises(ValueError, match="the stages are compile, generate"):
        arguments("upload", RunOptions((), Path(".")))


def test_run_takes_the_options_of_generate_and_evaluate() -> None:
    """CONTRACT: `cfspec run` takes the options of generate and evaluate. The exceptions: the
    output folder and diagnostics format are run's own, and a shard of a whole run would
    evaluate and export a part of the data (run generate --shard, then run on the whole)."""
    run_options = set(inspect.signature(run_command).parameters)
    own = {"out", "fmt", "no_color", "shard"}
    for command in (generate_command, evaluate_command):
        missing = set(inspect.signature(command).parameters) - own - run_options
        assert missing == set(), (command.__name__, missing)
