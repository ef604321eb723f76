"""A stage's options are declared once (cfspec/stages/options.py) and on its command: each
field is a flag of the command or the API's own, each flag a field or only about the output,
and each field is recorded in the manifest or said not to be. Adding an option anywhere else
(or forgetting one of the two places) fails here."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from cfspec.cli.app import run_command
from cfspec.cli.generate import generate_command
from cfspec.cli.stages import evaluate_command
from cfspec.pipeline import RunOptions, arguments
from cfspec.stages.options import (
    SCHEDULER_NAMES,
    EvaluateOptions,
    GenerateOptions,
    OptionError,
)

STAGES = [(GenerateOptions, generate_command, "generate"),
          (EvaluateOptions, evaluate_command, "evaluate")]


def fields(options: type) -> set[str]:
    return {f.name for f in dataclasses.fields(options)}


def flags(command: object) -> set[str]:
    return set(inspect.signature(command).parameters) - {"out"}  # type: ignore[arg-type]


@pytest.mark.parametrize(("options", "command", "name"), STAGES)
def test_every_field_is_a_flag_and_every_flag_a_field(options: type, command: object,
                                                      name: str) -> None:
    assert fields(options) - options.API_ONLY == flags(command) - options.CLI_ONLY, name
    assert options.API_ONLY <= fields(options) and not options.CLI_ONLY & fields(options)


@pytest.mark.parametrize(("options", "command", "name"), STAGES)
def test_every_field_is_recorded_or_excluded(options: type, command: object,
                                             name: str) -> None:
    recorded = set(options().manifest_params())
    for field in fields(options):
        # guidance is recorded as "guidance" or "guidance_range"; the rest by their names
        assert (field in recorded) != (field in options.NOT_RECORDED), (name, field)
    assert options.NOT_RECORDED <= fields(options)


@pytest.mark.parametrize(("options", "command", "name"), STAGES)
def test_the_flag_defaults_are_the_option_defaults(options: type, command: object,
                                                   name: str) -> None:
    """What the Python API does by default is what the command does, but for the device
    (the API: cpu; the command: auto), shard (a string on the command line) and quiet."""
    defaults = {f.name: f.default for f in dataclasses.fields(options)}
    for flag, parameter in inspect.signature(command).parameters.items():  # type: ignore
        if flag in defaults and flag not in ("device", "shard", "quiet"):
            assert parameter.default == defaults[flag] or str(parameter.default) == str(
                defaults[flag]), (name, flag)


@pytest.mark.parametrize(("options", "command", "name"), STAGES)
def test_run_passes_every_option_it_has(options: type, command: object, name: str,
                                        tmp_path: Path) -> None:
    """A run option of a stage reaches the stage's command, by the options class's fields."""
    takes = inspect.signature(command).parameters  # type: ignore[arg-type]
    flags = {name: p.default for name, p in inspect.signature(run_command).parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY}
    given = arguments(name, RunOptions(("specs",), tmp_path, flags), takes)[1]
    shared = (fields(options) - options.API_ONLY) & set(inspect.signature(run_command)
                                                         .parameters)
    assert shared <= set(given)
    assert shared == (fields(options) - options.API_ONLY) - {"shard"}  # run has no --shard


def test_the_scheduler_names_are_the_engines() -> None:
    weights = pytest.importorskip("cfspec.gpu.generate.weights")
    assert tuple(weights.SCHEDULERS) == SCHEDULER_NAMES


@pytest.mark.parametrize(("given", "message"), [
    ({"seeds": 0}, "--seeds must be at least 1"),
    ({"batch_pairs": 0}, "--batch-pairs must be at least 1"),
    ({"height": 4}, "--height must be at least 8"),
    ({"scheduler": "nope"}, "unknown --scheduler 'nope'; choose one of ddim"),
    ({"p2p_compat": "x"}, "unknown --p2p-compat 'x'; choose cfspec or published"),
    ({"blend_start": 2.0}, "--blend-start must be between 0 and 1"),
    ({"guidance": "uniform(3, 2)"}, "uniform"),
    ({"dtype": "int8"}, "unknown --dtype 'int8'"),
])
def test_check_names_the_flag_and_what_to_pass(given: dict[str, object], message: str) -> None:
    with pytest.raises(OptionError, match=None) as raised:
        GenerateOptions(**given).check("cpu")  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_check_resolves_what_the_manifest_records() -> None:
    checked = GenerateOptions(guidance="uniform(2, 4)", p2p_compat="published",
                              scheduler="DDIM").check("cpu")
    params = checked.manifest_params("cpu")
    assert params["blend_start"] == 0.0 and params["scheduler"] == "ddim"
    assert params["guidance_range"] == [2.0, 4.0] and "guidance" not in params
    assert params["dtype"] == "float32"
    assert checked.engine_settings()["guidance"] == 2.0  # each job carries its own draw


def test_evaluate_check_gives_a_way_out(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="--batch-size must be at least 1"):
        EvaluateOptions(batch_size=0).check()
    with pytest.raises(OptionError, match="no such file .*nothing is downloaded"):
        EvaluateOptions(inception_weights=tmp_path / "none.pth").check()
