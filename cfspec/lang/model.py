"""A spec's meaning: the causal graph, the prompt as a frame, and per counterfactual the
intervened variables, their descendants and both bound prompts. Built once per spec; the
checks read it and the compiler turns it into pairs. Counterfactual sets are expanded here
(by `set_expansion.expand`), so `SpecModel.counterfactuals` holds every counterfactual, written
or a set's member, in the order written. Builds what it can from a broken spec (undefined names
are skipped) so that every check can still run."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from cfspec.lang import ast
from cfspec.lang.prompt import (
    BoundPrompt,
    Frame,
    TemplateError,
    bind_literal,
    bind_words,
    is_template,
    parse_template,
    render,
)
from cfspec.lang.set_expansion import Expansion, expand


@dataclass
class CounterfactualModel:
    node: ast.Counterfactual
    # First assignment per variable; repeats are reported by the checks.
    interventions: dict[str, ast.Assignment]
    sets: dict[str, ast.Assignment]
    descendants: set[str]  # of the intervened variables, in the factual graph
    prompt_1: BoundPrompt | None  # None when the factual prompt could not be built

    @property
    def changed(self) -> set[str]:
        """Variables whose words may legitimately change: intervened ones and descendants."""
        return set(self.interventions) | self.descendants

    def new_words(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name, a in (*self.sets.items(), *self.interventions.items()):
            out[name] = None if isinstance(a.value, ast.NoneValue) else a.value.value
        return out


@dataclass
class SpecModel:
    spec: ast.Spec
    variables: dict[str, ast.Variable]  # first declaration of each name
    graph: nx.DiGraph  # declared variables; edges between declared variables
    frame: Frame | None
    template_errors: list[TemplateError]
    prompt_0: BoundPrompt | None
    counterfactuals: list[CounterfactualModel] = field(default_factory=list)
    expansions: list[Expansion] = field(default_factory=list)  # one per counterfactual set

    def words(self) -> dict[str, str | None]:
        """Each variable's factual words; None for one the factual caption does not show."""
        return {name: v.value for name, v in self.variables.items()}


def build(spec: ast.Spec) -> SpecModel:
    variables: dict[str, ast.Variable] = {}
    for var in spec.variables:
        variables.setdefault(var.name.text, var)

    graph = nx.DiGraph()
    graph.add_nodes_from(variables)
    for edge in spec.edges:
        s, t = edge.source.text, edge.target.text
        if s in variables and t in variables and not graph.has_edge(s, t):
            graph.add_edge(s, t, node=edge)

    words = {name: v.value for name, v in variables.items()}
    frame: Frame | None = None
    errors: list[TemplateError] = []
    prompt_0: BoundPrompt | None = None
    prompts = spec.prompts
    if prompts:
        text = prompts[0].value.value
        if is_template(text):
            frame, errors = parse_template(text)
        else:
            # A variable the factual does not show (`none`) has no words to find.
            frame, _ = bind_literal(text, {n: w for n, w in words.items() if w is not None})
        if not errors:
            prompt_0 = render(frame, words)

    model = SpecModel(spec, variables, graph, frame, errors, prompt_0)
    for block in spec.blocks:
        if isinstance(block, ast.CounterfactualSet):
            expansion = expand(block, variables)
            model.expansions.append(expansion)
            members = expansion.members
        else:
            members = [block]
        for cf in members:
            model.counterfactuals.append(_counterfactual(cf, model))
    return model


def reachable(graph: nx.DiGraph, start: list[str]) -> set[str]:
    """Every node reachable from `start` by one edge or more: the descendants of all of them,
    in one traversal (one BFS per node would be quadratic for a wide do()). Fine on cyclic
    graphs too, which are reported elsewhere."""
    seen: set[str] = set()
    stack = [c for n in start for c in graph.successors(n)]
    seen.update(stack)
    while stack:
        for child in graph.successors(stack.pop()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def independent(graph: nx.DiGraph, targets: list[str]) -> list[str]:
    """The targets that no other target is upstream of: a target downstream of another is a
    descendant's update, not an independent intervention. One traversal from all targets."""
    downstream = reachable(graph, [t for t in targets if t in graph])
    return [t for t in targets if t not in downstream]


def split_changes(graph: nx.DiGraph, changed: list[str]) -> tuple[list[str], list[str]]:
    """Changed variables as (interventions, descendant updates): a variable strictly downstream
    of another changed one (in another strongly connected part of the graph) follows from it.
    Linear: one traversal of the condensation from every changed variable's part."""
    present = [n for n in changed if n in graph]
    if not present:
        return list(changed), []
    condensed = nx.condensation(graph)
    part = condensed.graph["mapping"]
    below = reachable(condensed, sorted({part[n] for n in present}))
    follows = [n for n in changed if n in graph and part[n] in below]
    return [n for n in changed if n not in follows], follows


def _counterfactual(cf: ast.Counterfactual, model: SpecModel) -> CounterfactualModel:
    interventions: dict[str, ast.Assignment] = {}
    for a in cf.interventions:
        interventions.setdefault(a.target.text, a)
    sets: dict[str, ast.Assignment] = {}
    for a in cf.sets:
        sets.setdefault(a.target.text, a)
    descendants = reachable(model.graph, [n for n in interventions if n in model.graph])
    descendants -= set(interventions)

    prompt_1: BoundPrompt | None = None
    if model.prompt_0 is not None and model.frame is not None:
        if cf.prompts:
            prompt_1 = bind_words(cf.prompts[0].value.value, model.prompt_0)
        else:
            values: dict[str, str | None] = dict(model.words())
            cm = CounterfactualModel(cf, interventions, sets, descendants, None)
            values.update(cm.new_words())
            prompt_1 = render(model.frame, values)
    return CounterfactualModel(cf, interventions, sets, descendants, prompt_1)
