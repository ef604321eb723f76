"""The intervention pass: what the counterfactual changes, from SCM vs SCM_aug (the nodes it
replaces or removes) and from the two prompts (`changes.plan` attributes every changed word),
and each changed variable's new words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cfspec.checks.names import report_not_in_prompt
from cfspec.checks.specs import report_no_counterfactuals
from cfspec.diagnostics.records import Label
from cfspec.importers import binding, changes
from cfspec.importers.answer import Edge, Piece
from cfspec.importers.passes.binding import Binding, candidate
from cfspec.importers.passes.context import Judging, descriptions, point
from cfspec.importers.passes.graph import Graphs


@dataclass(frozen=True)
class Intervention:
    """`graph_iv`: factual variable -> the SCM_aug node in its place (None: removed);
    `new_words`: the counterfactual words of those nodes the prompt shows; `plan`: the changed
    words' attribution (None without both prompts); `values`: each changed variable's new
    words (None: removed); `slots`: the binding's slots as the plan extended them."""

    graph_iv: Mapping[str, str | None]
    new_words: Mapping[str, str]
    plan: changes.Plan | None
    values: Mapping[str, str | None]
    slots: Mapping[str, tuple[int, int]]


def intervene(j: Judging, g: Graphs, b: Binding) -> Intervention:
    variables = set(g.names)
    graph_iv: dict[str, str | None] = {v: n for v, n in g.nodes.replaced.items()
                                       if v in variables}
    graph_iv.update({v: None for v in g.nodes.removed if v in variables})
    p0, p1 = j.p0, j.p1
    if p0 is None or p1 is None:
        if p1 is None:
            a = j.answer
            report_no_counterfactuals(
                j.report, point(a.span), "the answer has no counterfactual prompt",
                "nothing to compare the original with",
                "add a `Counterfactual prompt: ...` line, or pass --counterfactual-prompt"
                if a.shape == "llm-text" else "add `counterfactual_prompt` to the answer")
        return Intervention(graph_iv, {}, None, {}, b.slots)
    new_words: dict[str, str] = {}
    if g.aug is not None and g.nodes.replaced:
        new_words = _bind_new(p0.text, p1.text, g)
    latent = {v: _phrases(n, new_words, g.aug_index)
              for v, n in graph_iv.items() if n is not None and v not in b.slots}
    plan = changes.plan(p0.text, p1.text, b.slots, latent, set(graph_iv))
    values = dict(plan.values)
    for v, n in graph_iv.items():
        if v in values or n is None and v in plan.slots:
            continue  # a removed variable whose words are still there: reported with its edges
        if n is None:
            values[v] = None
            continue
        values[v] = new_words.get(n) or binding.guess_words(
            n, None, descriptions(g.aug_index, n))
        if v in plan.slots or n not in new_words:
            _new_words_missing(j, v, n, g.aug_index, p1)
    return Intervention(graph_iv, new_words, plan, values, plan.slots)


def _bind_new(p0: str, p1: str, g: Graphs) -> dict[str, str]:
    """The counterfactual words of the nodes SCM_aug puts in place of others, looked for
    among the words the counterfactual prompt changes."""
    t0, t1 = binding.tokens(p0), binding.tokens(p1)
    changed = [True] * len(t1)
    for tag, _, _, b0, b1 in changes.opcodes(t0, t1):
        if tag == "equal":
            for k in range(b0, b1):
                changed[k] = False
    cands = [candidate(new, g.aug_index.get(new, ())) for new in g.nodes.replaced.values()]
    found = binding.bind(p1, cands, changed)
    return {n: p1[t1[i].start:t1[k - 1].end] for n, (i, k) in found.items()}


def _phrases(node: str, new_words: Mapping[str, str], aug_index: Mapping[str, list[Edge]]
             ) -> list[list[str]]:
    options = [new_words.get(node), binding.guess_words(
        node, None, descriptions(aug_index, node))]
    return [binding.keys_of(o) for o in options if o]


def _new_words_missing(j: Judging, v: str, n: str, aug_index: Mapping[str, list[Edge]],
                       p1: Piece) -> None:
    where = next((e.source_span if e.source == n else e.target_span
                  for e in aug_index.get(n, ())), point(j.answer.span))
    report_not_in_prompt(
        j.report, where,
        f"`{n}`, which SCM_aug puts in place of `{v}`, is not found among the words the "
        "counterfactual prompt changes",
        "make the counterfactual prompt show the new value, or the graph agree with the "
        "prompt", label="not in the counterfactual prompt",
        labels=[Label(p1.span(j.source), "the counterfactual prompt")]
        if p1.fallback is None else [])
