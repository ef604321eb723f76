"""The importer's passes, one at a time: each reads the records of the passes before it and
hands on a frozen record of its own; composed in order they are the import of a pair."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cfspec.diagnostics.source import SourceFile
from cfspec.importers import llm_json
from cfspec.importers.analysis import analyze
from cfspec.importers.answer import Answer, ImportOptions
from cfspec.importers.passes.binding import bind_variables
from cfspec.importers.passes.context import start
from cfspec.importers.passes.graph import judge_graphs
from cfspec.importers.passes.intervention import intervene
from cfspec.importers.passes.minimality import judge_minimality
from cfspec.importers.passes.spec import write_pair
from cfspec.importers.passes.surgery import judge_surgery


def _answer(**fields: object) -> Answer:
    [answer] = llm_json.read(SourceFile("answer.json", json.dumps(fields)))
    assert isinstance(answer, Answer)
    return answer


WOMAN_TO_MAN = {
    "original_prompt": "A woman cuts a cake.",
    "counterfactual_prompt": "A man cuts a cake.",
    "SCM": ["W -> C: the woman cuts the cake"],
    "SCM_aug": ["M -> C: the man cuts the cake"],
}


def test_each_pass_hands_on_a_frozen_record() -> None:
    j = start(_answer(**WOMAN_TO_MAN), ImportOptions())
    graphs = judge_graphs(j)
    assert graphs.names == ["W", "C"]  # no `Variables:` list: the edges' nodes, in order
    assert graphs.nodes.replaced == {"W": "M"}  # SCM_aug puts M where W was
    bound = bind_variables(j, graphs)
    assert bound.slots["W"] == (1, 2)  # `woman`, token 1 of `A woman cuts a cake .`
    assert bound.guessed == {}  # every variable is in the prompt
    iv = intervene(j, graphs, bound)
    assert iv.graph_iv == {"W": "M"} and iv.new_words == {"M": "man"}
    assert iv.values == {"W": "man"}
    minimal = judge_minimality(j, graphs, iv)
    assert minimal.do_targets == ("W",) and minimal.set_targets == ()
    judge_surgery(j, graphs, iv)  # do() cuts no edge out of W: nothing to report
    assert j.bag.items == []
    for record in (graphs, bound, iv, minimal):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, dataclasses.fields(record)[0].name, None)
    item = write_pair(j, graphs, bound, iv, minimal)
    assert item.interventions == {"W": "man"} and item.edit == "replace"
    # The passes in this order are the import (the prompt-length check adds nothing here).
    assert item.scm == analyze(_answer(**WOMAN_TO_MAN), ImportOptions()).scm


def test_a_variable_the_prompt_does_not_show_is_guessed_once_and_written_latent() -> None:
    answer = _answer(**{**WOMAN_TO_MAN, "SCM": ["H -> W: the hunger of the woman",
                                                "W -> C: the woman cuts the cake"]})
    j = start(answer, ImportOptions())
    graphs = judge_graphs(j)
    bound = bind_variables(j, graphs)
    assert "H" not in bound.slots
    assert bound.guessed == {"H": "hunger"}  # the word of its description `H` abbreviates
    [unplaced] = [d for d in j.bag.items if d.code.name == "span-not-in-prompt"]
    assert unplaced.span == graphs.declared[0].span  # at `H` in the answer's first edge
    item = analyze(answer, ImportOptions())
    assert 'var H: latent = "hunger"' in (item.scm or "")
