"""The binding pass: each variable's words in the factual prompt (preset by the reader for a
caption pair, else found by `importers.binding`), and the variables it does not show."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cfspec.checks.names import report_not_in_prompt
from cfspec.checks.specs import report_missing_prompt
from cfspec.diagnostics.records import Label
from cfspec.importers import binding
from cfspec.importers.answer import Declared, Edge
from cfspec.importers.passes.context import Judging, descriptions, point
from cfspec.importers.passes.graph import Graphs


@dataclass(frozen=True)
class Binding:
    """`slots`: the factual token range `[i, j)` of each variable the prompt shows;
    `guessed`: the words guessed for each variable it does not (reported, then written)."""

    slots: Mapping[str, tuple[int, int]]
    guessed: Mapping[str, str]


def bind_variables(j: Judging, g: Graphs) -> Binding:
    a, p0 = j.answer, j.p0
    slots: dict[str, tuple[int, int]] = {}
    if a.slots is not None:
        slots = dict(a.slots)
    elif p0 is not None:
        slots = binding.bind(p0.text, _candidates(g))
    guessed: dict[str, str] = {}
    if p0 is None:
        report_missing_prompt(
            j.report, point(a.span), "the answer has no original prompt", "no prompt found",
            "add an `Original prompt: ...` line, or pass --prompt"
            if a.shape == "llm-text" else "add `original_prompt` to the answer")
        return Binding(slots, guessed)
    # One label for every unplaced variable (thousands, in a large answer).
    prompt_label = [Label(p0.span(j.source), "the prompt")] if p0.fallback is None else []
    for d in g.declared:
        if d.name not in slots:
            if d.name not in guessed:  # the first of two variables of one name gives it
                guessed[d.name] = guess(d, g.index)
            _unbound(j, d, guessed[d.name], prompt_label)
    return Binding(slots, guessed)


def guess(d: Declared, index: Mapping[str, list[Edge]]) -> str:
    """The words of a variable the prompt does not show (`binding.guess_words`)."""
    return binding.guess_words(d.name, d.label, descriptions(index, d.name))


def _candidates(g: Graphs) -> list[binding.Candidate]:
    return [candidate(d.name, [*g.index.get(d.name, ()), *g.aug_index.get(d.name, ())],
                      d.label, d.description)
            for d in g.declared]


def candidate(name: str, edges: Iterable[Edge], label: str | None = None,
              description: str | None = None) -> binding.Candidate:
    """What binding knows of a variable: its label, and its own description and those of
    its edges (`edges`: the edges touching it), an edge out of it leading."""
    c = binding.Candidate(name, label)
    if description:
        c.descriptions.append(description)
    for e in edges:
        if e.description:
            c.descriptions.append(e.description)
            if e.source == name:
                c.leads.append(e.description)
    return c


def _unbound(j: Judging, d: Declared, words: str, prompt_label: list[Label]) -> None:
    shown = f"`{d.name}`" if words == d.name else f"`{d.name}` ({words})"
    report_not_in_prompt(
        j.report, d.span, f"variable {shown} is not found in the prompt",
        "if the caption does name it, give its words as they appear there",
        label="not in the prompt",
        labels=prompt_label,
        notes=["written as `latent`: a confounder or a cause the caption does not show; an "
               "intervention on it cannot change the caption by substitution"])
